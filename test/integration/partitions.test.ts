/**
 * Publications partitioned by time (migrations/0006, src/persist/partitions.ts): the
 * migration keeps every row, offset, id and key; partitions are made ahead and rows that
 * waited in the default partition move into theirs; retention drops whole partitions and
 * loses nothing inside the window; reads by offset skip the partitions before the
 * channel's period and return exactly what an unbounded read returns.
 *
 * Each test has a database of its own, so it can see every partition.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Namespaces } from '../../src/config/namespaces.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import { commitJobs, type JobCommitResult } from '../../src/db/repos/commit-many.js';
import { readBefore, readRange, removeHistory, type PersistOutcome } from '../../src/db/repos/publications.js';
import { createLogger } from '../../src/observability/logger.js';
import { ensurePartitions, listPartitions, partitionName, startOfDay } from '../../src/persist/partitions.js';
import { runRetention } from '../../src/persist/retention.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { freshDatabase, migrateUpTo } from '../helpers/database.js';

const DAY = 86_400_000;
const log = createLogger('silent');
const opened: Database[] = [];

async function database(migrated = true): Promise<{ url: string; db: Database }> {
  const url = await freshDatabase('part');
  if (migrated) await runMigrations(url);
  const db = openDatabase(url);
  opened.push(db);
  return { url, db };
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
});

function pub(channel: string, n: number, key?: string): NewPublication {
  return { id: randomUUID(), channel, data: JSON.stringify({ n }), idempotencyKey: key };
}

function outcome(result: JobCommitResult | undefined): PersistOutcome {
  if (!result || !('results' in result)) throw new Error('the job did not commit');
  return result;
}

async function query<R extends pg.QueryResultRow>(db: Database, text: string, values: unknown[] = []): Promise<R[]> {
  return (await db.pool.query<R>(text, values)).rows;
}

async function partitions(db: Database): Promise<string[]> {
  const client = await db.pool.connect();
  try {
    return (await listPartitions(client)).map((p) => p.name);
  } finally {
    client.release();
  }
}

async function partitionOfRow(db: Database, channel: string, offset: number): Promise<string> {
  const rows = await query<{ part: string }>(db, 'select tableoid::regclass::text as part from publications where channel = $1 and "offset" = $2', [
    channel,
    offset,
  ]);
  return rows[0]!.part;
}

describe('partitioned publications', () => {
  it('the migration keeps every row and offset, and ids and keys still deduplicate after it', async () => {
    const { url, db } = await database(false);
    await migrateUpTo(url, '0006_partitioned_publications');
    const jobs = [1, 2, 3].map((seq) => ({
      order: { stream: 's', seq, skipGap: false },
      batch: [pub('a', seq), pub('b', seq, `k${seq}`), pub('a', seq + 10)],
    }));
    await commitJobs(db.pool, jobs);
    await removeHistory(db.db, 'b');
    await commitJobs(db.pool, [{ order: { stream: 's', seq: 4, skipGap: false }, batch: [pub('b', 4, 'k4')] }]);
    const dump = async () => ({
      pubs: await query(db, 'select * from publications order by channel, "offset"'),
      channels: await query(db, 'select name, epoch, top_offset from channels order by name'),
      removed: await query(db, 'select * from removed_publications order by channel, "offset"'),
    });
    const before = await dump();

    // 0006 and whatever came after it.
    expect((await runMigrations(url)).applied).toBeGreaterThanOrEqual(1);
    expect(await dump()).toEqual(before);
    expect((await partitions(db)).sort()).toEqual(['publications_default', 'publications_legacy']);

    // A re-run of a job committed before the migration finds its publications, on both
    // channels (on b, among what history_remove kept); a reused key answers its first offset.
    const rerun = outcome((await commitJobs(db.pool, [jobs[1]!]))[0]);
    expect(rerun.results.map((r) => [r.channel, r.offset, r.fresh])).toEqual([
      ['a', 3, false],
      ['b', 2, false],
      ['a', 4, false],
    ]);
    const again = outcome((await commitJobs(db.pool, [{ order: { stream: 's', seq: 5, skipGap: false }, batch: [pub('b', 9, 'k4'), pub('a', 9)] }]))[0]);
    expect(again.results.map((r) => [r.channel, r.offset, r.fresh])).toEqual([
      ['b', 4, false],
      ['a', 7, true],
    ]);
    expect((await query(db, 'select count(*)::int as n from publications'))[0]).toEqual({ n: before.pubs.length + 1 });
  });

  it('makes partitions ahead, moves rows that waited in the default partition into theirs, and stays idempotent', async () => {
    const { db } = await database();
    const client = await db.pool.connect();
    try {
      const now = Date.now();
      const today = startOfDay(now);
      expect(await ensurePartitions(client, 1, log, now)).toBe(2);
      expect(await ensurePartitions(client, 1, log, now)).toBe(0);
      const names = (await listPartitions(client)).map((p) => p.name);
      expect(names).toEqual(['publications_legacy', partitionName(today + DAY), partitionName(today + 2 * DAY), 'publications_default']);

      // A row whose day has no partition yet waits in the default one.
      await client.query(`insert into publications (channel, "offset", id, data, created_at) values ('late', 1, $1, '{}', $2)`, [
        randomUUID(),
        new Date(today + 5 * DAY + 3_600_000).toISOString(),
      ]);
      expect(await partitionOfRow(db, 'late', 1)).toBe('publications_default');
      expect(await ensurePartitions(client, 1, log, now + 3 * DAY)).toBe(3);
      expect(await partitionOfRow(db, 'late', 1)).toBe(partitionName(today + 5 * DAY));

      // Wider partitions continue from the last one; a worker off for days catches up with one.
      expect(await ensurePartitions(client, 7, log, now + 3 * DAY)).toBe(1);
      const last = (await listPartitions(client)).filter((p) => !p.isDefault).at(-1)!;
      expect([last.from, last.to]).toEqual([today + 6 * DAY, today + 13 * DAY]);
      await ensurePartitions(client, 1, log, now + 30 * DAY);
      const catchUp = (await listPartitions(client)).find((p) => p.from === today + 13 * DAY)!;
      expect(catchUp.to).toBe(today + 30 * DAY);
    } finally {
      client.release();
    }
  });

  it('retention drops whole partitions once every window has passed them, and loses nothing inside a window', async () => {
    const { db } = await database();
    const now = Date.now();
    const today = startOfDay(now);
    const client = await db.pool.connect();
    await ensurePartitions(client, 1, log, now);
    client.release();
    // Every six hours from today 00:00 to 3 days 6 hours later, on a 2-day and a 1-day namespace.
    const times = Array.from({ length: 14 }, (_, k) => today + k * 6 * 3_600_000);
    for (const channel of ['room', 'short:x']) {
      await query(db, `insert into channels (name, epoch, top_offset) values ($1, 'abcdefgh', $2)`, [channel, times.length]);
      for (const [k, at] of times.entries()) {
        await query(db, `insert into publications (channel, "offset", id, data, created_at) values ($1, $2, $3, '{}', $4)`, [
          channel,
          k + 1,
          randomUUID(),
          new Date(at).toISOString(),
        ]);
      }
      await query(db, `insert into channel_periods values ($1, $2, 1), ($1, $3, 5), ($1, $4, 9)`, [
        channel,
        new Date(today).toISOString(),
        new Date(today + DAY).toISOString(),
        new Date(today + 2 * DAY).toISOString(),
      ]);
    }
    const settings = { historySize: 10, historyTtlS: 10, recoveryMax: 10 };
    const at = new Date(today + 3.5 * DAY);
    const left = async (channel: string) =>
      (await query<{ t: Date }>(db, 'select created_at as t from publications where channel = $1 order by "offset"', [channel])).map((r) =>
        r.t.getTime(),
      );

    const windows = new Namespaces({ default: { retention_days: 2 }, namespaces: { short: { retention_days: 1 } } }, settings);
    await runRetention(db, windows, log, { partitionDays: 1, now: at });
    const names = await partitions(db);
    expect(names).not.toContain('publications_legacy');
    expect(names).toContain(partitionName(today + DAY));
    // room (2 days, the longest window): what was before today + 1 day went with its
    // partition; the rest of that day waits for its own, so from the cut-off (1.5 days) on
    // everything is there.
    expect(await left('room')).toEqual(times.filter((t) => t >= today + DAY));
    // short (1 day): deleted row by row at exactly its window.
    expect(await left('short:x')).toEqual(times.filter((t) => t >= at.getTime() - DAY));
    expect(await query(db, `select channel, first_offset from channel_periods where channel = 'room' order by starts_at`)).toEqual([
      { channel: 'room', first_offset: 5 },
      { channel: 'room', first_offset: 9 },
    ]);
    expect(await query(db, `select top_offset from channels where name = 'room'`)).toEqual([{ top_offset: 14 }]);

    // A namespace that keeps everything: no partition may go; the others delete row by row.
    const forever = new Namespaces(
      { default: { retention_days: 2 }, namespaces: { short: { retention_days: 1 }, keep: { retention_days: null } } },
      settings,
    );
    await runRetention(db, forever, log, { partitionDays: 1, now: at });
    expect(await partitions(db)).toEqual(names);
    expect(await left('room')).toEqual(times.filter((t) => t >= at.getTime() - 2 * DAY));
  });

  it('a commit records the first offset of a channel on a new day, and stamps no earlier than the channel period', async () => {
    const { db } = await database();
    const client = await db.pool.connect();
    await ensurePartitions(client, 1, log, Date.now());
    client.release();
    const today = startOfDay(Date.now());
    await commitJobs(db.pool, [{ order: undefined, batch: [pub('c', 1), pub('c', 2)] }]);
    await commitJobs(db.pool, [{ order: undefined, batch: [pub('c', 3), pub('d', 1)] }]);
    expect(await query(db, 'select channel, starts_at, first_offset from channel_periods order by channel')).toEqual([
      { channel: 'c', starts_at: new Date(today), first_offset: 1 },
      { channel: 'd', starts_at: new Date(today), first_offset: 1 },
    ]);
    // The clock stepped back a day after c's period moved to tomorrow: c's publications go
    // on being stamped in tomorrow's partition, so a read bounded by that period finds them.
    await query(db, `update channels set period_start = $1 where name = 'c'`, [new Date(today + DAY).toISOString()]);
    await query(db, `insert into channel_periods values ('c', $1, 4)`, [new Date(today + DAY).toISOString()]);
    await commitJobs(db.pool, [{ order: undefined, batch: [pub('c', 4), pub('d', 2)] }]);
    expect(await partitionOfRow(db, 'c', 4)).toBe(partitionName(today + DAY));
    expect(await partitionOfRow(db, 'd', 2)).toBe(partitionName(today + DAY));
    expect((await readRange(db.db, 'c', 3, 10, 10)).map((r) => r.offset)).toEqual([4]);
    expect((await readBefore(db.db, 'c', 5, 2)).map((r) => r.offset)).toEqual([4, 3]);
  });

  it('reads by offset skip the partitions before the period, and return what an unbounded read returns', async () => {
    const { db } = await database();
    const today = startOfDay(Date.now());
    const client = await db.pool.connect();
    await ensurePartitions(client, 1, log, Date.now());
    client.release();
    // 60 publications over three days; each day's first offset recorded as a commit would.
    await query(db, `insert into channels (name, epoch, top_offset) values ('r', 'abcdefgh', 60)`);
    await query(
      db,
      `insert into publications (channel, "offset", id, data, created_at)
       select 'r', o, gen_random_uuid(), '{}', $1::timestamptz + (case when o <= 20 then 0 when o <= 45 then 1 else 2 end) * interval '1 day' + o * interval '1 second'
         from generate_series(1, 60) o`,
      [new Date(today).toISOString()],
    );
    await query(db, `insert into channel_periods values ('r', $1, 1), ('r', $2, 21), ('r', $3, 46)`, [0, 1, 2].map((d) => new Date(today + d * DAY).toISOString()));

    const all = Array.from({ length: 60 }, (_, i) => i + 1);
    for (let after = 0; after <= 60; after += 1) {
      for (const limit of [1, 7, 100]) {
        expect((await readRange(db.db, 'r', after, 60, limit)).map((r) => r.offset)).toEqual(all.filter((o) => o > after).slice(0, limit));
        expect((await readBefore(db.db, 'r', after + 1, limit)).map((r) => r.offset)).toEqual(all.filter((o) => o <= after).reverse().slice(0, limit));
      }
    }
    // After offset 50 only the third day's partition is read.
    const plan = await query<{ 'QUERY PLAN': string }>(
      db,
      `explain (analyze, costs off, timing off, summary off) select "offset" from publications
        where channel = 'r' and "offset" > 50 and created_at >= coalesce((select cp.starts_at from channel_periods cp
          where cp.channel = 'r' and cp.first_offset <= 51 order by cp.starts_at desc limit 1), '-infinity')
        order by "offset" limit 5`,
    );
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    const scanOf = (part: string) => text.split('\n').find((line) => line.includes(`on ${part} `)) ?? '';
    expect(scanOf('publications_legacy')).toContain('(never executed)');
    expect(scanOf(partitionName(today + DAY))).toContain('(never executed)');
    expect(scanOf(partitionName(today + 2 * DAY))).toContain('actual rows=5');
  });
});
