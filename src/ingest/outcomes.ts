/**
 * Where a gateway learns for certain what became of a job it sent (issue 12, "replies that
 * are definitive"): PostgreSQL, the one place that decides it.
 *
 * Guarantee 1 has two halves: a success reply means committed, and an error reply means
 * never committed. An ack from a worker (./acks.ts) answers both, but an ack can be late
 * (the job is stuck: a worker died, PostgreSQL is away) or lost (Redis pub/sub drops what
 * it cannot deliver). So when a publication's time is up, the gateway *abandons* its job in
 * PostgreSQL (`abandon`): under the stream row lock the worker's commit takes too, the job
 * is either found decided (its committed publications come back with their offsets) or
 * cancelled, and then no worker will ever commit it. Exactly one of the two wins.
 *
 * This is the one write a gateway makes to PostgreSQL (STYLE.md's "a gateway never writes
 * PostgreSQL" is about publications and their order: this moves a job's turn past it, the
 * way a worker that skips a lost job does, and never numbers or stores anything).
 *
 * After the ack topic reconnects, `committed` looks for acks that were lost meanwhile. It
 * only reads: a job still queued and healthy must not be cancelled just because we looked.
 */
import type { Db } from '../db/client.js';
import { abandonJob, findCommitted, type Abandoned, type Claim, type Found } from '../db/repos/streams.js';

export type { Abandoned, Claim, Found };

export interface JobOutcomes {
  /** Decides job `seq` of `stream` for good; rejects if PostgreSQL did not answer within `timeoutMs`. */
  abandon(stream: string, seq: number, claims: Claim[], timeoutMs: number): Promise<Abandoned>;
  /** Which of `claims` are committed now; decides nothing. Rejects after `timeoutMs`. */
  committed(claims: Claim[], timeoutMs: number): Promise<Map<string, Found>>;
}

/** The outcomes of this gateway's jobs, read and decided in PostgreSQL. */
export function outcomesIn(db: Db): JobOutcomes {
  return {
    abandon: (stream, seq, claims, timeoutMs) => within(abandonJob(db, stream, seq, claims, timeoutMs), timeoutMs),
    committed: (claims, timeoutMs) => within(findCommitted(db, claims, timeoutMs), timeoutMs),
  };
}

/** Time PostgreSQL's own statement_timeout gets before we stop waiting for its answer. */
const NETWORK_GRACE_MS = 200;

/**
 * statement_timeout bounds the work in PostgreSQL; this bounds the wait for an answer that
 * may never come (a connection whose peer vanished, a pool with no free client). A call
 * given up on here may still complete in PostgreSQL: harmless, since `abandon` answers the
 * same whenever it is asked again, and `committed` changes nothing.
 */
function within<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`PostgreSQL did not answer within ${timeoutMs} ms`)), timeoutMs + NETWORK_GRACE_MS);
    timer.unref();
  });
  work.catch(() => {}); // the loser of the race must not be an unhandled rejection
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
