/**
 * The API methods that span gateways (PROTOCOL.md F.2): unsubscribe, disconnect and
 * subscribe reach a user's connections on any gateway through the control topic; channels
 * and info see every live gateway through the node registry, and forget one that closed
 * (at once) or died (within the registry's TTL).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Centrifuge, Subscription } from 'centrifuge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRY_TIMING, type NodeInfo } from '../../src/cluster/registry.js';
import { API_KEY, call, callError } from '../helpers/api.js';
import { connected, newClient, record, subscribed } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Nodes {
  nodes: NodeInfo[];
}

/** Resolves with the client id once connected. */
async function clientId(client: Centrifuge): Promise<string> {
  return new Promise((resolve) => client.on('connected', (ctx) => resolve(ctx.client)));
}

async function unsubscribedCode(sub: Subscription, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return waitFor(`subscription ${sub.channel} to end unsubscribed`, () => {
    const last = (sub as unknown as { lastUnsubscribe?: { code: number; reason: string } }).lastUnsubscribe;
    return sub.state === 'unsubscribed' ? last : undefined;
  }, { timeoutMs });
}

function trackUnsubscribe(sub: Subscription): void {
  sub.on('unsubscribed', (ctx) => Object.assign(sub, { lastUnsubscribe: { code: ctx.code, reason: ctx.reason } }));
}

describe('server API: across gateways', () => {
  const stack = new TestStack();
  let portA = 0;
  let portB = 0;

  beforeAll(async () => {
    portA = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_NODE_NAME: 'gw-a' })).port;
    portB = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_NODE_NAME: 'gw-b' })).port;
    await stack.worker();
  });
  afterAll(() => stack.close());

  it('unsubscribe: the user\'s subscriptions on any gateway end with 2000 and stay ended', async () => {
    const channel = uniqueChannel('unsub');
    const onB = await subscribed(wsUrl(portB), await token('u-unsub'), channel);
    const onA = await subscribed(wsUrl(portA), await token('u-unsub'), channel);
    const bystander = await subscribed(wsUrl(portB), await token('someone-else'), channel);
    for (const s of [onA, onB, bystander]) trackUnsubscribe(s.sub);

    expect(await call(portA, 'unsubscribe', { channel, user: 'u-unsub' })).toEqual({});
    expect(await unsubscribedCode(onA.sub)).toEqual({ code: 2000, reason: 'server unsubscribe' });
    expect(await unsubscribedCode(onB.sub)).toEqual({ code: 2000, reason: 'server unsubscribe' });
    await sleep(300);
    expect([onA.sub.state, onB.sub.state, bystander.sub.state]).toEqual(['unsubscribed', 'unsubscribed', 'subscribed']);
    expect([onA.client.state, onB.client.state]).toEqual(['connected', 'connected']);

    // They no longer receive the channel; the bystander does.
    await call(portA, 'publish', { channel, data: 'after' });
    await waitFor('the bystander to get the publication', () => bystander.received.length === 1);
    expect(onA.received.length + onB.received.length).toBe(0);
    for (const s of [onA, onB, bystander]) s.client.disconnect();
  });

  it('unsubscribe with client: only that connection', async () => {
    const channel = uniqueChannel('unsub-client');
    const first = newClient(wsUrl(portB), await token('u-two'));
    const firstId = clientId(first);
    const firstSub = record(first, channel);
    firstSub.sub.subscribe();
    first.connect();
    await firstSub.sub.ready(5000);
    const second = await subscribed(wsUrl(portA), await token('u-two'), channel);
    trackUnsubscribe(firstSub.sub);

    await call(portA, 'unsubscribe', { channel, user: 'u-two', client: await firstId });
    expect((await unsubscribedCode(firstSub.sub)).code).toBe(2000);
    await sleep(300);
    expect(second.sub.state).toBe('subscribed');
    first.disconnect();
    second.client.disconnect();
  });

  it('disconnect: 3503 by default, terminal for the SDK, on every gateway, sparing the whitelist', async () => {
    const clients = await Promise.all([portA, portB, portB].map(async (p) => connected(wsUrl(p), await token('u-dc'))));
    const spared = newClient(wsUrl(portB), await token('u-dc'));
    const sparedId = clientId(spared);
    spared.connect();
    await spared.ready(5000);
    const events: { code: number; reason: string }[][] = clients.map(() => []);
    clients.forEach((c, i) => c.on('disconnected', (ctx) => events[i]!.push({ code: ctx.code, reason: ctx.reason })));
    const reconnects: string[] = [];
    for (const c of clients) c.on('connecting', (ctx) => reconnects.push(`${ctx.code}`));

    expect(await call(portB, 'disconnect', { user: 'u-dc', whitelist: [await sparedId] })).toEqual({});
    await waitFor('every non-whitelisted connection to be disconnected', () => clients.every((c) => c.state === 'disconnected'));
    await sleep(500);
    expect(clients.map((c) => c.state)).toEqual(['disconnected', 'disconnected', 'disconnected']);
    expect(events).toEqual(clients.map(() => [{ code: 3503, reason: 'force disconnect' }]));
    expect(reconnects).toEqual([]);
    expect(spared.state).toBe('connected');
    spared.disconnect();
  });

  it('disconnect with a custom code and one client', async () => {
    const target = newClient(wsUrl(portA), await token('u-custom'));
    const targetId = clientId(target);
    target.connect();
    await target.ready(5000);
    const other = await connected(wsUrl(portA), await token('u-custom'));
    const disconnected = new Promise<{ code: number; reason: string }>((resolve) =>
      target.on('disconnected', (ctx) => resolve({ code: ctx.code, reason: ctx.reason })),
    );
    await call(portB, 'disconnect', { user: 'u-custom', client: await targetId, disconnect: { code: 4501, reason: 'moved' } });
    expect(await disconnected).toEqual({ code: 4501, reason: 'moved' });
    await sleep(300);
    expect(other.state).toBe('connected');
    other.disconnect();

    expect((await callError(portA, 'disconnect', {})).code).toBe(107);
    expect((await callError(portA, 'disconnect', { user: 'x', disconnect: { code: 1000 } })).code).toBe(107);
    expect((await callError(portA, 'unsubscribe', { user: 'x', channel: 'nosuchns:y' })).code).toBe(102);
    expect((await callError(portA, 'unsubscribe', { user: '', channel: 'y' })).code).toBe(107);
  });

  it('subscribe: the user\'s connections get a server-side subscription and its publications', async () => {
    const channel = uniqueChannel('serversub');
    const clients = await Promise.all([portA, portB].map(async (p) => connected(wsUrl(p), await token('u-ss'))));
    const got = clients.map(() => ({ subscribed: [] as string[], data: [] as unknown[] }));
    clients.forEach((c, i) => {
      c.on('subscribed', (ctx) => got[i]!.subscribed.push(ctx.channel));
      c.on('publication', (ctx) => got[i]!.data.push(ctx.data));
    });
    expect(await call(portA, 'subscribe', { channel, user: 'u-ss' })).toEqual({});
    await waitFor('both connections to be subscribed server-side', () => got.every((g) => g.subscribed.includes(channel)));
    await call(portB, 'publish', { channel, data: { hi: 1 } });
    await waitFor('both connections to receive the publication', () => got.every((g) => g.data.length === 1));
    expect(got.map((g) => g.data)).toEqual([[{ hi: 1 }], [{ hi: 1 }]]);

    expect((await callError(portA, 'subscribe', { channel, user: 'u-ss', b64info: 'AQ==' })).code).toBe(108);
    expect((await callError(portA, 'subscribe', { channel: 'nosuchns:x', user: 'u-ss' })).code).toBe(102);
    for (const c of clients) c.disconnect();
  });

  it('subscribe options: data in the push, info as chan_info, recovery from recover_since, override of presence', async () => {
    const channel = uniqueChannel('serversubopts');
    for (const n of [1, 2, 3]) await call(portA, 'publish', { channel, data: { n } });
    const { epoch } = await call<{ epoch: string }>(portA, 'history', { channel, limit: 0 });
    const client = await connected(wsUrl(portB), await token('u-so'));
    const subscribed = new Promise<{ data?: unknown }>((resolve) => client.on('subscribed', resolve));
    const got: number[] = [];
    client.on('publication', (ctx) => got.push(Number(ctx.offset)));
    const params = {
      channel,
      user: 'u-so',
      info: { seat: 7 },
      data: { welcome: true },
      recover_since: { offset: 1, epoch },
      override: { presence: { value: false } },
    };
    expect(await call(portA, 'subscribe', params)).toEqual({});
    expect((await subscribed).data).toEqual({ welcome: true });
    await waitFor('the publications after offset 1', () => got.length === 2);
    expect(got).toEqual([2, 3]);
    expect(await call(portA, 'presence', { channel })).toEqual({ presence: {} });

    for (const [bad, code] of [
      [{ recover_since: 5 }, 107],
      [{ expire_at: 1 }, 107],
      [{ override: { presence: true } }, 107],
      [{ override: { force_push_join_leave: { value: true } } }, 108],
    ] as const) {
      expect((await callError(portA, 'subscribe', { channel, user: 'u-so', ...bad })).code, JSON.stringify(bad)).toBe(code);
    }
    client.disconnect();
  });

  it('refresh: sets the expiry of a user\'s connections on any gateway, or ends them (3005)', async () => {
    const client = await connected(wsUrl(portB), await token('u-rf'));
    const disconnected = new Promise<{ code: number }>((resolve) => client.on('disconnected', resolve));
    const connecting = new Promise<{ code: number }>((resolve) => client.on('connecting', resolve));
    expect(await call(portA, 'refresh', { user: 'u-rf', expire_at: Math.floor(Date.now() / 1000) + 600 })).toEqual({});
    expect(await call(portA, 'refresh', { user: 'u-rf', expired: true })).toEqual({});
    // 3005 makes the SDK reconnect (its token is still good), so it passes through connecting.
    expect((await connecting).code).toBe(3005);
    client.disconnect();
    await disconnected;
    expect((await callError(portA, 'refresh', { user: 'u-rf', expired: 'yes' })).code).toBe(107);
    expect((await callError(portA, 'refresh', { user: 'u-rf', expire_at: 1 })).code).toBe(107);
    expect((await callError(portA, 'refresh', {})).code).toBe(107);
  });

  it('channels: subscriber counts summed over every gateway, filtered by a glob', async () => {
    const tag = uniqueChannel('chs');
    const [one, two] = [`${tag}-one`, `${tag}-two`];
    const subs = [
      await subscribed(wsUrl(portA), await token('c1'), one),
      await subscribed(wsUrl(portA), await token('c2'), one),
      await subscribed(wsUrl(portB), await token('c3'), one),
      await subscribed(wsUrl(portB), await token('c4'), two),
    ];
    for (const port of [portA, portB]) {
      const channels = await waitFor(`channels on port ${port} to count every gateway's subscribers`, async () => {
        const result = await call<{ channels: Record<string, { num_clients: number }> }>(port, 'channels', {
          pattern: `${tag}-*`,
        });
        const { [one]: a, [two]: b } = result.channels;
        return a?.num_clients === 3 && b?.num_clients === 1 ? result.channels : undefined;
      }, { timeoutMs: 5000 });
      expect(channels).toEqual({ [one]: { num_clients: 3 }, [two]: { num_clients: 1 } });
    }
    const only = await call<{ channels: Record<string, unknown> }>(portA, 'channels', { pattern: `${tag}-{t?o,x}` });
    expect(Object.keys(only.channels)).toEqual([two]);
    const all = await call<{ channels: Record<string, unknown> }>(portB, 'channels', {});
    expect(Object.keys(all.channels)).toEqual(expect.arrayContaining([one, two]));
    expect((await callError(portA, 'channels', { pattern: '[ab' })).code).toBe(107);

    subs[3]!.client.disconnect();
    await waitFor('a channel without subscribers to leave the list', async () => {
      const { channels } = await call<{ channels: Record<string, unknown> }>(portA, 'channels', { pattern: `${tag}-*` });
      return !(two in channels);
    }, { timeoutMs: 5000 });
    for (const s of subs) s.client.disconnect();
  });

  it('attack: a pattern that makes a regex backtrack answers at once, and the gateway stays up', async () => {
    const long = `${uniqueChannel('redos')}-${'a'.repeat(200)}`;
    const sub = await subscribed(wsUrl(portA), await token('r1'), long);
    await waitFor('the long channel to be listed', async () => {
      const { channels } = await call<{ channels: Record<string, unknown> }>(portA, 'channels', { pattern: `*${'a'.repeat(200)}` });
      return long in channels;
    }, { timeoutMs: 5000 });
    // Exponential for a backtracking matcher: it held the gateway's event loop for minutes.
    const hostile = `${'*a'.repeat(12)}*b`;
    const { channels } = await call<{ channels: Record<string, unknown> }>(portA, 'channels', { pattern: hostile });
    expect(long in channels).toBe(false);
    const health = await fetch(`http://127.0.0.1:${portA}/health`);
    expect(health.status).toBe(200);
    expect((await callError(portA, 'channels', { pattern: '*'.repeat(1025) })).code).toBe(107);
    for (const pattern of [123, ['*'], { a: 1 }, true]) expect((await callError(portA, 'channels', { pattern })).code).toBe(107);
    sub.client.disconnect();
  });

  it('info: every live gateway with its counts; a closed gateway leaves at once', async () => {
    const gwC = await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_NODE_NAME: 'gw-c' });
    const clients = await Promise.all([1, 2].map(async (n) => subscribed(wsUrl(gwC.port), await token(`i${n}`), uniqueChannel('info'))));
    const info = await waitFor('gw-c to report its two clients', async () => {
      const { nodes } = await call<Nodes>(portA, 'info', {});
      const c = nodes.find((n) => n.name === 'gw-c');
      return c?.num_clients === 2 ? nodes : undefined;
    }, { timeoutMs: 8000 });
    expect(info.map((n) => n.name)).toEqual(['gw-a', 'gw-b', 'gw-c']);
    const c = info.find((n) => n.name === 'gw-c')!;
    expect(c).toEqual({
      uid: expect.any(String),
      name: 'gw-c',
      version: expect.any(String),
      num_clients: 2,
      num_users: 2,
      num_channels: 2,
      num_subs: 2,
      uptime: expect.any(Number),
    });
    expect(new Set(info.map((n) => n.uid)).size).toBe(3);

    for (const s of clients) s.client.disconnect();
    await gwC.close();
    const after = await call<Nodes>(portA, 'info', {});
    expect(after.nodes.map((n) => n.name)).toEqual(['gw-a', 'gw-b']);
  });

  it('info: a gateway that dies leaves within the registry TTL', async () => {
    const child = await stack.spawn('gateway', { TIDINGS_API_KEY: API_KEY, TIDINGS_NODE_NAME: 'gw-doomed' });
    const names = async () => (await call<Nodes>(portA, 'info', {})).nodes.map((n) => n.name);
    expect(await names()).toContain('gw-doomed');
    await child.kill('SIGKILL');
    await waitFor('the killed gateway to leave info', async () => !(await names()).includes('gw-doomed'), {
      timeoutMs: REGISTRY_TIMING.ttlMs + 3000,
      intervalMs: 200,
    });
  });
});
