/**
 * Definitive answers for the publications whose acks did not come (issue 12): the gateway's
 * half of ./outcomes.ts.
 *
 * - At the publish timeout, a job that was sent (or whose add failed: it may exist) is
 *   decided in PostgreSQL, the whole job in one call: what it committed gets its success
 *   reply with its offset, the rest an error, and that error is final: the job was cancelled
 *   (or its turn had passed), so no worker will commit it later.
 * - After the ack topic reconnects, the jobs in flight are looked up, read-only, so what
 *   committed while acks could not arrive is answered at once rather than at the timeout.
 *
 * When PostgreSQL does not answer, the job is asked about again (full-jitter backoff, each
 * try bounded) until it does, and only then answered. The choice, and why: an error reply
 * sent without PostgreSQL's word could be followed by the commit (the job may be running
 * right now), and a client that retries would duplicate it; with no reply, the SDK's own
 * call timeout (5 s) tells the app that the outcome is unknown, which is the truth. So the
 * one case left without a definitive answer is a gateway that cannot reach PostgreSQL at the
 * timeout, and there the client hears no reply rather than a wrong one. Waiting costs little:
 * only sent jobs wait (at most `inflightJobs` per partition), and what has not been sent
 * behind them is dropped with a (true) error at its timeout.
 *
 * A history removal (API `history_remove`) is found the same way: when it runs it records
 * its id, at the position it removed up to, among what it removed. So it too gets success
 * when it ran and a final error when it never will.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NewPublication } from '../protocol/publication.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { Claim, Found, JobOutcomes } from './outcomes.js';

/**
 * The first try answers within this, so the client hears the outcome before its SDK gives up
 * (the timeout fires at TIDINGS_PUBLISH_TIMEOUT_MS, 4 s by default, plus one expiry tick);
 * later tries allow PostgreSQL more (up to MAX_TRY_MS), in case it is merely slow.
 */
const FIRST_TRY_MS = 600;
const MAX_TRY_MS = 8000;
/** A read-only check after a reconnect: it only saves time, the timeout still decides. */
const CHECK_MS = 2000;

/** What the decider needs of an accepted publication. */
export interface Pending {
  pub: NewPublication;
  settled: boolean;
  /** A history removal: found by its id among what it removed (see the header). */
  remove?: true;
}

/** A job as this gateway sent it: its place in its stream, and its publications. */
export interface SentJob<E extends Pending = Pending> {
  stream: string;
  seq: number;
  entries: E[];
  /** Being decided in PostgreSQL: asked once, answered once. */
  deciding: boolean;
}

/** Answers one publication: success with its position, or (no position) the final error. */
export type Answer<E extends Pending> = (entry: E, found: Found | undefined) => void;

export class Decider<E extends Pending> {
  constructor(
    private readonly outcomes: JobOutcomes,
    private readonly answer: Answer<E>,
    private readonly log: Logger,
    /** Aborted when the gateway's ingest closes: tries stop, and nothing more is answered. */
    private readonly signal: AbortSignal,
  ) {}

  /** Decides the job in PostgreSQL (once), then answers all its open publications. */
  decide(job: SentJob<E>): void {
    if (job.deciding) return;
    job.deciding = true;
    void this.untilDecided(job);
  }

  private async untilDecided(job: SentJob<E>): Promise<void> {
    for (let attempt = 0; !this.signal.aborted && open(job).length > 0; attempt++) {
      try {
        const claims = open(job).map(claimOf);
        const decision = await this.outcomes.abandon(job.stream, job.seq, claims, tryMs(attempt));
        if (this.signal.aborted) return;
        this.count(job, decision.cancelled, decision.committed);
        for (const entry of open(job)) this.answer(entry, decision.committed.get(entry.pub.id));
        return;
      } catch (err) {
        if (this.signal.aborted) return;
        // Bounded noise while PostgreSQL is away: the first failure, then every tenth.
        if (attempt % 10 === 0) {
          this.log.warn({ err, stream: job.stream, seq: job.seq, attempt }, 'could not decide a timed-out job in PostgreSQL; asking again');
        }
        await sleep(jitterMs(attempt), undefined, { signal: this.signal, ref: false }).catch(() => {});
      }
    }
  }

  /**
   * Read-only: answers the publications of `jobs` that are committed (their acks may have
   * been lost); the others stay as they are, since their jobs may still be queued.
   */
  async answerCommitted(jobs: SentJob<E>[]): Promise<void> {
    const entries = jobs.flatMap((job) => open(job));
    if (entries.length === 0) return;
    const found = await this.outcomes.committed(entries.map(claimOf), CHECK_MS);
    if (this.signal.aborted) return;
    for (const entry of entries) {
      const where = found.get(entry.pub.id);
      if (where) this.answer(entry, where);
    }
  }

  private count(job: SentJob<E>, cancelled: boolean, committed: Map<string, Found>): void {
    for (const entry of open(job)) {
      const outcome = committed.has(entry.pub.id) ? 'committed' : cancelled ? 'cancelled' : 'not_committed';
      metrics.publishTimeouts.inc({ outcome });
    }
    this.log.debug({ stream: job.stream, seq: job.seq, cancelled, committed: committed.size }, 'timed-out job decided');
  }
}

function open<E extends Pending>(job: SentJob<E>): E[] {
  return job.entries.filter((e) => !e.settled);
}

function claimOf(entry: Pending): Claim {
  return { id: entry.pub.id, channel: entry.pub.channel, idempotencyKey: entry.pub.idempotencyKey };
}

function tryMs(attempt: number): number {
  return Math.min(MAX_TRY_MS, FIRST_TRY_MS * 2 ** Math.min(attempt, 8));
}

/** Full jitter between tries, 50 ms to 2 s. */
function jitterMs(attempt: number): number {
  return 50 + Math.random() * Math.min(1950, 100 * 2 ** Math.min(attempt, 8));
}
