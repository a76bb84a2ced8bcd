/**
 * Group commit. Every job a worker process takes, from any partition it owns, joins the next
 * round: one `tidings_commit_many` call (one transaction, one WAL flush) and one Redis
 * fan-out round for all of them. Jobs that arrive while a round runs wait for the next one,
 * so a lone job at low load is committed at once and under load a round carries what
 * accumulated meanwhile. At a few publications per job, the transaction and the round trips,
 * not the rows, were most of a job's cost (docs/benchmarks.md).
 *
 * Order needs nothing from the grouping: each job is still committed in its turn of its
 * gateway stream (PostgreSQL refuses it otherwise), and a round lists a stream's jobs in seq
 * order. A job whose predecessor is missing waits, with its stream, for later rounds, up to
 * ORDER_GAP_WAIT_MS (src/persist/order.ts), then commits past the gap.
 *
 * Failures stay per job where they were per job: a publication PostgreSQL refuses fails the
 * group call, and the round is then committed job by job (the savepoint path isolates it).
 */
import type { Database } from '../db/client.js';
import { commitJobs, type JobCommitResult, type JobToCommit } from '../db/repos/commit-many.js';
import { persistBatch, type PersistOutcome } from '../db/repos/publications.js';
import { OrderGap, type JobOrder } from '../db/repos/streams.js';
import { metrics } from '../observability/metrics.js';
import type { NewPublication } from '../protocol/publication.js';
import { deliverCommitted, type CommitPath } from './fanout.js';
import { ORDER_GAP_WAIT_MS } from './order.js';
import { isTransient, retryInPlace, rootCause, settlesWithin, ShuttingDown } from './retry.js';

/** How often a job waiting for an earlier one of its stream asks again. */
const GAP_POLL_MS = 20;
/** A fan-out round that has not settled by then is given up and sent again (it is idempotent). */
const FANOUT_ATTEMPT_MS = 5000;
/** A round's size bound: the statement's parameters and the fan-out round stay a few MiB. */
const MAX_ROUND_PUBLICATIONS = 5000;

export interface GroupCommitOptions extends CommitPath {
  /** Aborted when the worker stops: a round retrying in place gives up and its jobs are put back. */
  signal: AbortSignal;
}

export interface GroupJob {
  /** Publications PostgreSQL can store, in the order they must be numbered. */
  batch: NewPublication[];
  /** Ids refused before the commit (src/ingest/job.ts isStorable): acknowledged as refused. */
  refused: string[];
  order: JobOrder | undefined;
  /** Who waits for the acks; undefined when nobody does (publications from SQL, ./relay.ts). */
  gatewayId: string | undefined;
  /** Its partition: where its rejections are acknowledged in Redis Cluster mode. */
  partition?: number;
}

/** The job was committed but its fan-out (and acks) failed for good. */
export class NotFannedOut extends Error {
  override name = 'NotFannedOut';
}

interface Pending extends GroupJob {
  resolve(outcome: PersistOutcome): void;
  reject(err: unknown): void;
}

/** Streams waiting for an earlier job: when to ask again, and when to stop waiting. */
interface GapWait {
  retryAt: number;
  giveUpAt: number;
}

export class GroupCommit {
  private pending: Pending[] = [];
  private readonly gaps = new Map<string, GapWait>();
  private running = false;
  /** The round in progress, if any. */
  private current: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: GroupCommitOptions) {}

  /** Resolves once the job is committed and fanned out; rejects with ShuttingDown or the job's own failure. */
  submit(job: GroupJob): Promise<PersistOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...job, resolve, reject });
      this.kick();
    });
  }

  /**
   * Resolves when the round in progress (if any) has fanned out: everything committed before
   * this call is then in the Redis cache. A history removal clears the cache only after
   * that, or a round that committed before it could put removed publications back.
   */
  settled(): Promise<void> {
    return this.current ?? Promise.resolve();
  }

  private kick(): void {
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    clearTimeout(this.timer);
    try {
      for (let round = this.takeRound(); round.length > 0; round = this.takeRound()) {
        // A bug in a round must fail its jobs (settled ones ignore it), never the process.
        this.current = this.run(round).catch((err: unknown) => {
          this.opts.log.error({ err }, 'group commit round failed');
          for (const job of round) job.reject(err);
        });
        await this.current;
      }
    } finally {
      this.running = false;
      this.current = undefined;
      this.scheduleGapRetry();
    }
  }

  /**
   * What is ready, in arrival order, each stream's jobs in seq order; bounded in publications.
   * The first job that does not fit ends the round, so no job overtakes an earlier one of its
   * stream only to find its turn not come.
   */
  private takeRound(): Pending[] {
    const now = performance.now();
    const round: Pending[] = [];
    const later: Pending[] = [];
    let size = 0;
    let full = false;
    for (const job of this.pending) {
      const gap = job.order ? this.gaps.get(job.order.stream) : undefined;
      const waiting = gap !== undefined && gap.retryAt > now;
      if (!waiting && !full && (round.length === 0 || size + job.batch.length <= MAX_ROUND_PUBLICATIONS)) {
        round.push(job);
        size += job.batch.length;
      } else {
        full ||= !waiting;
        later.push(job);
      }
    }
    this.pending = later;
    return inStreamOrder(round);
  }

  /** Jobs left are waiting for an earlier job of their stream: ask again when the first may ask. */
  private scheduleGapRetry(): void {
    if (this.pending.length === 0) return this.gaps.clear();
    if (this.opts.signal.aborted) return this.failPending();
    const now = performance.now();
    const next = Math.min(...this.pending.map((j) => (j.order ? this.gaps.get(j.order.stream)?.retryAt ?? now : now)));
    this.timer = setTimeout(() => this.kick(), Math.max(0, next - now));
    this.timer.unref();
  }

  /** Stopping: jobs still waiting for their turn go back to their queues (the processor puts them back). */
  private failPending(): void {
    const pending = this.pending;
    this.pending = [];
    this.gaps.clear();
    for (const job of pending) job.reject(new ShuttingDown('stopped while waiting for an earlier job'));
  }

  private async run(round: Pending[]): Promise<void> {
    let results: RoundResult[];
    try {
      results = await this.commit(round.map((job) => ({ batch: job.batch, order: this.orderNow(job) })));
    } catch (err) {
      for (const job of round) job.reject(err);
      return;
    }
    const committed: { job: Pending; outcome: PersistOutcome }[] = [];
    const gapped: Pending[] = [];
    round.forEach((job, i) => {
      const result = results[i]!;
      if (result instanceof OrderGap) {
        gapped.push(job);
        return this.waitForTurn(job);
      }
      if (result instanceof Error) return job.reject(result);
      if (job.order) this.gaps.delete(job.order.stream);
      for (const id of job.refused) result.rejected.push({ id, why: 'refused' });
      committed.push({ job, outcome: result });
    });
    this.pending = [...gapped, ...this.pending];
    if (committed.length > 0) await this.fanout(committed);
  }

  /** The job's order for this round: past its stream's gap once that was waited for long enough. */
  private orderNow(job: Pending): JobOrder | undefined {
    if (!job.order || job.order.skipGap) return job.order;
    const gap = this.gaps.get(job.order.stream);
    if (!gap || performance.now() < gap.giveUpAt) return job.order;
    metrics.orderGapSkips.inc();
    return { ...job.order, skipGap: true };
  }

  private waitForTurn(job: Pending): void {
    const stream = job.order!.stream;
    const now = performance.now();
    const gap = this.gaps.get(stream);
    this.gaps.set(stream, { retryAt: now + GAP_POLL_MS, giveUpAt: gap?.giveUpAt ?? now + ORDER_GAP_WAIT_MS });
    this.opts.log.debug({ stream, seq: job.order!.seq }, 'waiting for an earlier job of the stream');
  }

  /**
   * One call for the round. When PostgreSQL refuses something in it, job by job: a job that
   * fails then fails alone (its own transaction rolled back: never committed), and the jobs
   * committed before it keep their outcome.
   */
  private async commit(jobs: JobToCommit[]): Promise<RoundResult[]> {
    const retry = { log: this.opts.log, signal: this.opts.signal, onRetry: () => metrics.storeErrors.inc({ store: 'postgres' }) };
    const db = this.opts.database.db;
    try {
      return await retryInPlace('commit', () => commitJobs(this.opts.database.pool, jobs), retry);
    } catch (err) {
      if (err instanceof ShuttingDown) throw err;
      this.opts.log.warn({ err: rootCause(err), jobs: jobs.length }, 'group commit refused; committing its jobs one by one');
    }
    const results: RoundResult[] = [];
    for (const job of jobs) {
      results.push(await retryInPlace('commit', () => commitAlone(db, job), retry).catch((err: unknown) => asError(err)));
    }
    return results;
  }

  private async fanout(committed: { job: Pending; outcome: PersistOutcome }[]): Promise<void> {
    const { log, signal } = this.opts;
    const jobs = committed.map(({ job, outcome }) => ({ outcome, gatewayId: job.gatewayId, partition: job.partition }));
    try {
      const attempt = () => deliverCommitted(this.opts, jobs);
      await retryInPlace('fanout', () => settlesWithin('fanout', FANOUT_ATTEMPT_MS, attempt), {
        log,
        signal,
        onRetry: () => metrics.storeErrors.inc({ store: 'redis' }),
      });
    } catch (err) {
      const failure = err instanceof ShuttingDown ? err : new NotFannedOut((err as Error).message, { cause: err });
      for (const { job } of committed) job.reject(failure);
      return;
    }
    metrics.commitJobs.observe(committed.length);
    for (const { job, outcome } of committed) job.resolve(outcome);
  }
}

/** A job's outcome in a round: committed, waiting for an earlier job, or failed for good. */
type RoundResult = JobCommitResult | Error;

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A job of a refused group: its own transaction, where a refused publication fails alone. */
async function commitAlone(db: Database['db'], job: JobToCommit): Promise<JobCommitResult> {
  try {
    return await persistBatch(db, job.batch, job.order, (err) => !isTransient(err));
  } catch (err) {
    if (err instanceof OrderGap) return err;
    throw err;
  }
}

/** Stable: keeps arrival order but puts each stream's jobs in seq order, in the slots they hold. */
function inStreamOrder(round: Pending[]): Pending[] {
  const byStream = new Map<string, Pending[]>();
  for (const job of round) {
    if (!job.order) continue;
    const list = byStream.get(job.order.stream);
    if (list) list.push(job);
    else byStream.set(job.order.stream, [job]);
  }
  for (const list of byStream.values()) list.sort((a, b) => a.order!.seq - b.order!.seq);
  const next = new Map([...byStream].map(([stream]) => [stream, 0]));
  return round.map((job) => {
    if (!job.order) return job;
    const stream = job.order.stream;
    const i = next.get(stream)!;
    next.set(stream, i + 1);
    return byStream.get(stream)![i]!;
  });
}
