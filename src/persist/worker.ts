/**
 * The persist worker: consumes the partition queues, one job at a time per partition across
 * every worker process (BullMQ global concurrency 1), so the channels of a partition are
 * numbered by exactly one transaction at a time, in queue order (guarantees 2 and 3).
 *
 * A job is: commit (one PostgreSQL transaction) → fan out (one Redis round). Both steps
 * retry in place on transient failures. If this process dies mid-job, BullMQ's stall check
 * puts the job back at the head of the wait list and another worker repeats it; the
 * commit step recognises publications it already stored (guarantee 5), and the fan-out
 * step is idempotent.
 */
import { Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { partitionQueueName, type Keys } from '../bus/keys.js';
import type { Database } from '../db/client.js';
import { persistBatch, removeHistory } from '../db/repos/publications.js';
import type { JobOrder } from '../db/repos/streams.js';
import {
  HISTORY_REMOVE_JOB_NAME,
  isStorable,
  parseHistoryRemoveJob,
  parseIngestJob,
  type IngestJob,
  type Sequenced,
} from '../ingest/job.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { Errors } from '../protocol/codes.js';
import { withScripts } from '../bus/scripts.js';
import { clearHistoryCache, fanoutCommitted, rejectPublications, type CachePolicy } from './fanout.js';
import { inTurn } from './order.js';
import { isTransient, retryInPlace, ShuttingDown } from './retry.js';

export interface PersistWorkerOptions {
  database: Database;
  /** Shared connection for commands (fan-out); BullMQ duplicates it for its blocking reads. */
  redis: Redis;
  keys: Keys;
  partitions: number;
  cache: CachePolicy;
  lockMs: number;
  log: Logger;
}

export interface PersistWorker {
  /** Resolves when every partition queue has a running consumer. */
  ready(): Promise<void>;
  /** Finishes the jobs in progress (or gives up on one stuck retrying), then stops. */
  close(): Promise<void>;
}

/** The job's place in its gateway's stream of jobs on this partition (absent from old gateways). */
function orderOf(job: Job, data: Sequenced & { g: string }): JobOrder | undefined {
  return data.s === undefined ? undefined : { stream: `${data.g}/${job.queueName}`, seq: data.s, skipGap: data.x === true };
}

/** A data error: PostgreSQL will refuse the same input on every try. */
function isPermanent(err: unknown): boolean {
  return !isTransient(err);
}

function countRejections(rejected: { why: string }[]): void {
  for (const r of rejected) metrics.rejectedPublications.inc({ reason: r.why === 'refused' ? 'refused' : 'turn_passed' });
}

export function startPersistWorker(opts: PersistWorkerOptions): PersistWorker {
  const redis = withScripts(opts.redis);
  const stopping = new AbortController();
  const log = opts.log;
  const retry = { log, signal: stopping.signal };

  async function process(job: Job, token?: string): Promise<number> {
    if (job.name === HISTORY_REMOVE_JOB_NAME) return processRemoval(job, token);
    const batch = parseIngestJob(job.data);
    if (!batch) throw new UnrecoverableError('malformed ingest job');
    const started = performance.now();
    const storable = batch.p.filter(isStorable);
    const order = orderOf(job, batch);
    try {
      const outcome = await retryInPlace(
        'commit',
        () => inTurn(order, (o) => persistBatch(opts.database.db, storable, o, isPermanent), retry),
        { ...retry, onRetry: () => metrics.storeErrors.inc({ store: 'postgres' }) },
      );
      for (const pub of batch.p) if (!storable.includes(pub)) outcome.rejected.push({ id: pub.id, why: 'refused' });
      countRejections(outcome.rejected);
      await retryInPlace('fanout', () => fanoutCommitted(redis, opts.keys, opts.cache, outcome, batch.g), {
        ...retry,
        onRetry: () => metrics.storeErrors.inc({ store: 'redis' }),
      });
      metrics.jobDuration.observe({ partition: job.queueName.slice('ingest-'.length) }, (performance.now() - started) / 1000);
      metrics.jobPublications.observe(batch.p.length);
      return batch.p.length;
    } catch (err) {
      if (err instanceof ShuttingDown) return putBack(job, token);
      await rejectQuietly(batch, err);
      throw new UnrecoverableError(`publication batch rejected: ${(err as Error).message}`);
    }
  }

  /** API history_remove, in queue order: delete the stored publications, then the cache, then ack. */
  async function processRemoval(job: Job, token: string | undefined): Promise<number> {
    const removal = parseHistoryRemoveJob(job.data);
    if (!removal) throw new UnrecoverableError('malformed history_remove job');
    const order = orderOf(job, removal);
    try {
      const position = await retryInPlace(
        'remove history',
        () => inTurn(order, (o) => removeHistory(opts.database.db, removal.channel, o), retry),
        retry,
      );
      await retryInPlace('clear history cache', () => clearHistoryCache(redis, opts.keys, removal, position), retry);
      return 1;
    } catch (err) {
      if (err instanceof ShuttingDown) return putBack(job, token);
      log.error({ err, channel: removal.channel }, 'history removal can never be committed; moving it to failed');
      await rejectPublications(redis, opts.keys, removal.g, [removal.i], Errors.internal.code).catch(() => {});
      throw new UnrecoverableError(`history removal rejected: ${(err as Error).message}`);
    }
  }

  /**
   * Stopping while a step keeps failing: hand the job back to the head of its queue (the
   * same place a stalled job goes) so the next worker repeats it before anything newer.
   */
  async function putBack(job: Job, token: string | undefined): Promise<never> {
    await job.moveToWait(token).catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not hand the job back; the stall check will'));
    throw new WaitingError();
  }

  /** A permanent failure: tell the gateway now rather than letting its clients time out. */
  async function rejectQuietly(batch: IngestJob, err: unknown) {
    log.error({ err, publications: batch.p.length }, 'batch can never be committed; moving it to failed');
    const ids = batch.p.map((p) => p.id);
    await rejectPublications(redis, opts.keys, batch.g, ids, Errors.internal.code).catch(() => {});
  }

  const workers = Array.from({ length: opts.partitions }, (_, partition) => {
    const worker = new Worker(partitionQueueName(partition), process, {
      connection: opts.redis,
      prefix: opts.keys.queuePrefix,
      concurrency: 1,
      lockDuration: opts.lockMs,
      stalledInterval: opts.lockMs,
      // A stalled job is a crashed worker, not a poisonous job: never fail it for that.
      maxStalledCount: 1_000_000,
      autorun: false,
    });
    worker.on('failed', (job, err) => log.error({ err, jobId: job?.id, partition }, 'ingest job failed'));
    worker.on('error', (err) => log.warn({ err, partition }, 'queue worker error'));
    return worker;
  });

  // Kept open to re-assert global concurrency: it lives in Redis, and a Redis that lost its
  // data (restart without persistence, FLUSHALL) forgets it, which would let two workers
  // take jobs of one partition at once and break publisher order.
  const queues = workers.map(
    (_, partition) => new Queue(partitionQueueName(partition), { connection: opts.redis, prefix: opts.keys.queuePrefix }),
  );
  // Connection errors are reported once by the redis connection's listener (app/redis.ts).
  for (const queue of queues) queue.on('error', () => {});
  const assertConcurrency = async () => {
    await Promise.all(
      queues.map(async (queue) => {
        if ((await queue.getGlobalConcurrency()) !== 1) await queue.setGlobalConcurrency(1);
      }),
    );
  };
  const guard = setInterval(() => {
    assertConcurrency().catch((err: unknown) => log.warn({ err }, 'could not check queue concurrency'));
  }, Math.max(250, Math.floor(opts.lockMs / 4)));
  guard.unref();

  const started = (async () => {
    await assertConcurrency();
    for (const worker of workers) void worker.run().catch((err) => log.error({ err }, 'worker loop ended'));
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    log.info({ partitions: opts.partitions }, 'persist worker consuming');
  })();

  let closing: Promise<void> | undefined;
  return {
    ready: () => started,
    close() {
      closing ??= (async () => {
        clearInterval(guard);
        stopping.abort();
        await started.catch(() => {});
        await Promise.all(workers.map((w) => w.close().catch((err) => log.warn({ err }, 'worker close failed'))));
        await Promise.all(queues.map((q) => q.close().catch(() => {})));
      })();
      return closing;
    },
  };
}
