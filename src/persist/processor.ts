/**
 * The job processor: what a persist worker does with one job of a partition queue. Two job
 * kinds, both taken in queue order and in their gateway's stream order (job `s`/`x`,
 * src/persist/order.ts):
 *
 * - a publication batch: handed to the group commit (./group.ts), which commits it with the
 *   other jobs taken meanwhile (one PostgreSQL transaction) and fans them out (one Redis
 *   round: cache, position, publish, acks to the gateways);
 * - a history removal: delete the stored publications → clear the cache → ack.
 *
 * Each step retries in place on transient failures (src/persist/retry.ts): a job never goes
 * back to the queue behind newer ones. Two ways out remain. Stopping while a step keeps
 * failing puts the job back at the head of its queue for the next worker. A permanent failure
 * rejects that job alone: its publishers hear error 100 at once, and the job moves to failed,
 * so the partition goes on with the next one.
 */
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Keys } from '../bus/keys.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import type { Database } from '../db/client.js';
import { removeHistory } from '../db/repos/publications.js';
import type { JobOrder } from '../db/repos/streams.js';
import {
  HISTORY_REMOVE_JOB_NAME,
  isStorable,
  jobStream,
  parseHistoryRemoveJob,
  parseIngestJob,
  type HistoryRemoveJob,
  type IngestJob,
  type Sequenced,
} from '../ingest/job.js';
import type { Logger } from '../observability/logger.js';
import type { NewPublication } from '../protocol/publication.js';
import { metrics } from '../observability/metrics.js';
import { Errors } from '../protocol/codes.js';
import { clearHistoryCache, rejectPublications, type CachePolicy } from './fanout.js';
import { NotFannedOut, type GroupCommit } from './group.js';
import { inTurn } from './order.js';
import { retryInPlace, rootCause, settlesWithin, ShuttingDown } from './retry.js';

export interface JobProcessorOptions {
  database: Database;
  /** Where publication batches are committed and fanned out, together with the other jobs taken meanwhile. */
  group: GroupCommit;
  redis: ScriptedRedis;
  keys: Keys;
  cache: CachePolicy;
  log: Logger;
  /** Aborted when the worker stops: a step retrying in place gives up, and its job is put back. */
  signal: AbortSignal;
}

/** BullMQ's processor: resolves with the number of publications handled. */
export type JobProcessor = (job: Job, token?: string) => Promise<number>;

export function makeJobProcessor(opts: JobProcessorOptions): JobProcessor {
  return (job, token) =>
    job.name === HISTORY_REMOVE_JOB_NAME ? processRemoval(opts, job, token) : processBatch(opts, job, token);
}

/** A publication batch: committed and fanned out with its group; put back when stopping, rejected when it can never commit. */
async function processBatch(opts: JobProcessorOptions, job: Job, token: string | undefined): Promise<number> {
  const batch = parseIngestJob(job.data);
  if (!batch) throw new UnrecoverableError('malformed ingest job');
  const started = performance.now();
  // One pass: a job carries up to TIDINGS_BATCH_MAX publications.
  const storable: NewPublication[] = [];
  const refused: string[] = [];
  for (const pub of batch.p) {
    if (isStorable(pub)) storable.push(pub);
    else refused.push(pub.id);
  }
  try {
    const outcome = await opts.group.submit({ batch: storable, refused, order: orderOf(job, batch), gatewayId: batch.g });
    countRejections(outcome.rejected);
    metrics.jobDuration.observe({ partition: job.queueName.slice('ingest-'.length) }, (performance.now() - started) / 1000);
    metrics.jobPublications.observe(batch.p.length);
    return batch.p.length;
  } catch (err) {
    if (err instanceof ShuttingDown) return putBack(opts.log, job, token);
    // An error reply means never committed (guarantee 1): once the batch is committed, its
    // publishers are answered by their gateway's timeout, which finds the commit.
    const committed = err instanceof NotFannedOut;
    if (committed) opts.log.error({ err: rootCause(err), publications: batch.p.length }, 'committed batch could not be fanned out');
    else await rejectBatch(opts, batch, err);
    throw new UnrecoverableError(`publication batch ${committed ? 'not fanned out' : 'rejected'}: ${(err as Error).message}`);
  }
}

/** API history_remove, in queue order: delete the stored publications, then the cache, then ack. */
async function processRemoval(opts: JobProcessorOptions, job: Job, token: string | undefined): Promise<number> {
  const removal = parseHistoryRemoveJob(job.data);
  if (!removal) throw new UnrecoverableError('malformed history_remove job');
  const order = orderOf(job, removal);
  const retry = retryOptions(opts);
  try {
    const position = await retryInPlace(
      'remove history',
      () => inTurn(order, (o) => removeHistory(opts.database.db, removal.channel, o, removal.i), retry),
      retry,
    );
    await opts.group.settled();
    const clear = () => clearHistoryCache(opts.redis, opts.keys, removal, position);
    await retryInPlace('clear history cache', () => settlesWithin('clear history cache', 5000, clear), retry);
    return 1;
  } catch (err) {
    if (err instanceof ShuttingDown) return putBack(opts.log, job, token);
    await rejectRemoval(opts, removal, err);
    throw new UnrecoverableError(`history removal rejected: ${(err as Error).message}`);
  }
}

/**
 * Stopping while a step keeps failing: hand the job back to the head of its queue (the
 * same place a stalled job goes) so the next worker repeats it before anything newer.
 */
async function putBack(log: Logger, job: Job, token: string | undefined): Promise<never> {
  await job.moveToWait(token).catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not hand the job back; the stall check will'));
  throw new WaitingError();
}

/** A permanent failure: tell the gateway now rather than letting its clients time out. */
async function rejectBatch(opts: JobProcessorOptions, batch: IngestJob, err: unknown): Promise<void> {
  opts.log.error({ err: rootCause(err), publications: batch.p.length }, 'batch can never be committed; moving it to failed');
  const ids = batch.p.map((p) => p.id);
  await rejectPublications(opts.redis, opts.keys, batch.g, ids, Errors.internal.code).catch(() => {});
}

async function rejectRemoval(opts: JobProcessorOptions, removal: HistoryRemoveJob, err: unknown): Promise<void> {
  opts.log.error({ err: rootCause(err), channel: removal.channel }, 'history removal can never be committed; moving it to failed');
  await rejectPublications(opts.redis, opts.keys, removal.g, [removal.i], Errors.internal.code).catch(() => {});
}

function retryOptions(opts: JobProcessorOptions): { log: Logger; signal: AbortSignal } {
  return { log: opts.log, signal: opts.signal };
}

/** The job's place in its gateway's stream of jobs on this partition (absent from old gateways). */
function orderOf(job: Job, data: Sequenced & { g: string }): JobOrder | undefined {
  return data.s === undefined ? undefined : { stream: jobStream(data.g, job.queueName), seq: data.s, skipGap: data.x === true };
}

function countRejections(rejected: { why: string }[]): void {
  for (const r of rejected) metrics.rejectedPublications.inc({ reason: r.why === 'refused' ? 'refused' : 'turn_passed' });
}
