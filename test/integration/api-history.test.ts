/**
 * API history, history_remove, presence and presence_stats (PROTOCOL.md F.2).
 * history_remove goes through the persist worker: the stored publications and the Redis
 * cache go, the channels row (epoch, top offset) stays, and numbering continues after it.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, call, callError, namespacesFile } from '../helpers/api.js';
import { connected, newClient, subscribed } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Pub {
  data: unknown;
  offset: number;
}
interface History {
  publications: Pub[];
  epoch: string;
  offset: number;
}

describe('server API: history and presence', () => {
  const stack = new TestStack();
  let port = 0;
  let db: pg.Client;
  let redis: Redis;

  beforeAll(async () => {
    const config = await namespacesFile({
      namespaces: { nohist: { allow_history: false }, nopres: { presence: false } },
    });
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_CONFIG: config })).port;
    await stack.worker({ TIDINGS_CONFIG: config });
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    redis = new Redis(stack.redisUrl);
  });
  afterAll(async () => {
    await db.end();
    redis.disconnect();
    await stack.close();
  });

  async function publishN(channel: string, n: number, from = 1): Promise<void> {
    for (let i = from; i < from + n; i++) await call(port, 'publish', { channel, data: { i } });
  }

  it('pages history like the client command: limit, since, reverse, position only', async () => {
    const channel = uniqueChannel('hist');
    await publishN(channel, 10);
    const all = await call<History>(port, 'history', { channel, limit: -1 });
    expect(all.publications.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(all.publications[2]!.data).toEqual({ i: 3 });
    expect(all.offset).toBe(10);
    expect(all.epoch).toMatch(/^[a-z]{8}$/);

    const first = await call<History>(port, 'history', { channel, limit: 3 });
    expect(first.publications.map((p) => p.offset)).toEqual([1, 2, 3]);
    const since = await call<History>(port, 'history', { channel, limit: 2, since: { offset: 7, epoch: all.epoch } });
    expect(since.publications.map((p) => p.offset)).toEqual([8, 9]);
    const reverse = await call<History>(port, 'history', { channel, limit: 2, reverse: true });
    expect(reverse.publications.map((p) => p.offset)).toEqual([10, 9]);
    const reverseSince = await call<History>(port, 'history', { channel, limit: 2, reverse: true, since: { offset: 5 } });
    expect(reverseSince.publications.map((p) => p.offset)).toEqual([4, 3]);
    expect(await call(port, 'history', { channel })).toEqual({ publications: [], epoch: all.epoch, offset: 10 });
    // A channel never published to: all three fields, zero values.
    expect(await call(port, 'history', { channel: uniqueChannel('empty'), limit: -1 })).toEqual({
      publications: [],
      epoch: '',
      offset: 0,
    });
  });

  it('refuses history with 112 on another epoch, 108 where it is off, 107 / 102 for bad channels', async () => {
    const channel = uniqueChannel('hist-err');
    await publishN(channel, 1);
    expect(await callError(port, 'history', { channel, limit: 1, since: { offset: 0, epoch: 'otherepo' } })).toEqual({
      code: 112,
      message: 'unrecoverable position',
    });
    expect((await callError(port, 'history', { channel: `nohist:${channel}`, limit: 1 })).code).toBe(108);
    expect((await callError(port, 'history_remove', { channel: `nohist:${channel}` })).code).toBe(108);
    expect((await callError(port, 'history', { channel: '' })).code).toBe(107);
    expect((await callError(port, 'history', { channel, limit: 'ten' })).code).toBe(107);
    expect((await callError(port, 'history', { channel: 'nosuchns:x' })).code).toBe(102);
    expect((await callError(port, 'history_remove', { channel: '' })).code).toBe(107);
  });

  it('history_remove clears stored publications and the cache, keeps epoch and top; offsets continue', async () => {
    const channel = uniqueChannel('remove');
    await publishN(channel, 3);
    const before = await call<History>(port, 'history', { channel, limit: -1 });
    expect(await redis.exists(`${stack.prefix}:h:${channel}`)).toBe(1);

    expect(await call(port, 'history_remove', { channel })).toEqual({});
    // Acknowledged after the commit: PostgreSQL and Redis already reflect it.
    const stored = await db.query('select count(*)::int as n from publications where channel = $1', [channel]);
    expect(stored.rows[0].n).toBe(0);
    const row = await db.query('select epoch, top_offset::int as top from channels where name = $1', [channel]);
    expect(row.rows[0]).toEqual({ epoch: before.epoch, top: 3 });
    expect(await redis.exists(`${stack.prefix}:h:${channel}`)).toBe(0);
    expect(await call(port, 'history', { channel, limit: -1 })).toEqual({ publications: [], epoch: before.epoch, offset: 3 });

    await publishN(channel, 2, 4);
    const after = await call<History>(port, 'history', { channel, limit: -1 });
    expect(after.epoch).toBe(before.epoch);
    expect(after.publications.map((p) => [p.offset, p.data])).toEqual([
      [4, { i: 4 }],
      [5, { i: 5 }],
    ]);
    expect(after.offset).toBe(5);

    // A client that was at offset 2 cannot recover what was removed: it is told so, at the top.
    const client = newClient(wsUrl(port), await token());
    const sub = client.newSubscription(channel, { since: { offset: 2, epoch: before.epoch } });
    const subscribedCtx = new Promise<{ recovered: boolean; streamPosition?: { offset: number } }>((resolve) => sub.on('subscribed', resolve));
    sub.subscribe();
    client.connect();
    const ctx = await subscribedCtx;
    expect(ctx.recovered).toBe(false);
    expect(Number(ctx.streamPosition?.offset)).toBe(5);
    client.disconnect();
  });

  it('gives publications one shape whether Redis or PostgreSQL answers (epoch, info, tags)', async () => {
    const channel = uniqueChannel('shape');
    const client = await connected(wsUrl(port), await token('shaper'));
    await client.publish(channel, { from: 'client' });
    await call(port, 'publish', { channel, data: { from: 'api' }, tags: { lang: 'en' } });
    await client.publish(channel, { from: 'client again' });
    client.disconnect();
    const fromCache = await call<History>(port, 'history', { channel, limit: -1 });
    expect(await redis.del(`${stack.prefix}:h:${channel}`), 'the cache held them').toBe(1);
    const fromDatabase = await call<History>(port, 'history', { channel, limit: -1 });
    expect(fromDatabase).toEqual(fromCache);
    expect(fromCache.publications.map((p) => Object.keys(p).sort())).toEqual([
      ['data', 'epoch', 'info', 'offset'],
      ['data', 'offset', 'tags'],
      ['data', 'info', 'offset'],
    ]);
  });

  it('history_remove of a channel never published to creates nothing', async () => {
    const channel = uniqueChannel('never');
    expect(await call(port, 'history_remove', { channel })).toEqual({});
    const row = await db.query('select 1 from channels where name = $1', [channel]);
    expect(row.rowCount).toBe(0);
  });

  it('history_remove is ordered with publishes on the same partition queue', async () => {
    const channel = uniqueChannel('ordered');
    // A parallel batch queues its commands in command order without waiting for any commit,
    // so only the queue order decides what the removal removes.
    const result = await call<{ replies: Record<string, unknown>[] }>(port, 'batch', {
      parallel: true,
      commands: [
        { publish: { channel, data: 1 } },
        { publish: { channel, data: 2 } },
        { history_remove: { channel } },
        { publish: { channel, data: 3 } },
      ],
    });
    expect(result.replies).toEqual([
      { publish: { offset: 1, epoch: expect.any(String) } },
      { publish: { offset: 2, epoch: expect.any(String) } },
      { history_remove: {} },
      { publish: { offset: 3, epoch: expect.any(String) } },
    ]);
    const left = await call<History>(port, 'history', { channel, limit: -1 });
    expect(left.publications.map((p) => p.offset)).toEqual([3]);
  });

  it('answers presence and presence_stats from every subscriber, 108 where presence is off', async () => {
    const channel = uniqueChannel('pres');
    const url = wsUrl(port);
    const subs = [
      await subscribed(url, await token('alice', { info: { name: 'Alice' } }), channel),
      await subscribed(url, await token('alice'), channel),
      await subscribed(url, await token('bob'), channel),
    ];
    const idle = await connected(url, await token('carol')); // connected, not subscribed
    const presence = await waitFor('three presence entries', async () => {
      const result = await call<{ presence: Record<string, { user: string; client: string; conn_info?: unknown }> }>(
        port,
        'presence',
        { channel },
      );
      return Object.keys(result.presence).length === 3 ? result.presence : undefined;
    });
    const entries = Object.entries(presence);
    for (const [id, info] of entries) expect(info.client).toBe(id);
    expect(entries.map(([, e]) => e.user).sort()).toEqual(['alice', 'alice', 'bob']);
    expect(entries.find(([, e]) => e.conn_info)?.[1].conn_info).toEqual({ name: 'Alice' });
    expect(await call(port, 'presence_stats', { channel })).toEqual({ num_clients: 3, num_users: 2 });

    subs[2]!.client.disconnect();
    await waitFor('bob to leave presence', async () => {
      const stats = await call<{ num_clients: number; num_users: number }>(port, 'presence_stats', { channel });
      return stats.num_clients === 2 && stats.num_users === 1;
    });

    expect(await call(port, 'presence', { channel: uniqueChannel('nobody') })).toEqual({ presence: {} });
    expect(await call(port, 'presence_stats', { channel: uniqueChannel('nobody') })).toEqual({ num_clients: 0, num_users: 0 });
    expect((await callError(port, 'presence', { channel: `nopres:${channel}` })).code).toBe(108);
    expect((await callError(port, 'presence_stats', { channel: `nopres:${channel}` })).code).toBe(108);
    expect((await callError(port, 'presence', { channel: '' })).code).toBe(107);
    expect((await callError(port, 'presence_stats', { channel: 'nosuchns:x' })).code).toBe(102);
    for (const s of subs) s.client.disconnect();
    idle.disconnect();
  });
});
