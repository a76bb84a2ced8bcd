/**
 * A third-party Centrifugo API client, cent.js 6.1.0, unmodified, drives every method it
 * has against a gateway (issue 16): what a backend written for Centrifugo sends works here.
 * History reads the same whether it is served from Redis or from PostgreSQL.
 */
import { CentClient, CentException } from 'cent.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { API_KEY } from '../helpers/api.js';
import { connected } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('cent.js, a third-party API client', () => {
  const stack = new TestStack();
  let cent: CentClient;
  let port = 0;
  let redis: Redis;

  beforeAll(async () => {
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY })).port;
    await stack.worker();
    cent = new CentClient({ url: `http://127.0.0.1:${port}/api`, apiKey: API_KEY });
    redis = new Redis(stack.redisUrl);
  });
  afterAll(async () => {
    redis.disconnect();
    await stack.close();
  });

  it('publishes, broadcasts and reads history, the same from Redis as from PostgreSQL', async () => {
    const channel = uniqueChannel('cent');
    const other = uniqueChannel('cent');
    const first = await cent.publish({ channel, data: { n: 1 }, tags: { kind: 'a' } });
    expect(first).toMatchObject({ offset: 1 });
    // cent.js types the result as a list; Centrifugo (and Tidings) answer {responses: [...]}.
    const broadcast = (await cent.broadcast({ channels: [channel, other], data: { n: 2 } })) as unknown as { responses: unknown[] };
    expect(broadcast.responses).toHaveLength(2);
    const fromCache = await cent.getHistory({ channel, limit: 10 });
    expect(fromCache.publications.map((p) => p.data)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(fromCache.offset).toBe(2);
    await redis.del(makeKeys(stack.prefix).history(channel));
    const fromDatabase = await cent.getHistory({ channel, limit: 10 });
    expect(fromDatabase).toEqual(fromCache);
    expect(await cent.removeHistory({ channel })).toEqual({});
    expect((await cent.getHistory({ channel, limit: 10 })).publications ?? []).toEqual([]);
  });

  it("subscribes, refreshes, unsubscribes and disconnects a user's connection; presence, channels and info", async () => {
    const channel = uniqueChannel('centsub');
    const client = await connected(wsUrl(port), await token('cent-user'));
    const subscribed: string[] = [];
    client.on('subscribed', (ctx) => subscribed.push(ctx.channel));
    await cent.subscribe({ user: 'cent-user', channel });
    await waitFor('the server-side subscription', () => subscribed.includes(channel));
    expect(Object.values((await cent.getPresence({ channel })).presence)).toMatchObject([{ user: 'cent-user' }]);
    expect(await cent.getPresenceStats({ channel })).toEqual({ num_clients: 1, num_users: 1 });
    expect((await cent.getChannels({ pattern: channel })).channels).toHaveProperty(channel);
    expect((await cent.getInfo()).nodes.length).toBeGreaterThanOrEqual(1);
    expect(await cent.refresh({ user: 'cent-user' })).toEqual({});
    expect(await cent.unsubscribe({ user: 'cent-user', channel })).toEqual({});
    const gone = new Promise((resolve) => client.on('disconnected', resolve));
    expect(await cent.disconnect({ user: 'cent-user' })).toEqual({});
    await gone;
  });

  it('runs a pipeline through the legacy endpoint, and reports errors as CentException', async () => {
    const channel = uniqueChannel('centpipe');
    const results = await cent.pipeline([
      { method: 'publish', params: { channel, data: { n: 1 } } },
      { method: 'publish', params: { channel, data: { n: 2 } } },
      { method: 'history', params: { channel, limit: 5 } },
    ] as Parameters<CentClient['pipeline']>[0]);
    expect(results[1]).toMatchObject({ offset: 2 });
    expect((results[2] as { publications: unknown[] }).publications).toHaveLength(2);
    const err = await cent.publish({ channel: 'nosuchns:x', data: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CentException);
  });
});
