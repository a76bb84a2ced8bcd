/**
 * The concurrency/ownership guard: one BullMQ worker per partition queue, run only while
 * this process owns the partition's lease (./leases.ts: each worker process owns a fair
 * share), and the rule that makes a partition's channels numbered by one transaction at a
 * time, in queue order: at most one job of a partition is active across every worker
 * process (BullMQ global concurrency 1, per-process concurrency 1).
 *
 * Global concurrency lives in Redis, and a Redis that lost its data (restart without
 * persistence, FLUSHALL) forgets it, which would let two workers take jobs of one partition
 * at once and break publisher order. So it is asserted before any worker runs and then
 * re-asserted every lockMs/4 (the ingest client also asserts it before every add).
 *
 * A stalled job is a crashed worker, never a poisonous job: BullMQ's stall check puts it
 * back at the head of its queue for another worker, however often that happens. Job locks
 * last `lockMs` (renewed every half of it) and the stall check runs every quarter of it, so
 * the job of a worker killed mid-job runs again within about 1.75 × lockMs, on the worker
 * that took over its partition when its lease expired (after `lockMs` too).
 */
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { partitionQueueName, type Keys } from '../bus/keys.js';
import { withScripts } from '../bus/scripts.js';
import type { Logger } from '../observability/logger.js';
import { PartitionLeases } from './leases.js';
import type { JobProcessor } from './processor.js';

export interface PersistWorker {
  /** Resolves when this worker took its first share of partitions and consumes them. */
  ready(): Promise<void>;
  /** Finishes the jobs in progress (or gives up on one stuck retrying), then stops. */
  close(): Promise<void>;
}

export interface GuardOptions {
  /** BullMQ duplicates it for its blocking reads. */
  redis: Redis;
  keys: Keys;
  partitions: number;
  lockMs: number;
  log: Logger;
  processor: JobProcessor;
  /** Called first on close, so a job retrying in place gives up (and is put back) instead of holding close up. */
  stopProcessing(): void;
}

export function guardPartitions(opts: GuardOptions): PersistWorker {
  const workers = Array.from({ length: opts.partitions }, (_, partition) => partitionWorker(opts, partition));
  // Kept open to re-assert global concurrency (see the header).
  const queues = workers.map((_, partition) => partitionQueue(opts, partition));
  const guard = setInterval(() => {
    assertConcurrency(queues).catch((err: unknown) => opts.log.warn({ err }, 'could not check queue concurrency'));
  }, Math.max(250, Math.floor(opts.lockMs / 4)));
  guard.unref();
  const leases = new PartitionLeases(
    { redis: withScripts(opts.redis), keys: opts.keys, partitions: opts.partitions, ttlMs: opts.lockMs, workerId: `wk-${randomUUID()}`, log: opts.log },
    {
      start: (p) => workers[p]!.resume(),
      stop: (p, drain) => workers[p]!.pause(!drain),
    },
  );
  const started = startWorkers(opts, queues, workers, leases);
  let closing: Promise<void> | undefined;
  const close = async () => {
    clearInterval(guard);
    opts.stopProcessing();
    await started.catch(() => {});
    await leases.close().catch((err: unknown) => opts.log.warn({ err }, 'could not hand the partitions back'));
    await Promise.all(workers.map((w) => w.close().catch((err) => opts.log.warn({ err }, 'worker close failed'))));
    await Promise.all(queues.map((q) => q.close().catch(() => {})));
  };
  return {
    ready: () => started,
    close: () => (closing ??= close()),
  };
}

function partitionWorker(opts: GuardOptions, partition: number): Worker {
  const worker = new Worker(partitionQueueName(partition), opts.processor, {
    connection: opts.redis,
    prefix: opts.keys.queuePrefix,
    concurrency: 1,
    lockDuration: opts.lockMs,
    stalledInterval: Math.max(250, Math.floor(opts.lockMs / 4)),
    // A stalled job is a crashed worker, not a poisonous job: never fail it for that.
    maxStalledCount: 1_000_000,
    autorun: false,
  });
  worker.on('failed', (job, err) => opts.log.error({ err, jobId: job?.id, partition }, 'ingest job failed'));
  worker.on('error', (err) => opts.log.warn({ err, partition }, 'queue worker error'));
  return worker;
}

function partitionQueue(opts: GuardOptions, partition: number): Queue {
  const queue = new Queue(partitionQueueName(partition), { connection: opts.redis, prefix: opts.keys.queuePrefix });
  // Connection errors are reported once by the redis connection's listener (app/redis.ts).
  queue.on('error', () => {});
  return queue;
}

async function assertConcurrency(queues: Queue[]): Promise<void> {
  await Promise.all(
    queues.map(async (queue) => {
      if ((await queue.getGlobalConcurrency()) !== 1) await queue.setGlobalConcurrency(1);
    }),
  );
}

/** No worker takes a job before global concurrency is asserted. */
async function startWorkers(opts: GuardOptions, queues: Queue[], workers: Worker[], leases: PartitionLeases): Promise<void> {
  await assertConcurrency(queues);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await leases.start();
  opts.log.info({ partitions: opts.partitions, owned: leases.ownedPartitions }, 'persist worker consuming');
}
