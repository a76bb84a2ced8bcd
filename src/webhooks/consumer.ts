/**
 * The worker's side of lifecycle webhooks: one BullMQ worker per delivery queue, each with one
 * job at a time, and BullMQ's global concurrency of 1 on each queue, so across every worker
 * process a queue has one event in flight: with retries in place (./delivery.ts), that is
 * what keeps each user's events in order. Global concurrency lives in Redis, and a Redis that
 * lost its data forgets it, so it is re-asserted now and then (as src/persist/guard.ts does).
 *
 * A worker killed mid-delivery leaves its job locked; BullMQ's stall check puts it back at the
 * head of its queue after the lock lapses (LOCK_MS), and another worker sends it again (same
 * id: at least once). The same workers run the reaper (./reaper.ts).
 */
import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../bus/client.js';
import { webhookQueueName, type Keys } from '../bus/keys.js';
import { withScripts } from '../bus/scripts.js';
import type { WebhookSettings } from '../config/webhooks.js';
import type { Logger } from '../observability/logger.js';
import { metrics, onScrape } from '../observability/metrics.js';
import { DeadLetters } from './dead-letters.js';
import { makeDeliveryProcessor } from './delivery.js';
import { scheduleReaper } from './reaper.js';

/** A delivery's lock; a killed worker's event is sent again within about this much. */
const LOCK_MS = 10_000;

export interface WebhookConsumerOptions {
  /** BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  keys: Keys;
  settings: WebhookSettings;
  /** How often to look for dead gateways: a fraction of the presence TTL, so their disconnects come within it. */
  reapIntervalMs: number;
  log: Logger;
}

export interface WebhookConsumer {
  close(): Promise<void>;
}

export async function startWebhookConsumer(opts: WebhookConsumerOptions): Promise<WebhookConsumer> {
  const stopping = new AbortController();
  const deadLetters = new DeadLetters(opts.redis, opts.keys);
  const processor = makeDeliveryProcessor({ settings: opts.settings, deadLetters, log: opts.log, signal: stopping.signal });
  const queues = Array.from({ length: opts.settings.partitions }, (_, p) => {
    const queue = new Queue(webhookQueueName(p), { connection: opts.redis, prefix: opts.keys.webhookQueuePrefixOf(p) });
    queue.on('error', () => {}); // reported once by the connection's own listener (app/redis.ts)
    return queue;
  });
  await assertConcurrency(queues);
  const guard = setInterval(() => void assertConcurrency(queues).catch((err: unknown) => opts.log.warn({ err }, 'could not check webhook queue concurrency')), 5000);
  guard.unref();
  const workers = queues.map((_, p) => deliveryWorker(opts, p, processor));
  const stopReaper = scheduleReaper({ redis: withScripts(opts.redis), keys: opts.keys, settings: opts.settings, queues, log: opts.log }, opts.reapIntervalMs);
  const stopScrape = onScrape(async () => metrics.webhookDeadLetters.set(await deadLetters.count()));
  opts.log.info({ queues: queues.length }, 'webhook delivery consuming');
  return {
    close: async () => {
      clearInterval(guard);
      stopScrape();
      stopping.abort();
      await stopReaper();
      await Promise.all(workers.map((w) => w.close().catch((err: unknown) => opts.log.warn({ err }, 'webhook worker close failed'))));
      await Promise.all(queues.map((q) => q.close().catch(() => {})));
    },
  };
}

function deliveryWorker(opts: WebhookConsumerOptions, partition: number, processor: ReturnType<typeof makeDeliveryProcessor>): Worker {
  const worker = new Worker(webhookQueueName(partition), processor, {
    connection: opts.redis,
    prefix: opts.keys.webhookQueuePrefixOf(partition),
    concurrency: 1,
    lockDuration: LOCK_MS,
    stalledInterval: LOCK_MS / 2,
    // A stalled job is a crashed worker, not a poisonous event: never fail it for that.
    maxStalledCount: 1_000_000,
  });
  worker.on('failed', (job, err) => opts.log.error({ err, jobId: job?.id, partition }, 'webhook job failed'));
  worker.on('error', (err) => opts.log.warn({ err, partition }, 'webhook worker error'));
  return worker;
}

async function assertConcurrency(queues: Queue[]): Promise<void> {
  await Promise.all(
    queues.map(async (queue) => {
      if ((await queue.getGlobalConcurrency()) !== 1) await queue.setGlobalConcurrency(1);
    }),
  );
}
