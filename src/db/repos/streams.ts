/**
 * Publisher order as a PostgreSQL invariant (guarantee 3). A gateway numbers the jobs it
 * adds to one partition queue 1, 2, 3, …; the persist transaction claims the job's turn
 * here before it numbers any publication:
 *
 *  - the job is the next of its stream (`seq = last + 1`): it commits, and `last` moves to it;
 *  - an earlier job of the stream is still missing (`seq > last + 1`): `OrderGap`, and the
 *    worker waits for it a little, because it may be running in another worker right now
 *    (after Redis forgot which jobs were active). A job that the gateway marked `skipGap`
 *    (an earlier add failed, so its publishers were already answered with an error), or one
 *    that has waited long enough, commits anyway and moves `last` past the missing ones;
 *  - the job's turn has passed (`seq <= last`): it was decided before. Either it committed
 *    (a re-run after a crash: its publications are found by id and acknowledged again) or
 *    it was skipped (it is never committed now, which is what keeps the order).
 *
 * The row lock serialises the transactions of one stream, whichever workers run them, and
 * the gateway's `abandonJob` too: a gateway that can wait no longer for a job makes its
 * outcome definitive by deciding it here, so "committed" and "cancelled" cannot both win.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../client.js';

export interface JobOrder {
  /** One gateway process's jobs on one partition queue. */
  stream: string;
  /** 1, 2, 3, … in the order the gateway added them. */
  seq: number;
  /** Commit even when earlier jobs of the stream are missing (they will never be committed). */
  skipGap: boolean;
}

/** An earlier job of the stream has not been decided yet: try again shortly. */
export class OrderGap extends Error {
  override name = 'OrderGap';
  constructor(
    readonly last: number,
    readonly seq: number,
  ) {
    super(`job ${seq} waits for job ${last + 1} of its stream`);
  }
}

export type Turn =
  /** Commit; `firstOfStream` when no earlier job of the stream ever committed. */
  | { kind: 'next'; firstOfStream: boolean }
  /** Decided before: commit nothing new. */
  | { kind: 'decided' };

/** Locks the stream's row (creating it) and says what this job may do; throws OrderGap. */
export async function claimTurn(db: Db, order: JobOrder): Promise<Turn> {
  const result = await db.execute<{ last_seq: number }>(sql`
    insert into ingest_streams (stream) values (${order.stream})
    on conflict (stream) do update set stream = excluded.stream
    returning last_seq`);
  const last = Number(result.rows[0]!.last_seq);
  if (order.seq <= last) return { kind: 'decided' };
  if (order.seq > last + 1 && !order.skipGap) throw new OrderGap(last, order.seq);
  return { kind: 'next', firstOfStream: last === 0 };
}

/** Moves the stream to this job (inside the transaction that claimed the turn). */
export function advanceStreamSql(order: JobOrder) {
  return sql`update ingest_streams set last_seq = ${order.seq}, updated_at = now() where stream = ${order.stream}`;
}

/**
 * Forgets streams of gateways gone for longer than any job can wait in a queue. A job of a
 * forgotten stream that still came back would find its publications by id (a stream seen
 * for the first time is always checked that way), so nothing is stored twice.
 */
export async function deleteIdleStreams(db: Db, idleBefore: Date): Promise<number> {
  const result = await db.execute(sql`delete from ingest_streams where updated_at < ${idleBefore.toISOString()}::timestamptz`);
  return result.rowCount ?? 0;
}

/** A publication the gateway asks about: by id, else by its idempotency key on its channel. */
export interface Claim {
  id: string;
  channel: string;
  idempotencyKey?: string | undefined;
}

/** Where a committed publication is. */
export interface Found {
  offset: number;
  epoch: string;
}

export interface Abandoned {
  /** The job was undecided and now never commits (nor any earlier undecided job of its stream). */
  cancelled: boolean;
  /** The claims that are committed (by this job, or their key by an earlier publish); the rest never will be. */
  committed: Map<string, Found>;
}

type FoundRow = { id: string; committed: boolean; offset: number | null; epoch: string | null; cancelled?: boolean };

/**
 * Decides job `seq` of `stream` for good (`tidings_abandon`, migrations/0003): waits for a
 * worker's transaction on the stream, then either finds the job decided (its committed
 * publications are returned; the rest were refused or skipped) or cancels it. Bounded by
 * `timeoutMs` in PostgreSQL (statement_timeout: a cancelled call changes nothing).
 */
export async function abandonJob(db: Db, stream: string, seq: number, claims: Claim[], timeoutMs: number): Promise<Abandoned> {
  const rows = await boundedQuery(db, timeoutMs, sql`
    select * from tidings_abandon(${stream}, ${seq}, ${claimColumns(claims)})`);
  return { cancelled: rows[0]?.cancelled === true, committed: foundOf(rows) };
}

/**
 * Read-only: which claims are committed now (`tidings_committed`). Answers "not yet" for a
 * job still in the queue, so it never decides anything: for acks that may have been lost.
 */
export async function findCommitted(db: Db, claims: Claim[], timeoutMs: number): Promise<Map<string, Found>> {
  if (claims.length === 0) return new Map();
  return foundOf(await boundedQuery(db, timeoutMs, sql`select * from tidings_committed(${claimColumns(claims)})`));
}

function claimColumns(claims: Claim[]) {
  return sql`${sql.param(claims.map((c) => c.id))}::uuid[], ${sql.param(claims.map((c) => c.channel))}::text[],
    ${sql.param(claims.map((c) => c.idempotencyKey ?? null))}::text[]`;
}

function foundOf(rows: FoundRow[]): Map<string, Found> {
  const found = new Map<string, Found>();
  for (const row of rows) {
    if (row.committed) found.set(row.id, { offset: Number(row.offset), epoch: row.epoch ?? '' });
  }
  return found;
}

/** One statement under a statement_timeout of its own (SET LOCAL lasts to the end of its transaction). */
async function boundedQuery(db: Db, timeoutMs: number, query: SQL): Promise<FoundRow[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('statement_timeout', ${String(Math.max(1, Math.round(timeoutMs)))}, true)`);
    return (await tx.execute<FoundRow>(query)).rows;
  });
}
