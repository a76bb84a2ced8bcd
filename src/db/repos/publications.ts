/**
 * The publication store: the one place that numbers publications (guarantee 2).
 *
 * `persistBatch` runs one transaction that claims the job's turn in its stream (publisher
 * order, src/db/repos/streams.ts), locks the batch's channels, skips publications already
 * stored (same id: a re-run job; same idempotency key: a repeated API publish), gives the
 * rest contiguous offsets in batch order, and inserts them with one statement.
 *
 * A publication PostgreSQL refuses for what it is (a data error, not a lost connection)
 * fails alone: the batch is committed again with each publication under its own
 * savepoint, the refused ones are reported in `rejected`, and the rest keep contiguous
 * offsets. One bad publication never stalls its partition.
 */
import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, gt, gte, lt, lte, sql } from 'drizzle-orm';
import type { NewPublication } from '../../protocol/publication.js';
import type { Db } from '../client.js';
import { channels } from '../tables/channels.js';
import { publications } from '../tables/publications.js';
import { advanceStreamSql, claimTurn, OrderGap, type JobOrder, type Turn } from './streams.js';

/**
 * A broken assumption of this module (not a failing store): retrying cannot fix it, so the
 * worker must fail the job instead of retrying in place and wedging the partition.
 */
export class InvariantError extends Error {
  override name = 'InvariantError';
}


/** A committed publication, with the position it was given. */
export interface StoredPublication extends NewPublication {
  offset: number;
  epoch: string;
}

export interface PersistOutcome {
  /** One entry per committed input (now or before), in input order. `fresh` is false when it was stored before. */
  results: { id: string; channel: string; offset: number; epoch: string; fresh: boolean }[];
  /** Publications of this batch that are committed under their own id, in offset order per channel. */
  stored: StoredPublication[];
  /** channel → top offset after the batch. */
  tops: Map<string, { epoch: string; top: number }>;
  /** Inputs that will never be committed: refused by PostgreSQL, or their job's turn passed. */
  rejected: { id: string; why: 'refused' | 'turn passed' }[];
}

export interface ChannelPosition {
  epoch: string;
  top: number;
}

/** Letters in an epoch. */
export const EPOCH_LENGTH = 8;
const EPOCH_ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

/** 8 letters, like Centrifugo's epochs: random so a recreated channel never matches an old one. */
export function newEpoch(): string {
  return epochFrom(randomBytes(EPOCH_LENGTH), 0);
}

/** An epoch from EPOCH_LENGTH random bytes of `bytes` starting at `at`. */
export function epochFrom(bytes: Uint8Array, at: number): string {
  let epoch = '';
  for (let i = at; i < at + EPOCH_LENGTH; i++) epoch += EPOCH_ALPHABET[bytes[i]! % EPOCH_ALPHABET.length];
  return epoch;
}

/**
 * Commits a batch in one transaction. `order` is the job's place in its gateway's stream
 * (absent for jobs from gateways that predate it: then only ids and keys deduplicate).
 * `isPermanent` tells a data error from a transient one; on a data error the batch is
 * committed again publication by publication, and what PostgreSQL refuses is rejected.
 */
export async function persistBatch(
  db: Db,
  batch: NewPublication[],
  order?: JobOrder,
  isPermanent: (err: unknown) => boolean = () => false,
): Promise<PersistOutcome> {
  try {
    return await commitInOneCall(db, batch, order);
  } catch (err) {
    if (err instanceof OrderGap || !isPermanent(err)) throw err;
    return persistOneByOne(db, batch, order, isPermanent);
  }
}

export type CommitRow = { kind: 'gap' | 'new' | 'id' | 'key' | 'rejected' | 'top'; id: string; channel: string; offset: number; epoch: string };

/**
 * The fast path: the whole commit as one call of `tidings_commit` (migrations/0002), which
 * runs as its own transaction: one round trip per job instead of six. Same decisions, same
 * lock order as the TypeScript path below, which stays for the savepoint slow path.
 */
async function commitInOneCall(db: Db, batch: NewPublication[], order: JobOrder | undefined): Promise<PersistOutcome> {
  const epochs = new Map(batch.map((p) => [p.channel, '']));
  for (const name of epochs.keys()) epochs.set(name, newEpoch());
  const col = <K extends keyof NewPublication>(k: K) => sql.param(batch.map((p) => p[k] ?? null));
  const result = await db.execute<CommitRow>(sql`
    select * from tidings_commit(${order?.stream ?? null}, ${order?.seq ?? 0}, ${order?.skipGap ?? false},
      ${col('channel')}::text[], ${col('id')}::uuid[], ${col('data')}::text[], ${col('user')}::text[],
      ${col('client')}::text[], ${col('connInfo')}::text[], ${col('chanInfo')}::text[], ${col('tags')}::text[],
      ${col('idempotencyKey')}::text[], ${sql.param(batch.map((p) => epochs.get(p.channel)!))}::text[])`);
  return outcomeOf(batch, result.rows, order);
}

/** Reads tidings_commit's rows for one job; throws OrderGap when the job must wait for an earlier one. */
export function outcomeOf(batch: NewPublication[], rows: CommitRow[], order: JobOrder | undefined): PersistOutcome {
  const outcome: PersistOutcome = { results: [], stored: [], tops: new Map(), rejected: [] };
  const byId = new Map(batch.map((p) => [p.id, p]));
  for (const row of rows) {
    const offset = Number(row.offset);
    if (row.kind === 'gap') throw new OrderGap(offset, order!.seq);
    if (row.kind === 'top') outcome.tops.set(row.channel, { epoch: row.epoch, top: offset });
    else if (row.kind === 'rejected') outcome.rejected.push({ id: row.id, why: 'turn passed' });
    else {
      outcome.results.push({ id: row.id, channel: row.channel, offset, epoch: row.epoch, fresh: row.kind === 'new' });
      if (row.kind !== 'key') outcome.stored.push({ ...byId.get(row.id)!, offset, epoch: row.epoch });
    }
  }
  return outcome;
}

/** The slow path for a batch PostgreSQL refused: each publication under its own savepoint. */
async function persistOneByOne(
  db: Db,
  batch: NewPublication[],
  order: JobOrder | undefined,
  isPermanent: (err: unknown) => boolean,
): Promise<PersistOutcome> {
  return db.transaction(async (tx) => {
    const t = tx as unknown as Db;
    const turn = order ? await claimTurn(t, order) : undefined;
    const total: PersistOutcome = { results: [], stored: [], tops: new Map(), rejected: [] };
    for (const pub of batch) {
      try {
        // drizzle runs a nested transaction as a savepoint, rolled back alone on failure.
        const one = await tx.transaction(async (sp) => commitPublications(sp as unknown as Db, [pub], turn, undefined));
        total.results.push(...one.results);
        total.stored.push(...one.stored);
        total.rejected.push(...one.rejected);
        for (const [name, pos] of one.tops) total.tops.set(name, pos);
      } catch (err) {
        if (!isPermanent(err)) throw err;
        total.rejected.push({ id: pub.id, why: 'refused' });
      }
    }
    if (order && turn?.kind === 'next') await t.execute(advanceStreamSql(order));
    return total;
  });
}

/**
 * Numbers and inserts what is new in `batch`. With a turn that was decided before, nothing
 * is inserted: what is found stored is acknowledged again, the rest is rejected. `order`
 * is given when the stream should move forward in the same statement as the insert.
 */
async function commitPublications(
  db: Db,
  batch: NewPublication[],
  turn: Turn | undefined,
  order: JobOrder | undefined,
): Promise<PersistOutcome> {
  const { heads, periods } = await lockChannels(db, batch);
  // A job whose turn is fresh cannot have committed before: its ids are new, so the id
  // lookup (one index probe per publication) is only needed for re-runs and old jobs.
  const mayHaveRun = turn === undefined || turn.kind === 'decided' || turn.firstOfStream;
  const seenIds = mayHaveRun ? await findStoredIds(db, batch) : new Map<string, number>();
  const seenKeys = await findIdempotencyKeys(db, batch);
  const plan = assignOffsets(batch, heads, seenIds, seenKeys, turn?.kind !== 'decided');
  const stamp = plan.inserts.length > 0 ? await stampOf(db, plan.tops, heads, periods) : undefined;
  await insertRowsAndTops(db, plan.inserts, stamp, plan.tops, heads, turn?.kind === 'next' ? order : undefined);
  return plan;
}

/**
 * Creates missing channels and locks every channel of the batch in one statement. Names are
 * sorted so two transactions always lock in the same order and cannot deadlock. The no-op
 * update is what makes ON CONFLICT lock and return existing rows.
 */
async function lockChannels(
  db: Db,
  batch: NewPublication[],
): Promise<{ heads: Map<string, ChannelPosition>; periods: Map<string, string | null> }> {
  const names = [...new Set(batch.map((p) => p.channel))].sort();
  const epochs = names.map(() => newEpoch());
  const result = await db.execute<{ name: string; epoch: string; top_offset: number; period_start: string | null }>(sql`
    insert into channels (name, epoch)
    select * from unnest(${sql.param(names)}::text[], ${sql.param(epochs)}::text[])
    order by 1
    on conflict (name) do update set name = excluded.name
    returning name, epoch, top_offset, period_start::text`);
  return {
    heads: new Map(result.rows.map((r) => [r.name, { epoch: r.epoch, top: Number(r.top_offset) }])),
    periods: new Map(result.rows.map((r) => [r.name, r.period_start])),
  };
}

/**
 * The created_at of the rows this commit inserts, from `tidings_stamp` (migrations/0006),
 * as the SQL commits get theirs, so reads may skip partitions whichever path committed.
 * Its own statement: it may update the channel rows the insert's statement updates too.
 */
async function stampOf(
  db: Db,
  tops: Map<string, ChannelPosition>,
  before: Map<string, ChannelPosition>,
  periods: Map<string, string | null>,
): Promise<string> {
  const names = [...tops.keys()];
  const result = await db.execute<{ at: string }>(sql`
    select tidings_stamp(${sql.param(names)}::text[], ${sql.param(names.map((n) => tops.get(n)!.top))}::bigint[],
      ${sql.param(names.map((n) => before.get(n)!.top))}::bigint[],
      ${sql.param(names.map((n) => periods.get(n) ?? null))}::timestamptz[])::text as at`);
  return result.rows[0]!.at;
}

/** Ids of the batch committed before, removed since (history_remove) or not. */
async function findStoredIds(db: Db, batch: NewPublication[]): Promise<Map<string, number>> {
  const ids = sql.param(batch.map((p) => p.id));
  const result = await db.execute<{ id: string; offset: number }>(sql`
    select id, "offset" from publications where id = any(${ids}::uuid[])
    union all
    select id, "offset" from removed_publications where id = any(${ids}::uuid[])`);
  return new Map(result.rows.map((r) => [r.id, Number(r.offset)]));
}

/** Idempotency keys of the batch used before on the same channel (kept across history_remove). */
async function findIdempotencyKeys(db: Db, batch: NewPublication[]): Promise<Map<string, number>> {
  const keyed = batch.filter((p) => p.idempotencyKey !== undefined);
  if (keyed.length === 0) return new Map();
  const wanted = sql`unnest(${sql.param(keyed.map((p) => p.channel))}::text[],
    ${sql.param(keyed.map((p) => p.idempotencyKey))}::text[]) as k(channel, key)`;
  const result = await db.execute<{ channel: string; idempotency_key: string; offset: number }>(sql`
    select p.channel, p.idempotency_key, p."offset"
      from publications p join ${wanted} on p.channel = k.channel and p.idempotency_key = k.key
    union all
    select r.channel, r.idempotency_key, r."offset"
      from removed_publications r join ${wanted} on r.channel = k.channel and r.idempotency_key = k.key`);
  return new Map(result.rows.map((r) => [keyOf(r.channel, r.idempotency_key), Number(r.offset)]));
}

function keyOf(channel: string, idempotencyKey: string): string {
  return `${channel}\u0000${idempotencyKey}`;
}

interface Plan extends PersistOutcome {
  inserts: StoredPublication[];
}

/**
 * Pure: decides, in batch order, which publication gets which offset. With `mayInsert`
 * false (the job's turn passed), what is not found stored is rejected instead.
 */
export function assignOffsets(
  batch: NewPublication[],
  heads: Map<string, ChannelPosition>,
  seenIds: Map<string, number>,
  seenKeys: Map<string, number>,
  mayInsert = true,
): Plan {
  const tops = new Map<string, ChannelPosition>();
  for (const [name, head] of heads) tops.set(name, { ...head });
  const keys = new Map(seenKeys);
  const plan: Plan = { results: [], stored: [], tops, inserts: [], rejected: [] };
  for (const pub of batch) {
    const head = tops.get(pub.channel);
    if (!head) throw new InvariantError(`channel ${pub.channel} was not locked`);
    const key = pub.idempotencyKey === undefined ? undefined : keyOf(pub.channel, pub.idempotencyKey);
    const earlier = seenIds.get(pub.id) ?? (key === undefined ? undefined : keys.get(key));
    if (earlier !== undefined) {
      plan.results.push({ id: pub.id, channel: pub.channel, offset: earlier, epoch: head.epoch, fresh: false });
      // Same id: this very publication was committed by an earlier run of the job; deliver it
      // again (subscribers drop what they already have) in case that run died before fanout.
      if (seenIds.has(pub.id)) plan.stored.push({ ...pub, offset: earlier, epoch: head.epoch });
      continue;
    }
    if (!mayInsert) {
      plan.rejected.push({ id: pub.id, why: 'turn passed' });
      continue;
    }
    head.top += 1;
    const stored = { ...pub, offset: head.top, epoch: head.epoch };
    if (key !== undefined) keys.set(key, head.top);
    plan.inserts.push(stored);
    plan.stored.push(stored);
    plan.results.push({ id: pub.id, channel: pub.channel, offset: head.top, epoch: head.epoch, fresh: true });
  }
  return plan;
}

/**
 * Inserts the new rows, moves the channels' tops and (with `order`) the job's stream in one
 * statement: at a few publications per job the round trips, not the rows, are most of what
 * a job costs (each is ~150 µs of worker CPU here), and the transaction has four others. A
 * data-modifying WITH runs in full whether or not the outer statement reads it; the channel
 * and stream rows are already ours (locked).
 */
async function insertRowsAndTops(
  db: Db,
  rows: StoredPublication[],
  stamp: string | undefined,
  tops: Map<string, ChannelPosition>,
  before: Map<string, ChannelPosition>,
  order: JobOrder | undefined,
): Promise<void> {
  const moved = [...tops].filter(([name, pos]) => before.get(name)?.top !== pos.top);
  if (rows.length === 0 && moved.length === 0) {
    if (order) await db.execute(advanceStreamSql(order));
    return;
  }
  const col = <K extends keyof StoredPublication>(k: K) => sql.param(rows.map((r) => r[k] ?? null));
  const stream = order ? sql`, stream as (${advanceStreamSql(order)})` : sql``;
  await db.execute(sql`
    with inserted as (
      insert into publications
        (channel, "offset", id, data, "user", client, conn_info, chan_info, tags, idempotency_key, created_at)
      select *, ${stamp ?? null}::timestamptz from unnest(${col('channel')}::text[], ${col('offset')}::bigint[],
        ${col('id')}::uuid[], ${col('data')}::text[], ${col('user')}::text[], ${col('client')}::text[],
        ${col('connInfo')}::text[], ${col('chanInfo')}::text[], ${col('tags')}::text[], ${col('idempotencyKey')}::text[])
    )${stream}
    update channels set top_offset = v.top
    from unnest(${sql.param(moved.map(([n]) => n))}::text[], ${sql.param(moved.map(([, p]) => p.top))}::bigint[])
      as v(name, top)
    where channels.name = v.name`);
}

/** The channel's committed position; epoch '' and top 0 for a channel never published to. */
export async function readPosition(db: Db, channel: string): Promise<ChannelPosition> {
  const rows = await db
    .select({ epoch: channels.epoch, top: channels.topOffset })
    .from(channels)
    .where(eq(channels.name, channel));
  const row = rows[0];
  return row ? { epoch: row.epoch, top: Number(row.top) } : { epoch: '', top: 0 };
}

export type PublicationRow = typeof publications.$inferSelect;

/**
 * A lower bound on created_at of the channel's publications from `offset` on, as SQL: the
 * newest channel_periods row that starts at or below it (src/db/tables/channel-periods.ts),
 * else none. PostgreSQL evaluates it once, then skips every partition that ends before it.
 */
function stampedSince(channel: string, offset: number) {
  return sql`coalesce((select cp.starts_at from channel_periods cp
      where cp.channel = ${channel} and cp.first_offset <= ${offset}
      order by cp.starts_at desc limit 1), '-infinity'::timestamptz)`;
}

/** Publications with offset in (after, upTo], oldest first, at most `limit`. */
export async function readRange(
  db: Db,
  channel: string,
  after: number,
  upTo: number,
  limit: number,
): Promise<PublicationRow[]> {
  return db
    .select()
    .from(publications)
    .where(
      and(
        eq(publications.channel, channel),
        gt(publications.offset, after),
        lte(publications.offset, upTo),
        gte(publications.createdAt, stampedSince(channel, after + 1)),
      ),
    )
    .orderBy(asc(publications.offset))
    .limit(limit);
}

/**
 * Publications with offset < before, newest first, at most `limit`. The page lies in
 * [before - limit, before) unless the channel has holes there, and its only holes are a
 * removed prefix (history_remove, retention: older rows go first), below which nothing is
 * left either; so bounding created_at from `before - limit` loses nothing.
 */
export async function readBefore(db: Db, channel: string, before: number, limit: number): Promise<PublicationRow[]> {
  return db
    .select()
    .from(publications)
    .where(
      and(
        eq(publications.channel, channel),
        lt(publications.offset, before),
        gte(publications.createdAt, stampedSince(channel, before - limit)),
      ),
    )
    .orderBy(desc(publications.offset))
    .limit(limit);
}

/**
 * Retention: deletes up to `batch` rows of `table` (publications or one of its partitions,
 * or what history_remove left of them) for the channels matching `like` (a SQL LIKE pattern; `unlike` excludes)
 * committed before `before`. Returns how many went. Rows are named by (tableoid, ctid): a
 * ctid alone names a row in every partition. The channels rows stay, so epochs and
 * top offsets survive (a client whose gap was deleted simply gets "not recovered").
 */
export async function deleteExpired(
  db: Db,
  scope: { like: string; unlike?: string | undefined },
  before: Date,
  batch: number,
  table = 'publications',
): Promise<number> {
  const from = sql.identifier(table);
  const result = await db.execute(sql`
    delete from ${from} where (tableoid, ctid) in (
      select tableoid, ctid from ${from}
      where created_at < ${before.toISOString()}::timestamptz
        and channel like ${scope.like}
        and (${scope.unlike ?? null}::text is null or channel not like ${scope.unlike ?? null})
      limit ${batch})`);
  return result.rowCount ?? 0;
}

/**
 * API `history_remove`: removes the channel's stored publications up to its top at this
 * moment and returns its position. The channels row is locked (as `persistBatch` locks it)
 * but left as it is, so the epoch and top offset survive and later publications continue
 * the numbering. What is removed leaves its id and idempotency key behind
 * (removed_publications), so a re-run job or a repeated keyed publish never stores it again.
 *
 * With `order`, the removal takes its turn in its gateway's stream like a publish job; a
 * re-run of a removal that was decided before removes nothing more (it would otherwise
 * delete publications committed after it). A channel never published to has no row, and
 * none is created.
 */
export async function removeHistory(db: Db, channel: string, order?: JobOrder, removalId?: string): Promise<ChannelPosition> {
  return db.transaction(async (tx) => {
    const t = tx as unknown as Db;
    const turn = order ? await claimTurn(t, order) : undefined;
    const locked = await t.execute<{ epoch: string; top_offset: number }>(sql`
      select epoch, top_offset from channels where name = ${channel} for update`);
    const row = locked.rows[0];
    const position = row ? { epoch: row.epoch, top: Number(row.top_offset) } : { epoch: '', top: 0 };
    if (turn?.kind === 'decided') return position;
    if (row) await moveToRemoved(t, channel, position.top);
    if (removalId) await recordRemoval(t, removalId, channel, position.top);
    if (order) await t.execute(advanceStreamSql(order));
    return position;
  });
}

/**
 * The removal's own id, among what it removed, at the position it removed up to: so the
 * gateway that gave up waiting for it finds it by id (tidings_abandon / tidings_committed),
 * as it finds a committed publication, and answers success instead of an error that would
 * not be true. The id is a fresh UUID, so no publication can ever be deduplicated against it.
 */
async function recordRemoval(db: Db, removalId: string, channel: string, top: number): Promise<void> {
  await db.execute(sql`
    insert into removed_publications (id, channel, "offset", idempotency_key, created_at)
    values (${removalId}::uuid, ${channel}, ${top}, null, now())
    on conflict do nothing`);
}

/** Deletes the channel's publications up to `top`, keeping what identifies each one. */
async function moveToRemoved(db: Db, channel: string, top: number): Promise<void> {
  await db.execute(sql`
    with gone as (
      delete from publications where channel = ${channel} and "offset" <= ${top}
      returning id, channel, "offset", idempotency_key, created_at
    )
    insert into removed_publications (id, channel, "offset", idempotency_key, created_at)
    select id, channel, "offset", idempotency_key, created_at from gone
    on conflict do nothing`);
}
