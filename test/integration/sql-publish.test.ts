/**
 * Publish from SQL inside the app's own transaction (issue 15): `tidings.publish(...)` with
 * plain `pg`, delivered live with an offset once the transaction commits, never when it rolls
 * back, exactly once, interleaved in order with socket publishes, deduplicated by its key, and
 * still delivered after the worker that would relay it is killed.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { makeKeys, partitionOf } from '../../src/bus/keys.js';
import { withScripts } from '../../src/bus/scripts.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import type { StoredPublication } from '../../src/db/repos/publications.js';
import { createLogger } from '../../src/observability/logger.js';
import { GroupCommit } from '../../src/persist/group.js';
import { startRelay, type Relay } from '../../src/persist/relay.js';
import { NO_COMMIT_HOOK, type CommitHook } from '../../src/webhooks/publications.js';
import { expectContiguous, subscribed } from '../helpers/client.js';
import { freshDatabase } from '../helpers/database.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/** The partition count of the relays these tests build (the stack's workers run with 4 too). */
const PARTITIONS = 4;
const ALL_PARTITIONS = Array.from({ length: PARTITIONS }, (_, p) => p);

/** A channel name (with `prefix`) whose partition is `partition`. */
function channelIn(partition: number, prefix: string): string {
  for (;;) {
    const channel = uniqueChannel(prefix);
    if (partitionOf(channel, PARTITIONS) === partition) return channel;
  }
}

describe('tidings.publish from SQL', () => {
  let stack: TestStack;
  let url = '';
  let app: pg.Client;

  beforeAll(async () => {
    // A database of its own: every worker on a database relays the outbox rows of the
    // partitions it owns, and the workers of other test files (other Redis prefixes) must
    // not take this file's.
    const databaseUrl = await freshDatabase('sqlpub');
    await runMigrations(databaseUrl);
    stack = new TestStack({ databaseUrl });
    url = wsUrl((await stack.gateway()).port);
    app = new pg.Client({ connectionString: stack.databaseUrl });
    await app.connect();
    await app.query('create table if not exists app_items (id serial primary key, title text not null)');
  });
  afterAll(async () => {
    await app.end();
    await stack.close();
  });

  /** A relay outside any worker, owning `owned`, committing through a group commit of its own. */
  function relayOwning(database: Database, redis: Redis, hook: CommitHook, signal: AbortSignal, owned: number[]): Relay {
    const log = createLogger('silent');
    const cache = () => ({ size: 10, ttlS: 60 });
    const group = new GroupCommit({ database, redis: withScripts(redis), keys: makeKeys(stack.prefix), cache, hook, log, signal });
    return startRelay({ databaseUrl: stack.databaseUrl, database, commit: (job) => group.submit(job), owned: () => owned, partitions: PARTITIONS, log });
  }

  it('delivers what a committed transaction published, and nothing of one rolled back', async () => {
    const worker = await stack.worker();
    const channel = uniqueChannel('sql');
    const sub = await subscribed(url, await token(), channel);
    await app.query('begin');
    await app.query(`insert into app_items (title) values ('rolled back')`);
    await app.query('select tidings.publish($1, $2)', [channel, { item: 'rolled back' }]);
    await app.query('rollback');
    const began = Date.now();
    await app.query('begin');
    const { rows } = await app.query<{ id: number }>(`insert into app_items (title) values ('kept') returning id`);
    await app.query('select tidings.publish($1, $2)', [channel, { item: rows[0]!.id }]);
    await app.query('commit');
    await waitFor('the committed publication', () => sub.received.length === 1);
    console.log(`[sql-publish] commit → delivered in ${Date.now() - began} ms`);
    expect(sub.received).toEqual([{ offset: 1, data: { item: rows[0]!.id } }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(sub.received).toHaveLength(1);
    sub.client.disconnect();
    await worker.close();
  });

  it('interleaves with socket publishes in one order, exactly once; a repeated key publishes once', async () => {
    const worker = await stack.worker();
    const channel = uniqueChannel('mix');
    const sub = await subscribed(url, await token(), channel);
    for (let i = 0; i < 20; i++) {
      await sub.sub.publish({ from: 'socket', i });
      await app.query('select tidings.publish($1, $2)', [channel, { from: 'sql', i }]);
    }
    await app.query('select tidings.publish($1, $2, $3)', [channel, { from: 'sql', keyed: true }, 'order-42']);
    await app.query('select tidings.publish($1, $2, $3)', [channel, { from: 'sql', keyed: true }, 'order-42']);
    await waitFor('41 publications', () => sub.received.length >= 41);
    await new Promise((r) => setTimeout(r, 300));
    expect(expectContiguous(sub.offsets(), 41)).toBeUndefined();
    const bySource = (from: string) => sub.received.filter((r) => (r.data as { from: string }).from === from);
    expect(bySource('socket').map((r) => (r.data as { i: number }).i)).toEqual([...Array(20).keys()]);
    expect(bySource('sql')).toHaveLength(21);
    sub.client.disconnect();
    await worker.close();
  });

  it('refuses a bad call in the app statement itself', async () => {
    for (const [channel, data, key] of [
      ['has space', { a: 1 }, null],
      ['', { a: 1 }, null],
      ['x'.repeat(300), { a: 1 }, null],
      ['ok', null, null],
      ['ok', { a: 1 }, ''],
    ] as const) {
      const err = await app.query('select tidings.publish($1, $2, $3)', [channel, data, key]).catch((e: { code: string }) => e);
      expect((err as { code: string }).code, JSON.stringify([channel.slice(0, 10), data, key])).toBe('22023');
    }
  });

  it('a relay whose hook fails after the commit stores nothing twice, hooks the same publications again, and only then lets the rows go', async () => {
    const database = openDatabase(stack.databaseUrl, { max: 2 });
    const redis = new Redis(stack.redisUrl);
    const seen: StoredPublication[][] = [];
    let failures = 1;
    const hook: CommitHook = {
      committed: async (stored) => {
        seen.push([...stored]);
        if (failures-- > 0) throw new Error('killed between the commit and the hook');
      },
      close: async () => {},
    };
    const channel = uniqueChannel('relayhook');
    for (const n of [1, 2]) await app.query('select tidings.publish($1, $2)', [channel, { n }]);
    const stopping = new AbortController();
    const relay = relayOwning(database, redis, hook, stopping.signal, ALL_PARTITIONS);
    try {
      await waitFor('a second hook call, after the failed one', () => seen.length >= 2, { timeoutMs: 15_000 });
      await waitFor('the rows gone from the outbox', async () => {
        const left = await app.query<{ n: number }>('select count(*)::int as n from tidings.outbox where channel = $1', [channel]);
        return left.rows[0]!.n === 0;
      });
    } finally {
      await relay.close();
      stopping.abort();
      redis.disconnect();
    }
    expect(seen[1]!.map((p) => [p.offset, p.id])).toEqual(seen[0]!.map((p) => [p.offset, p.id]));
    const stored = await app.query<{ offset: string }>('select "offset" from publications where channel = $1 order by "offset"', [channel]);
    expect(stored.rows.map((r) => Number(r.offset))).toEqual([1, 2]);
    const left = await app.query<{ n: number }>('select count(*)::int as n from tidings.outbox where channel = $1', [channel]);
    expect(left.rows[0]!.n, 'the rows leave the outbox once hooked').toBe(0);
    await database.close();
  });

  it("keeps a channel's rows in their order past a digit boundary of the outbox id (9 → 10, 99 → 100, …)", async () => {
    const relay = await stack.worker();
    const channel = uniqueChannel('digits');
    const sub = await subscribed(url, await token(), channel);
    // One transaction, so one round sees them all: ids across at least one power of ten.
    await app.query('begin');
    await app.query(`select tidings.publish($1, jsonb_build_object('n', i)) from generate_series(1, 120) as i`, [channel]);
    await app.query('commit');
    await waitFor('all 120', () => sub.received.length >= 120);
    expect(sub.received.map((r) => (r.data as { n: number }).n)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(expectContiguous(sub.offsets(), 120)).toBeUndefined();
    sub.client.disconnect();
    await relay.close();
  });

  it("a worker relays its own partitions' rows only, and finds them behind a full batch of others'", async () => {
    const database = openDatabase(stack.databaseUrl, { max: 2 });
    const redis = new Redis(stack.redisUrl);
    const others = channelIn(0, 'others');
    const mine = channelIn(1, 'mine');
    // More of another partition's rows first than a round reads at once (its BATCH, 1,000).
    await app.query(`select tidings.publish($1, jsonb_build_object('n', i)) from generate_series(1, 1200) as i`, [others]);
    for (const n of [1, 2, 3]) await app.query('select tidings.publish($1, $2)', [mine, { n }]);
    const stopping = new AbortController();
    const relay = relayOwning(database, redis, NO_COMMIT_HOOK, stopping.signal, [1]);
    try {
      await waitFor('its own rows committed', async () => {
        const { rows } = await app.query<{ n: number }>('select count(*)::int as n from publications where channel = $1', [mine]);
        return rows[0]!.n === 3;
      });
    } finally {
      await relay.close();
      stopping.abort();
      redis.disconnect();
    }
    const count = async (sqlText: string, channel: string) => (await app.query<{ n: number }>(sqlText, [channel])).rows[0]!.n;
    expect(await count('select count(*)::int as n from tidings.outbox where channel = $1', mine)).toBe(0);
    expect(await count('select count(*)::int as n from tidings.outbox where channel = $1', others), 'not its partition: left to its owner').toBe(1200);
    expect(await count('select count(*)::int as n from publications where channel = $1', others)).toBe(0);
    await app.query('delete from tidings.outbox where channel = $1', [others]);
    await database.close();
  });

  it('loses nothing when the worker dies: what waited in the outbox goes out with the next worker', async () => {
    const channel = uniqueChannel('kill');
    const sub = await subscribed(url, await token(), channel);
    const child = await stack.spawn('worker');
    await app.query('select tidings.publish($1, $2)', [channel, { n: 1 }]);
    await waitFor('the first publication', () => sub.received.length === 1);
    await child.kill('SIGKILL');
    for (let n = 2; n <= 10; n++) await app.query('select tidings.publish($1, $2)', [channel, { n }]);
    await stack.worker();
    await waitFor('all ten publications', () => sub.received.length >= 10, { timeoutMs: 20_000 });
    expect(sub.received.map((r) => (r.data as { n: number }).n)).toEqual([...Array(10).keys()].map((i) => i + 1));
    expect(expectContiguous(sub.offsets(), 10)).toBeUndefined();
    sub.client.disconnect();
  });
});
