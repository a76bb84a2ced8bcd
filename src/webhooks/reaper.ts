/**
 * Disconnects of gateways that died (kill -9, a lost machine): every worker looks, every
 * `intervalMs`, for gateways that have a live-connection hash (./emitter.ts) but that the
 * node registry no longer lists (src/cluster/registry.ts: a gateway's `node` key expires about
 * 7 s after its last renewal). It takes such a hash with one script that reads and deletes it
 * (src/bus/scripts.ts `webhookTake`), so of several workers exactly one sends a `disconnect`
 * (reason "gateway gone") per client it held.
 *
 * Between the take and the queueing, the events live only in this worker's memory: a worker
 * killed in that instant loses them. The window is one Redis round trip.
 */
import type { Queue } from 'bullmq';
import type { Keys } from '../bus/keys.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import type { WebhookSettings } from '../config/webhooks.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { webhookJobOptions } from './emitter.js';
import { mintEvent, webhookPartitionOf, type WebhookJob } from './event.js';

export const GATEWAY_GONE = 'gateway gone';

export interface ReaperOptions {
  redis: ScriptedRedis;
  keys: Keys;
  settings: WebhookSettings;
  queues: Queue[];
  log: Logger;
}

/** One look; resolves to the number of connections whose disconnects were queued. */
export async function reapDeadGateways(opts: ReaperOptions): Promise<number> {
  const { redis, keys } = opts;
  let reaped = 0;
  for (const uid of await redis.smembers(keys.webhookGateways)) {
    if ((await redis.exists(keys.node(uid))) === 1) continue;
    const flat = await redis.tidingsWebhookTake(keys.webhookConnections(uid), keys.webhookGateways, uid);
    if (flat.length === 0) continue;
    reaped += await queueDisconnects(opts, flat);
    opts.log.info({ gateway: uid, connections: flat.length / 2 }, 'sent the disconnects of a gateway that is gone');
  }
  return reaped;
}

async function queueDisconnects(opts: ReaperOptions, flat: string[]): Promise<number> {
  const count = flat.length / 2;
  metrics.webhookReaped.inc(count);
  if (!opts.settings.events.has('disconnect')) return count;
  const byPartition = new Map<number, { name: string; data: WebhookJob; opts: ReturnType<typeof webhookJobOptions> }[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const event = mintEvent({ type: 'disconnect', user: flat[i + 1]!, client: flat[i]!, reason: GATEWAY_GONE });
    const p = webhookPartitionOf(event, opts.settings.partitions);
    const job = { name: 'event', data: { body: JSON.stringify(event), at: Date.parse(event.time) }, opts: webhookJobOptions(event.id) };
    const list = byPartition.get(p);
    if (list) list.push(job);
    else byPartition.set(p, [job]);
  }
  await Promise.all([...byPartition].map(([p, jobs]) => opts.queues[p]!.addBulk(jobs)));
  return count;
}

/** Looks every `intervalMs` until the returned stop is called; a failed look is logged and the next one tries again. */
export function scheduleReaper(opts: ReaperOptions, intervalMs: number): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => reapDeadGateways(opts)).catch((err: unknown) => opts.log.warn({ err }, 'could not look for dead gateways'));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
