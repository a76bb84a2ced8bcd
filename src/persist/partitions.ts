/**
 * The partitions of `publications` (migrations/0006): ranges of created_at, whole UTC days
 * wide. A worker, inside the retention round (one worker at a time), creates them ahead of
 * time and drops those every namespace's retention has passed.
 *
 * Partition DDL locks the parent table exclusively, so commits wait while it runs. Each
 * step runs in its own short transaction with a lock timeout: if commits hold the table,
 * the step gives up and the next round (or the next partition) tries again. Partitions are
 * made days ahead, so a round that gives up costs nothing; and a row whose partition is
 * missing lands in the default partition, from which the step that creates it moves it.
 */
import type { PoolClient } from 'pg';
import type { Logger } from '../observability/logger.js';

const DAY_MS = 86_400_000;
/** How long a partition step may wait for commits to let go of the table. */
const LOCK_TIMEOUT = '2s';
export const DEFAULT_PARTITION = 'publications_default';

export interface Partition {
  name: string;
  /** Range bounds in ms; `from` null for the first (MINVALUE) partition. The default has neither. */
  from: number | null;
  to: number | null;
  isDefault: boolean;
}

export async function listPartitions(client: PoolClient): Promise<Partition[]> {
  const { rows } = await client.query<{ name: string; bound: string; from_ms: string | null; to_ms: string | null }>(`
    select name, bound,
           (extract(epoch from substring(bound from $$FROM \\('([^']*)'\\)$$)::timestamptz) * 1000)::bigint as from_ms,
           (extract(epoch from substring(bound from $$TO \\('([^']*)'\\)$$)::timestamptz) * 1000)::bigint as to_ms
      from (select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
              from pg_inherits i join pg_class c on c.oid = i.inhrelid
             where i.inhparent = 'publications'::regclass) p
     order by to_ms nulls last`);
  return rows.map((r) => ({
    name: r.name,
    from: r.from_ms === null ? null : Number(r.from_ms),
    to: r.to_ms === null ? null : Number(r.to_ms),
    isDefault: r.bound === 'DEFAULT',
  }));
}

export function startOfDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/**
 * The ranges to create so that partitions cover up to `now` + two days + one width: one
 * catching up to today if the newest partition ended before it (the worker was off; those
 * rows wait in the default partition), then `widthDays` at a time.
 */
export function missingRanges(partitions: Partition[], now: number, widthDays: number): { from: number; to: number }[] {
  const today = startOfDay(now);
  const until = today + (2 + widthDays) * DAY_MS;
  const ends = partitions.filter((p) => !p.isDefault && p.to !== null).map((p) => p.to!);
  let from = ends.length > 0 ? Math.max(...ends) : today;
  const ranges: { from: number; to: number }[] = [];
  if (from < today) {
    ranges.push({ from, to: today });
    from = today;
  }
  while (from < until) {
    ranges.push({ from, to: from + widthDays * DAY_MS });
    from += widthDays * DAY_MS;
  }
  return ranges;
}

export function partitionName(from: number): string {
  return `publications_p${new Date(from).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Creates one partition. Rows of its range that wait in the default partition move into
 * it in the same transaction (PostgreSQL refuses to create it while they are there).
 */
async function createPartition(client: PoolClient, range: { from: number; to: number }): Promise<void> {
  const from = new Date(range.from).toISOString();
  const to = new Date(range.to).toISOString();
  const name = partitionName(range.from);
  await inShortTransaction(client, async () => {
    const waiting = await client.query(
      `select 1 from ${DEFAULT_PARTITION} where created_at >= $1 and created_at < $2 limit 1`,
      [from, to],
    );
    const create = `create table ${name} partition of publications for values from ('${from}') to ('${to}')`;
    if (waiting.rowCount === 0) {
      await client.query(create);
      return;
    }
    await client.query(`alter table publications detach partition ${DEFAULT_PARTITION}`);
    await client.query(create);
    await client.query(
      `with moved as (delete from ${DEFAULT_PARTITION} where created_at >= $1 and created_at < $2 returning *)
       insert into publications select * from moved`,
      [from, to],
    );
    await client.query(`alter table publications attach partition ${DEFAULT_PARTITION} default`);
  });
}

async function inShortTransaction(client: PoolClient, body: () => Promise<void>): Promise<void> {
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
    await body();
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
}

/**
 * Creates the partitions that are missing ahead of `now`. Returns how many it created; a
 * step that fails (commits held the lock past the timeout) ends the round with a warning.
 */
export async function ensurePartitions(client: PoolClient, widthDays: number, log: Logger, now = Date.now()): Promise<number> {
  let created = 0;
  for (const range of missingRanges(await listPartitions(client), now, widthDays)) {
    try {
      await createPartition(client, range);
      created += 1;
    } catch (err) {
      log.warn({ err, partition: partitionName(range.from) }, 'could not create a publications partition; the next round tries again');
      break;
    }
  }
  if (created > 0) log.info({ created }, 'created publications partitions ahead');
  return created;
}

/**
 * Drops the partitions that hold only publications committed before `before` (every
 * namespace's retention has passed them), then forgets the channel_periods rows of those
 * days. Returns the names dropped.
 */
export async function dropPartitionsBefore(client: PoolClient, before: number, log: Logger): Promise<string[]> {
  const dropped: string[] = [];
  for (const p of await listPartitions(client)) {
    if (p.isDefault || p.to === null || p.to > before) continue;
    try {
      await inShortTransaction(client, async () => {
        await client.query(`drop table ${p.name}`);
      });
      dropped.push(p.name);
    } catch (err) {
      log.warn({ err, partition: p.name }, 'could not drop a publications partition; the next round tries again');
      break;
    }
  }
  if (dropped.length > 0) {
    const starts = (await listPartitions(client)).filter((p) => !p.isDefault).map((p) => p.from ?? -Infinity);
    const oldest = starts.length > 0 ? Math.min(...starts) : before;
    if (Number.isFinite(oldest)) await forgetPeriodsBefore(client, oldest);
    log.info({ dropped }, 'retention dropped publications partitions');
  }
  return dropped;
}

/**
 * Deletes channel_periods rows of days no partition holds any more, in small batches.
 * Forgetting a row only widens the bound a read takes (an older row, or none), so it is
 * always safe.
 */
async function forgetPeriodsBefore(client: PoolClient, before: number): Promise<void> {
  for (;;) {
    const { rowCount } = await client.query(
      `delete from channel_periods where ctid in (select ctid from channel_periods where starts_at < $1 limit 5000)`,
      [new Date(before).toISOString()],
    );
    if ((rowCount ?? 0) < 5000) return;
  }
}
