/**
 * Namespaces and permissions, presence across gateways, join/leave, server-side
 * subscriptions and the per-connection rate limit, with the official SDK (and raw sockets
 * where the SDK hides the wire).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connected, newClient, record } from '../helpers/client.js';
import { RawClient } from '../helpers/raw.js';
import { SECRET, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';
import { signToken } from '../../src/auth/jwt.js';

const NAMESPACES = {
  namespaces: {
    secret: { private: true },
    open: { allow_anonymous: true },
    quiet: { publish: 'none', allow_history: false, presence: false, join_leave: false },
    members: { publish: 'subscribers' },
  },
};

async function subscribeError(url: string, user: string, channel: string, opts: Record<string, unknown> = {}) {
  const client = await connected(url, await token(user));
  const sub = client.newSubscription(channel, opts);
  const code = new Promise<number>((resolve) => sub.on('unsubscribed', (ctx) => resolve(ctx.code)));
  sub.subscribe();
  const result = await code;
  client.disconnect();
  return result;
}

describe('channels: namespaces, permissions, presence', () => {
  let stack: TestStack;
  let urls: string[] = [];

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tidings-ns-'));
    const file = join(dir, 'tidings.json');
    await writeFile(file, JSON.stringify(NAMESPACES));
    stack = new TestStack({ env: { TIDINGS_CONFIG: file, TIDINGS_PRESENCE_TTL_S: '5' } });
    const gateways = await Promise.all([stack.gateway(), stack.gateway()]);
    await stack.worker();
    urls = gateways.map((g) => wsUrl(g.port));
  });
  afterAll(() => stack.close());

  it('refuses unknown namespaces (102), private channels without a token (103), other users on user-limited channels (103)', async () => {
    expect(await subscribeError(urls[0]!, 'u1', `nope:${uniqueChannel()}`)).toBe(102);
    expect(await subscribeError(urls[0]!, 'u1', `secret:${uniqueChannel()}`)).toBe(103);
    expect(await subscribeError(urls[0]!, 'u1', `$${uniqueChannel()}`)).toBe(103);
    expect(await subscribeError(urls[0]!, 'u3', `${uniqueChannel('dm')}#u1,u2`)).toBe(103);

    const dm = `${uniqueChannel('dm')}#u1,u2`;
    const client = await connected(urls[0]!, await token('u2'));
    const sub = client.newSubscription(dm);
    sub.subscribe();
    await sub.ready(5000);
    client.disconnect();
  });

  it('lets a private channel in with a subscription token, whose info becomes chan_info', async () => {
    const channel = `secret:${uniqueChannel()}`;
    const client = await connected(urls[0]!, await token('u1'));
    const subToken = await signToken({ user: 'u1', channel, secret: SECRET, ttlSeconds: 600, info: { role: 'editor' } });
    const rec = record(client, channel, { token: subToken });
    const infos: unknown[] = [];
    rec.sub.on('publication', (ctx) => infos.push(ctx.info?.chanInfo));
    rec.sub.subscribe();
    await rec.sub.ready(5000);
    await client.publish(channel, { hello: 1 });
    await waitFor('the publication on the private channel', () => infos.length === 1);
    expect(infos[0]).toEqual({ role: 'editor' });
    // A token for another channel is a forgery: the connection is closed (3500).
    const other = await RawClient.open(urls[0]!);
    await other.connect(await token('u1'));
    other.command('subscribe', { channel: `secret:${uniqueChannel()}`, token: subToken });
    expect((await other.closed()).code).toBe(3500);
    client.disconnect();
  });

  it('keeps anonymous connections out unless the namespace allows them', async () => {
    const anonymous = await signToken({ user: '', secret: SECRET, ttlSeconds: 600 });
    const client = await connected(urls[0]!, anonymous);
    const denied = client.newSubscription(uniqueChannel());
    const code = new Promise<number>((resolve) => denied.on('unsubscribed', (ctx) => resolve(ctx.code)));
    denied.subscribe();
    expect(await code).toBe(103);
    const allowed = client.newSubscription(`open:${uniqueChannel()}`);
    allowed.subscribe();
    await allowed.ready(5000);
    client.disconnect();
  });

  it('applies publish and history rules of the namespace', async () => {
    const client = await connected(urls[0]!, await token('u1'));
    await expect(client.publish(`quiet:${uniqueChannel()}`, {})).rejects.toMatchObject({ code: 103 });
    await expect(client.history(`quiet:${uniqueChannel()}`, { limit: 1 })).rejects.toMatchObject({ code: 108 });
    const members = `members:${uniqueChannel()}`;
    await expect(client.publish(members, {})).rejects.toMatchObject({ code: 103 });
    const sub = client.newSubscription(members);
    sub.subscribe();
    await sub.ready(5000);
    await expect(client.publish(members, { ok: true })).resolves.toBeDefined();
    client.disconnect();
  });

  it('shows presence across gateways, and join/leave to subscribers that ask', async () => {
    const channel = uniqueChannel('room');
    const watcher = await connected(urls[0]!, await token('watcher'));
    const watching = watcher.newSubscription(channel, { joinLeave: true });
    const events: string[] = [];
    watching.on('join', (ctx) => events.push(`join:${ctx.info.user}`));
    watching.on('leave', (ctx) => events.push(`leave:${ctx.info.user}`));
    watching.subscribe();
    await watching.ready(5000);

    const visitor = await connected(urls[1]!, await token('visitor', { info: { name: 'V' } }));
    const visiting = visitor.newSubscription(channel);
    visiting.subscribe();
    await visiting.ready(5000);
    await waitFor('the join event', () => events.includes('join:visitor'));

    const presence = await watcher.presence(channel);
    const users = Object.values(presence.clients).map((c) => c.user).sort();
    expect(users).toEqual(['visitor', 'watcher']);
    const visitorInfo = Object.values(presence.clients).find((c) => c.user === 'visitor');
    expect(visitorInfo?.connInfo).toEqual({ name: 'V' });
    expect(await visitor.presenceStats(channel)).toEqual({ numClients: 2, numUsers: 2 });

    visiting.unsubscribe();
    await waitFor('the leave event', () => events.includes('leave:visitor'));
    expect((await watcher.presenceStats(channel)).numClients).toBe(1);
    await expect(watcher.presence(`quiet:${uniqueChannel()}`)).rejects.toMatchObject({ code: 108 });
    watcher.disconnect();
    visitor.disconnect();
  });

  it('forgets the presence of a gateway that died, within the TTL', async () => {
    const channel = uniqueChannel('room');
    const doomed = await stack.spawn('gateway', { TIDINGS_PRESENCE_TTL_S: '5', TIDINGS_CONFIG: '' });
    const ghost = await connected(wsUrl(doomed.port), await token('ghost'));
    const haunting = ghost.newSubscription(channel);
    haunting.subscribe();
    await haunting.ready(5000);
    const observer = await connected(urls[0]!, await token('observer'));
    const observing = observer.newSubscription(channel);
    observing.subscribe();
    await observing.ready(5000);
    expect((await observer.presenceStats(channel)).numClients).toBe(2);
    await doomed.kill('SIGKILL'); // the socket dies with the process: no unsubscribe, no goodbye
    ghost.disconnect();
    await waitFor('the dead gateway\'s presence to expire', async () => (await observer.presenceStats(channel)).numClients === 1, {
      timeoutMs: 15_000,
      intervalMs: 500,
    });
    observer.disconnect();
  });

  it('subscribes server-side from the token channels claim and recovers it across reconnects', async () => {
    const channel = uniqueChannel('feed');
    const client = newClient(urls[0]!, await token('u9', { channels: [channel] }));
    const got: number[] = [];
    const subscribedEvents: { recovered: boolean; wasRecovering: boolean }[] = [];
    client.on('publication', (ctx) => ctx.channel === channel && got.push(Number(ctx.offset)));
    client.on('subscribed', (ctx) => ctx.channel === channel && subscribedEvents.push(ctx));
    client.connect();
    await waitFor('the server-side subscription', () => subscribedEvents.length === 1);
    const publisher = await connected(urls[1]!, await token('pub'));
    await Promise.all([1, 2, 3].map((n) => publisher.publish(channel, { n })));
    await waitFor('three publications', () => got.length === 3);

    client.disconnect();
    await Promise.all([4, 5].map((n) => publisher.publish(channel, { n })));
    client.connect();
    await waitFor('recovered publications', () => got.length === 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(subscribedEvents[1]).toMatchObject({ wasRecovering: true, recovered: true });
    client.disconnect();
    publisher.disconnect();
  });

  it('answers 111 over the rate limit and closes with 3013 when it goes on', async () => {
    const limited = await stack.gateway({ TIDINGS_CLIENT_RATE: '5', TIDINGS_CLIENT_BURST: '5' });
    const raw = await RawClient.open(wsUrl(limited.port));
    await raw.connect(await token('flood'));
    const ids = Array.from({ length: 8 }, () => raw.command('history', { channel: uniqueChannel() }));
    const replies = await Promise.all(ids.map((id) => raw.reply(id)));
    const codes = replies.map((r) => (r.error as { code?: number } | undefined)?.code ?? 0);
    expect(codes.filter((c) => c === 111).length).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) raw.command('history', { channel: 'x' });
    expect((await raw.closed()).code).toBe(3013);
  });
});
