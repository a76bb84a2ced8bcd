/**
 * The job processor: what a persist worker does with one job of a partition queue. Its
 * kinds are all taken in queue order and in their gateway's stream order (job `s`/`x`,
 * src/persist/order.ts):
 *
 * - a publication batch: handed to the group commit (./group.ts), which commits it with the
 *   other jobs taken meanwhile (one PostgreSQL transaction) and fans them out (one Redis
 *   round: cache, position, publish, acks to the gateways);
 * - a bundle of several partitions' batches (src/ingest/job.ts): each part handled as the
 *   batch job of its partition would be;
 * - a history removal: delete the stored publications → clear the cache → ack.
 *
 * Each step retries in place on transient failures (src/persist/retry.ts): a job never goes
 * back to the queue behind newer ones. Two ways out remain. Stopping while a step keeps
 * failing puts the job back at the head of its queue for the next worker. A permanent failure
 * rejects that job alone: its publishers hear error 100 at once, and the job moves to failed,
 * so the partition goes on with the next one.
 */
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { partitionQueueName, type Keys } from '../bus/keys.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import type { Database } from '../db/client.js';
import { removeHistory } from '../db/repos/publications.js';
import type { JobOrder } from '../db/repos/streams.js';
import {
  HISTORY_REMOVE_JOB_NAME,
  INGEST_BUNDLE_JOB_NAME,
  splitStorable,
  jobStream,
  parseHistoryRemoveJob,
  parseIngestBundle,
  parseIngestJob,
  type HistoryRemoveJob,
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
  return (job, token) => {
    if (job.name === HISTORY_REMOVE_JOB_NAME) return processRemoval(opts, job, token);
    if (job.name === INGEST_BUNDLE_JOB_NAME) return processBundle(opts, job, token);
    return processBatch(opts, job, token);
  };
}

/** One partition's batch of a job, and its place in its gateway's stream on that partition. */
interface Part {
  gatewayId: string;
  partition: string;
  pubs: NewPublication[];
  order: JobOrder | undefined;
}

/** A publication batch: a job with one part, on its own queue. */
async function processBatch(opts: JobProcessorOptions, job: Job, token: string | undefined): Promise<number> {
  const batch = parseIngestJob(job.data);
  if (!batch) throw new UnrecoverableError('malformed ingest job');
  const part: Part = { gatewayId: batch.g, partition: partitionLabel(job.queueName), pubs: batch.p, order: orderOf(job.queueName, batch) };
  return processParts(opts, job, token, [part]);
}

/** A bundle (src/ingest/job.ts): each part is committed as the job of its own partition would be. */
async function processBundle(opts: JobProcessorOptions, job: Job, token: string | undefined): Promise<number> {
  const bundle = parseIngestBundle(job.data);
  if (!bundle) throw new UnrecoverableError('malformed ingest bundle');
  const parts = bundle.b.map((part): Part => {
    const queue = partitionQueueName(part.q);
    return { gatewayId: bundle.g, partition: String(part.q), pubs: part.p, order: orderOf(queue, { g: bundle.g, ...part }) };
  });
  return processParts(opts, job, token, parts);
}

/**
 * Every part is handed to the group commit at once (they usually share a round). The job is
 * put back when stopping interrupted a part and nothing failed for good; a part that failed
 * for good is rejected alone, and the job then moves to failed (it is never run again, so
 * what its other unfinished parts hold is decided by their gateway's timeout, in PostgreSQL).
 */
async function processParts(opts: JobProcessorOptions, job: Job, token: string | undefined, parts: Part[]): Promise<number> {
  const started = performance.now();
  const results = await Promise.allSettled(parts.map((part) => commitPart(opts, part)));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ part: parts[i]!, err: r.reason as unknown }] : []));
  if (failures.length === 0) {
    metrics.bullmqJobBatches.observe(parts.length);
    const seconds = (performance.now() - started) / 1000;
    for (const part of parts) metrics.jobDuration.observe({ partition: part.partition }, seconds);
    return parts.reduce((n, part) => n + part.pubs.length, 0);
  }
  const final = failures.filter((f) => !(f.err instanceof ShuttingDown));
  if (final.length === 0) return putBack(opts.log, job, token);
  for (const { part, err } of final) {
    // An error reply means never committed (guarantee 1): once the batch is committed, its
    // publishers are answered by their gateway's timeout, which finds the commit.
    if (err instanceof NotFannedOut) opts.log.error({ err: rootCause(err), publications: part.pubs.length }, 'committed batch could not be fanned out');
    else await rejectBatch(opts, part, err);
  }
  const { err } = final[0]!;
  throw new UnrecoverableError(`publication batch ${err instanceof NotFannedOut ? 'not fanned out' : 'rejected'}: ${(err as Error).message}`);
}

/** A part through the group commit; what PostgreSQL could never store is refused alone, before it. */
async function commitPart(opts: JobProcessorOptions, part: Part): Promise<void> {
  const { storable, refused } = splitStorable(part.pubs);
  const outcome = await opts.group.submit({ batch: storable, refused, order: part.order, gatewayId: part.gatewayId, partition: Number(part.partition) });
  countRejections(outcome.rejected);
  metrics.jobPublications.observe(part.pubs.length);
}

/** API history_remove, in queue order: delete the stored publications, then the cache, then ack. */
async function processRemoval(opts: JobProcessorOptions, job: Job, token: string | undefined): Promise<number> {
  const removal = parseHistoryRemoveJob(job.data);
  if (!removal) throw new UnrecoverableError('malformed history_remove job');
  const order = orderOf(job.queueName, removal);
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
async function rejectBatch(opts: JobProcessorOptions, part: Part, err: unknown): Promise<void> {
  opts.log.error({ err: rootCause(err), publications: part.pubs.length }, 'batch can never be committed; moving it to failed');
  const ids = part.pubs.map((p) => p.id);
  await rejectPublications(opts.redis, opts.keys, part.gatewayId, ids, Errors.internal.code, Number(part.partition)).catch(() => {});
}

async function rejectRemoval(opts: JobProcessorOptions, removal: HistoryRemoveJob, err: unknown): Promise<void> {
  opts.log.error({ err: rootCause(err), channel: removal.channel }, 'history removal can never be committed; moving it to failed');
  const partition = opts.keys.partitionOfChannel(removal.channel);
  await rejectPublications(opts.redis, opts.keys, removal.g, [removal.i], Errors.internal.code, partition).catch(() => {});
}

function retryOptions(opts: JobProcessorOptions): { log: Logger; signal: AbortSignal } {
  return { log: opts.log, signal: opts.signal };
}

/** The job's place in its gateway's stream of jobs on this partition (absent from old gateways). */
function orderOf(queueName: string, data: Sequenced & { g: string }): JobOrder | undefined {
  return data.s === undefined ? undefined : { stream: jobStream(data.g, queueName), seq: data.s, skipGap: data.x === true };
}

function partitionLabel(queueName: string): string {
  return queueName.slice('ingest-'.length);
}

function countRejections(rejected: { why: string }[]): void {
  for (const r of rejected) metrics.rejectedPublications.inc({ reason: r.why === 'refused' ? 'refused' : 'turn_passed' });
}
