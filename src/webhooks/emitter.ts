/**
 * The gateway's side of lifecycle webhooks: connections report what happens to them here, and
 * the events go to the delivery queues (BullMQ, one per webhook partition) in batches, one
 * `addBulk` per queue per tick. Reporting never waits and never throws: a connection must not
 * be slowed or closed because Redis is away.
 *
 * Bounded: at most `maxBuffered` events wait in memory (Redis away, or slow). Beyond that the
 * newest are dropped and counted (`tidings_webhook_dropped_total`): losing events is the price
 * of a Redis outage longer than the buffer, never the gateway's memory. In Redis, a queue holds
 * at most about TIDINGS_WEBHOOK_BACKLOG_MAX waiting (a backend away for long); past it, new
 * events go to the dead-letter list (./backlog.ts).
 *
 * The gateway's live-connection hash (`keys.webhookConnections(uid)`, client → user) is what
 * lets a worker send the disconnects of a gateway that died (./reaper.ts). Each flush writes,
 * in this order: the hash entries of new connections, the events, then the removal of closed
 * connections' entries. A gateway killed between two of these steps so errs towards a
 * disconnect sent twice (a second, reaped one, with its own id) rather than never.
 *
 * A gateway cut off from Redis longer than the registry's expiry looks dead, and a worker
 * takes its hash and sends its clients' disconnects ("gateway gone") although they are still
 * connected; a Redis that lost its data loses the hash too. So every CHECK_MS the emitter
 * checks that its hash still exists while it has connections it wrote there, and when it is
 * gone, writes it again and sends a `connect` (reason "resumed") per live connection: the
 * backend's view heals, in order, behind the disconnects.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../bus/client.js';
import { webhookQueueName, type Keys } from '../bus/keys.js';
import type { WebhookEventType, WebhookSettings } from '../config/webhooks.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { DeliveryBacklog } from './backlog.js';
import { DeadLetters } from './dead-letters.js';
import { mintEvent, webhookPartitionOf, type EventFacts, type WebhookJob } from './event.js';

/** What a gateway's connections call; `NO_WEBHOOKS` when webhooks are off. */
export interface WebhookSink {
  connected(client: string, user: string): void;
  disconnected(client: string, user: string, reason: string): void;
  subscribed(client: string, user: string, channel: string): void;
  unsubscribed(client: string, user: string, channel: string): void;
}

export const NO_WEBHOOKS: WebhookSink = {
  connected: () => {},
  disconnected: () => {},
  subscribed: () => {},
  unsubscribed: () => {},
};

/** Events a gateway holds while Redis is away, before it drops new ones. */
export const MAX_BUFFERED_EVENTS = 100_000;
/** How long events gather before a flush: one batch per tick under load, little added latency. */
const FLUSH_DELAY_MS = 5;
/** A failed flush is tried again after this (full jitter up to it), the buffer kept meanwhile. */
const RETRY_MS = 1000;
/** How often the emitter checks that its connection hash was not taken or lost (see the header). */
const CHECK_MS = 3000;
export const RESUMED = 'resumed';

interface Pending {
  events: { partition: number; job: WebhookJob; id: string }[];
  /** Connections opened since the last flush: client → user. */
  added: Map<string, string>;
  /** Connections closed since the last flush whose hash entry was already written. */
  removed: Set<string>;
}

export class WebhookEmitter implements WebhookSink {
  private readonly queues: Queue[];
  /** Bounds the events waiting in each queue (./backlog.ts). */
  private readonly backlog: DeliveryBacklog;
  private pending: Pending = { events: [], added: new Map(), removed: new Set() };
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Events of the flush in progress: still in memory, so they count against the bound. */
  private inflight = 0;
  private closed = false;
  /** Live connections, client → user, as the hash should hold them (only when disconnects are wanted). */
  private readonly live = new Map<string, string>();
  private checkDue = false;
  private readonly checkTimer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly settings: WebhookSettings,
    /** The node registry uid of this gateway: the reaper decides by it whether the gateway lives. */
    private readonly gatewayUid: string,
    private readonly log: Logger,
    private readonly maxBuffered = MAX_BUFFERED_EVENTS,
  ) {
    this.queues = Array.from({ length: settings.partitions }, (_, p) => {
      const queue = new Queue(webhookQueueName(p), { connection: redis, prefix: keys.webhookQueuePrefixOf(p) });
      // Connection errors are reported once by the redis connection's listener (app/redis.ts).
      queue.on('error', () => {});
      return queue;
    });
    this.backlog = new DeliveryBacklog(this.queues, settings.backlogMax, new DeadLetters(redis, keys));
    this.checkTimer = setInterval(() => {
      this.checkDue = this.live.size > 0;
      if (this.checkDue) this.flushSoon(FLUSH_DELAY_MS);
    }, CHECK_MS);
    this.checkTimer.unref();
  }

  connected(client: string, user: string): void {
    if (this.closed) return;
    // The hash only serves the reaper's disconnects: kept only when those are wanted.
    if (this.settings.events.has('disconnect')) {
      this.live.set(client, user);
      this.pending.added.set(client, user);
      this.flushSoon(FLUSH_DELAY_MS);
    }
    this.emit({ type: 'connect', user, client });
  }

  disconnected(client: string, user: string, reason: string): void {
    if (this.settings.events.has('disconnect')) {
      this.live.delete(client);
      // Not yet in the hash: nothing to remove there (and nothing for a reaper to find).
      if (!this.pending.added.delete(client)) this.pending.removed.add(client);
      this.flushSoon(FLUSH_DELAY_MS);
    }
    this.emit({ type: 'disconnect', user, client, reason });
  }

  subscribed(client: string, user: string, channel: string): void {
    this.emit({ type: 'subscribe', user, client, channel });
  }

  unsubscribed(client: string, user: string, channel: string): void {
    this.emit({ type: 'unsubscribe', user, client, channel });
  }

  /** Events in memory, waiting or being queued (tests). */
  get buffered(): number {
    return this.pending.events.length + this.inflight;
  }

  /** Flushes what is buffered (bounded by `limitMs`), then closes the queues. */
  async close(limitMs: number): Promise<void> {
    if (this.closed) return;
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline && (this.hasPending() || this.flushing)) {
      if (!this.flushing) this.startFlush();
      await Promise.race([this.flushing, new Promise((r) => setTimeout(r, 50))]);
    }
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.checkTimer);
    if (this.pending.events.length > 0) this.log.warn({ events: this.pending.events.length }, 'webhook events not queued before shutdown');
    await Promise.all(this.queues.map((q) => q.close().catch(() => {})));
  }

  private hasPending(): boolean {
    return this.pending.events.length > 0 || this.pending.added.size > 0 || this.pending.removed.size > 0;
  }

  private emit(facts: EventFacts & { type: WebhookEventType }): void {
    if (this.append(this.pending.events, facts)) this.flushSoon(FLUSH_DELAY_MS);
  }

  /** Mints the event onto `events` when its type is selected and the bound has room; false otherwise. */
  private append(events: Pending['events'], facts: EventFacts): boolean {
    if (!this.settings.events.has(facts.type)) return false;
    if (this.buffered >= this.maxBuffered) {
      metrics.webhookDropped.inc();
      return false;
    }
    const event = mintEvent(facts);
    const job: WebhookJob = { body: JSON.stringify(event), at: Date.parse(event.time) };
    events.push({ partition: webhookPartitionOf(event, this.settings.partitions), job, id: event.id });
    return true;
  }

  /** See the header: the hash is gone while connections written there live on, so write them and announce them again. */
  private async healIfLost(batch: Pending): Promise<void> {
    const written = [...this.live].filter(([client]) => !batch.added.has(client));
    if (written.length === 0 || (await this.redis.exists(this.keys.webhookConnections(this.gatewayUid))) === 1) return;
    this.log.warn({ connections: written.length }, 'this gateway was taken for gone (or Redis lost its data): announcing its connections again');
    for (const [client, user] of written) {
      batch.added.set(client, user);
      if (this.append(batch.events, { type: 'connect', user, client, reason: RESUMED })) this.inflight++;
    }
  }

  private flushSoon(delayMs: number): void {
    if (this.timer || this.flushing || this.closed) return;
    this.timer = setTimeout(() => this.startFlush(), delayMs);
    this.timer.unref();
  }

  private startFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flush().finally(() => (this.flushing = undefined));
  }

  /** One flush at a time; what it took is put back in front on failure, so order holds. */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = { events: [], added: new Map(), removed: new Set() };
    this.inflight = batch.events.length;
    try {
      if (this.checkDue) {
        this.checkDue = false;
        await this.healIfLost(batch);
      }
      await this.write(batch);
    } catch (err) {
      this.log.warn({ err, events: batch.events.length }, 'could not queue webhook events; retrying');
      this.inflight = 0; // back among the pending ones: counted there now
      this.restore(batch);
      await new Promise((r) => setTimeout(r, Math.random() * RETRY_MS).unref());
    } finally {
      this.inflight = 0;
    }
    if (this.hasPending()) {
      this.flushing = undefined;
      this.flushSoon(FLUSH_DELAY_MS);
    }
  }

  private async write(batch: Pending): Promise<void> {
    const hash = this.keys.webhookConnections(this.gatewayUid);
    if (batch.added.size > 0) {
      // One slot (src/bus/keys.ts), so one MULTI even in cluster mode.
      const results = await this.redis.multi().hset(hash, Object.fromEntries(batch.added)).sadd(this.keys.webhookGateways, this.gatewayUid).exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
      batch.added.clear();
    }
    const byPartition = new Map<number, Pending['events']>();
    for (const e of batch.events) {
      const list = byPartition.get(e.partition);
      if (list) list.push(e);
      else byPartition.set(e.partition, [e]);
    }
    await Promise.all(
      [...byPartition].map(([p, events]) => this.backlog.admit(p, events.map((e) => ({ name: 'event', data: e.job, opts: webhookJobOptions(e.id) })))),
    );
    batch.events = [];
    if (batch.removed.size > 0) await this.redis.hdel(hash, ...batch.removed);
    batch.removed.clear();
  }

  /** A failed batch goes back in front of what came meanwhile (its parts already written were cleared). */
  private restore(batch: Pending): void {
    const later = this.pending;
    for (const [client, user] of later.added) batch.added.set(client, user);
    for (const client of later.removed) if (!batch.added.delete(client)) batch.removed.add(client);
    batch.events.push(...later.events);
    this.pending = batch;
  }
}

/** Kept on completion for nobody; a job is only ever finished by delivery or dead-lettering. */
export function webhookJobOptions(id: string) {
  return { jobId: id, removeOnComplete: true, removeOnFail: { count: 1000 }, attempts: 1 };
}
