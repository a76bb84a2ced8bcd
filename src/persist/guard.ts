/**
 * The concurrency/ownership guard: one BullMQ worker per partition queue, run only while
 * this process owns the partition's lease (./leases.ts: each worker process owns a fair
 * share). It takes up to ACTIVE_JOBS_PER_PARTITION jobs of a partition at once (in queue
 * order), so a group commit (./group.ts) sees every job the gateways have in flight, not
 * one per partition. Publisher order does not rest on this: PostgreSQL commits each
 * gateway's jobs in their order, and offsets are assigned under each channel's row lock.
 *
 * The same bound holds across worker processes through BullMQ's global concurrency, so a
 * partition changing owner never has more than that many jobs active. It lives in Redis,
 * and a Redis that lost its data (restart without persistence, FLUSHALL) forgets it, so it
 * is asserted before any worker runs and then re-asserted every lockMs/4.
 *
 * A stalled job is a crashed worker, never a poisonous job: BullMQ's stall check puts it
 * back at the head of its queue for another worker, however often that happens. Job locks
 * last `lockMs` (renewed every half of it) and the stall check runs every quarter of it, so
 * the job of a worker killed mid-job runs again within about 1.75 × lockMs, on the worker
 * that took over its partition when its lease expired (after `lockMs` too).
 */
import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../bus/client.js';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionQueueName, type Keys } from '../bus/keys.js';
import { withScripts } from '../bus/scripts.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { PartitionLeases, withinMs } from './leases.js';
import { ConsumerWatch } from './watch.js';
import type { JobProcessor } from './processor.js';

/**
 * Jobs of one partition active at once. Each gateway keeps TIDINGS_INFLIGHT_JOBS (1 by
 * default) jobs per partition unacknowledged, so this covers 16 gateways; beyond that, jobs
 * wait in the queue for the next round.
 */
export const ACTIVE_JOBS_PER_PARTITION = 16;

export interface PersistWorker {
  /** Resolves when this worker took its first share of partitions and consumes them. */
  ready(): Promise<void>;
  /** Finishes the jobs in progress (or gives up on one stuck retrying), then stops. */
  close(): Promise<void>;
  /** The BullMQ worker consuming a partition now (diagnosis and tests: the watch may replace it). */
  consumerOf(partition: number): Worker | undefined;
  /** The partitions whose leases this worker holds now (the outbox relay takes their rows). */
  ownedPartitions(): number[];
}

export interface GuardOptions {
  /** BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  keys: Keys;
  partitions: number;
  lockMs: number;
  log: Logger;
  /** This worker's node name (API `workers`). */
  name?: string | undefined;
  processor: JobProcessor;
  /** Called first on close, so a job retrying in place gives up (and is put back) instead of holding close up. */
  stopProcessing(): void;
}

export function guardPartitions(opts: GuardOptions): PersistWorker {
  // Kept open to re-assert global concurrency (see the header), and for the watch.
  const queues = Array.from({ length: opts.partitions }, (_, partition) => partitionQueue(opts, partition));
  // A wedged one is replaced (./watch.ts): always read through the array.
  const workers: Worker[] = [];
  const watch = new ConsumerWatch({
    queues,
    owned: () => leases.ownedPartitions,
    intervalMs: Math.max(1000, 2 * opts.lockMs),
    restart: (p, waiting) => replaceConsumer(opts, workers, p, waiting, watch),
    log: opts.log,
  });
  for (let partition = 0; partition < opts.partitions; partition++) workers.push(partitionWorker(opts, partition, watch));
  const guard = setInterval(() => {
    assertConcurrency(queues).catch((err: unknown) => opts.log.warn({ err }, 'could not check queue concurrency'));
  }, Math.max(250, Math.floor(opts.lockMs / 4)));
  guard.unref();
  const leases = new PartitionLeases(
    { redis: withScripts(opts.redis), keys: opts.keys, partitions: opts.partitions, ttlMs: opts.lockMs, workerId: `wk-${randomUUID()}`, name: opts.name, log: opts.log },
    {
      start: async (p) => {
        // Bounded: a Redis that is away must not hold up the lease round (renewals of the others).
        await withinMs(takeOver(opts, queues[p]!, workers[p]!, p), opts.lockMs);
        workers[p]!.resume();
      },
      stop: (p, drain) => workers[p]!.pause(!drain),
    },
  );
  const started = startWorkers(opts, queues, workers, leases).then(() => watch.start());
  let closing: Promise<void> | undefined;
  const close = async () => {
    clearInterval(guard);
    watch.stop();
    opts.stopProcessing();
    await started.catch(() => {});
    const phase = (name: string, work: () => Promise<unknown>) => closePhase(opts, name, work);
    await phase('hand the partitions back', () => leases.close());
    await phase('stop the partition consumers', () => Promise.all(workers.map((w) => w.close())));
    await phase('close the queues', () => Promise.all(queues.map((q) => q.close())));
  };
  return {
    ready: () => started,
    close: () => (closing ??= close()),
    consumerOf: (partition) => workers[partition],
    ownedPartitions: () => leases.ownedPartitions,
  };
}

/** A new consumer for the partition in place of a wedged one, which is closed without waiting for it. */
function replaceConsumer(opts: GuardOptions, workers: Worker[], partition: number, waiting: number, watch: ConsumerWatch): void {
  opts.log.warn({ partition, waiting }, 'partition consumer took no job while jobs waited and none was active; replacing it');
  metrics.consumerRestarts.inc();
  const wedged = workers[partition]!;
  workers[partition] = partitionWorker(opts, partition, watch);
  void withinMs(wedged.close(true), opts.lockMs);
  void workers[partition]!.resume();
}

function partitionWorker(opts: GuardOptions, partition: number, watch: ConsumerWatch): Worker {
  const worker = new Worker(partitionQueueName(partition), opts.processor, {
    connection: opts.redis,
    prefix: opts.keys.queuePrefixOf(partition),
    concurrency: ACTIVE_JOBS_PER_PARTITION,
    lockDuration: opts.lockMs,
    stalledInterval: Math.max(250, Math.floor(opts.lockMs / 4)),
    // A stalled job is a crashed worker, not a poisonous job: never fail it for that.
    maxStalledCount: 1_000_000,
    autorun: false,
  });
  worker.on('active', () => watch.started(partition));
  worker.on('failed', (job, err) => opts.log.error({ err, jobId: job?.id, partition }, 'ingest job failed'));
  worker.on('error', (err) => opts.log.warn({ err, partition }, 'queue worker error'));
  return worker;
}

function partitionQueue(opts: GuardOptions, partition: number): Queue {
  const queue = new Queue(partitionQueueName(partition), { connection: opts.redis, prefix: opts.keys.queuePrefixOf(partition) });
  // Connection errors are reported once by the redis connection's listener (app/redis.ts).
  queue.on('error', () => {});
  return queue;
}

async function assertConcurrency(queues: Queue[]): Promise<void> {
  await Promise.all(
    queues.map(async (queue) => {
      if ((await queue.getGlobalConcurrency()) !== ACTIVE_JOBS_PER_PARTITION) await queue.setGlobalConcurrency(ACTIVE_JOBS_PER_PARTITION);
    }),
  );
}

/**
 * A partition just taken over. Jobs still active in its queue were the last owner's, which
 * lost its lease (died, froze, or handed the partition back without finishing): they go back
 * to the head of the queue now, through BullMQ's own stall check, instead of when their
 * locks expire (up to TIDINGS_WORKER_LOCK_MS later). And the queue's marker is set, so this
 * worker looks at the waiting jobs at once (`tidingsTakeOver`, src/bus/scripts.ts). Those two
 * waits were most of a failover. If the last owner is alive after all, it may still finish
 * such a job; PostgreSQL's stream order makes the second run find it decided and acknowledge
 * it again, nothing more.
 */
async function takeOver(opts: GuardOptions, queue: Queue, worker: Worker, partition: number): Promise<void> {
  try {
    const keys = queue.keys;
    const orphaned = await withScripts(opts.redis).tidingsTakeOver(
      keys.active!,
      keys.stalled!,
      keys['stalled-check']!,
      keys.marker!,
      queue.toKey(''),
    );
    if (orphaned === 0) return;
    // Private in BullMQ's typings, but the one entry point to its stall handling (events,
    // stall counts, head-of-queue placement); without it the timer gets there a little later.
    await (worker as unknown as { moveStalledJobsToWait?: () => Promise<void> }).moveStalledJobsToWait?.();
    opts.log.info({ partition, orphaned }, 'took over a partition; its last owner’s active jobs are back in the queue');
  } catch (err) {
    opts.log.warn({ err, partition }, 'could not requeue the last owner’s jobs; the stall check will');
  }
}

/**
 * How long one phase of closing may take. Jobs were told to stop (a step retrying in place
 * gives up, a job waiting for its turn is put back), so a phase that takes longer is waiting
 * on something that will not come: a Redis command lost across a reconnect leaves BullMQ's
 * close waiting for its fetch loop forever. Closing goes on; the worker's Redis connection,
 * closed next, fails whatever is left, and another worker's stall check takes any job this
 * one still held.
 */
const CLOSE_PHASE_MS = 10_000;

async function closePhase(opts: GuardOptions, name: string, work: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const done = work().then(
    () => true,
    (err: unknown) => {
      opts.log.warn({ err, phase: name }, 'closing the persist worker: a step failed');
      return true;
    },
  );
  if (await Promise.race([done, sleep(CLOSE_PHASE_MS, false, { ref: false })])) return;
  opts.log.warn({ phase: name, waitedMs: Math.round(performance.now() - started) }, 'closing the persist worker: a step did not finish; going on');
}

/** No worker takes a job before global concurrency is asserted. */
async function startWorkers(opts: GuardOptions, queues: Queue[], workers: Worker[], leases: PartitionLeases): Promise<void> {
  await assertConcurrency(queues);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await leases.start();
  opts.log.info({ partitions: opts.partitions, owned: leases.ownedPartitions }, 'persist worker consuming');
}
