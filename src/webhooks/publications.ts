/**
 * `publication` webhook events (issue 14): every committed publication of a namespace with
 * `webhook_publications`, queued by the worker that committed it, after the commit and
 * before the ingest job (or outbox row) that carried it is done with. A worker killed in
 * between leaves that job to run again; the re-run finds the publication committed, and
 * queues its event again under the same id, which is derived from its place in the channel
 * (epoch and offset), never minted: BullMQ drops the duplicate while the first still
 * waits, and a backend dedupes a redelivery by the id. So: at least once, in offset order per
 * channel (a channel's events share one delivery queue), with `offset` to order by.
 *
 * Bounded (./backlog.ts): past `backlogMax` events waiting in a delivery queue, new ones go to
 * the dead-letter list at once instead of growing Redis while the backend is away; the backend
 * then sees a gap in a channel's offsets, and the list (API webhook_dead_letters) has them.
 *
 * The body: {id, type: "publication", time, user, client, channel, offset, epoch, data, tags?}
 * where `user`/`client` are the publishing connection's ("" from the HTTP API or SQL), `time`
 * when the event was queued, and `data` the publication's JSON, spliced in as stored.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { RedisClient } from '../bus/client.js';
import { partitionOf, webhookQueueName, type Keys } from '../bus/keys.js';
import type { WebhookSettings } from '../config/webhooks.js';
import type { StoredPublication } from '../db/repos/publications.js';
import { DeliveryBacklog, type QueuedEvent } from './backlog.js';
import { DeadLetters } from './dead-letters.js';
import { webhookJobOptions } from './emitter.js';
import type { WebhookJob } from './event.js';

/** What the commit paths call after each commit (src/persist/group.ts, src/persist/relay.ts). */
export interface CommitHook {
  committed(stored: readonly StoredPublication[]): Promise<void>;
  close(): Promise<void>;
}

export const NO_COMMIT_HOOK: CommitHook = { committed: async () => {}, close: async () => {} };

export class PublicationWebhooks implements CommitHook {
  private readonly queues: Queue[];
  private readonly backlog: DeliveryBacklog;

  constructor(
    redis: RedisClient,
    keys: Keys,
    private readonly settings: WebhookSettings,
    /** Whether a channel's namespace asked for `publication` events. */
    private readonly wanted: (channel: string) => boolean,
  ) {
    this.queues = Array.from({ length: settings.partitions }, (_, p) => {
      const queue = new Queue(webhookQueueName(p), { connection: redis, prefix: keys.webhookQueuePrefixOf(p) });
      // Connection errors are reported once by the redis connection's listener (app/redis.ts).
      queue.on('error', () => {});
      return queue;
    });
    this.backlog = new DeliveryBacklog(this.queues, settings.backlogMax, new DeadLetters(redis, keys));
  }

  /** Queues the events of the wanted publications: one addBulk per delivery queue; none when none is wanted. */
  async committed(stored: readonly StoredPublication[]): Promise<void> {
    const byQueue = new Map<number, QueuedEvent[]>();
    const now = new Date();
    for (const pub of stored) {
      if (!this.wanted(pub.channel)) continue;
      const { id, job } = publicationJob(pub, now);
      const partition = publicationQueueOf(pub.channel, this.settings.partitions);
      const list = byQueue.get(partition) ?? [];
      list.push({ name: 'event', data: job, opts: webhookJobOptions(id) });
      byQueue.set(partition, list);
    }
    await Promise.all([...byQueue].map(([p, jobs]) => this.backlog.admit(p, jobs)));
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close().catch(() => {})));
  }
}

/** The delivery queue of a channel's publication events: always the same one, so they keep their order. */
export function publicationQueueOf(channel: string, partitions: number): number {
  return partitionOf(`channel:${channel}`, partitions);
}

/**
 * The same id for the same publication, on every re-run: a UUID-shaped digest of its channel,
 * epoch and offset (a channel's epoch changes when its history restarts, so offsets never repeat within one).
 */
export function publicationEventId(channel: string, epoch: string, offset: number): string {
  const hex = createHash('sha256').update(`${channel}\n${epoch}\n${offset}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function publicationJob(pub: StoredPublication, now: Date): { id: string; job: WebhookJob } {
  const id = publicationEventId(pub.channel, pub.epoch, pub.offset);
  const head = JSON.stringify({
    id,
    type: 'publication',
    time: now.toISOString(),
    user: pub.user ?? '',
    client: pub.client ?? '',
    channel: pub.channel,
    offset: pub.offset,
    epoch: pub.epoch,
  });
  // Stored data and tags are JSON text already: spliced, not parsed and written again.
  const tags = pub.tags ? `,"tags":${pub.tags}` : '';
  return { id, job: { body: `${head.slice(0, -1)},"data":${pub.data}${tags}}`, at: now.getTime() } };
}
