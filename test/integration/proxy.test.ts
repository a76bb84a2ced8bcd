/**
 * The app backend in the loop (issue 14): Centrifugo's connect, RPC, publish and subscribe
 * proxies against a small real HTTP backend, driven by the official SDK (and a raw client
 * where exact replies and close codes matter). The backend is trusted for its decisions,
 * not its behaviour: slow, broken, oversized or ill-formed answers are error 100, never a
 * yes, and the gateway goes on serving.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { API_KEY, call, callError, namespacesFile } from '../helpers/api.js';
import { connected, newClient, record } from '../helpers/client.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

type Answer = (req: Seen) => { status?: number; delayMs?: number; body: string } | Record<string, unknown>;

/** A backend whose answer per path the test sets; it records every request it gets. */
class Backend {
  readonly seen: Seen[] = [];
  answers = new Map<string, Answer>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const seen = { path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
        this.seen.push(seen);
        const answer = (this.answers.get(seen.path) ?? (() => ({ result: {} })))(seen);
        const raw = 'body' in answer && typeof answer.body === 'string' ? (answer as { status?: number; delayMs?: number; body: string }) : { body: JSON.stringify(answer) };
        setTimeout(() => {
          res.writeHead(raw.status ?? 200, { 'content-type': 'application/json' });
          res.end(raw.body);
        }, raw.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  last(path: string): Seen | undefined {
    return this.seen.filter((s) => s.path === path).at(-1);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A `ws` WebSocket that sends these headers on its upgrade, as a browser sends its cookies. */
function withHeaders(headers: Record<string, string>) {
  return class extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  };
}

describe('proxies to the app backend', () => {
  const backend = new Backend();
  const stack = new TestStack();
  let url = '';
  let port = 0;

  beforeAll(async () => {
    await backend.start();
    const config = await namespacesFile({
      namespaces: {
        moderated: { proxy_publish: true, client_edits: 'own' },
        gated: { proxy_subscribe: true },
        renewed: { proxy_subscribe: true, proxy_sub_refresh: true },
        news: {},
      },
    });
    const env = {
      TIDINGS_CONFIG: config,
      TIDINGS_PROXY_CONNECT_URL: `${backend.url}/connect`,
      TIDINGS_PROXY_RPC_URL: `${backend.url}/rpc`,
      TIDINGS_PROXY_PUBLISH_URL: `${backend.url}/publish`,
      TIDINGS_PROXY_SUBSCRIBE_URL: `${backend.url}/subscribe`,
      TIDINGS_PROXY_REFRESH_URL: `${backend.url}/refresh`,
      TIDINGS_PROXY_SUB_REFRESH_URL: `${backend.url}/sub_refresh`,
      TIDINGS_PROXY_HTTP_HEADERS: 'Cookie, Authorization',
      TIDINGS_PROXY_TIMEOUT_MS: '300',
      TIDINGS_PROXY_MAX_RESPONSE_BYTES: '4096',
    };
    port = (await stack.gateway({ ...env, TIDINGS_API_KEY: API_KEY })).port;
    url = wsUrl(port);
    await stack.worker({ TIDINGS_CONFIG: config });
  });
  afterAll(async () => {
    await stack.close();
    await backend.stop();
  });
  beforeEach(() => {
    backend.answers.clear();
  });

  it('connect without a token: the backend names the user from the forwarded cookie, and only allowed headers go', async () => {
    backend.answers.set('/connect', (req) => ({
      result: {
        user: String(req.headers.cookie).replace('session=', ''),
        info: { name: 'Alice' },
        data: { welcome: 1 },
        channels: ['news:alice'],
      },
    }));
    const client = newClient(url, '', { websocket: withHeaders({ cookie: 'session=alice', 'x-internal': 'secret' }) });
    const connectedCtx = new Promise<{ client: string; data?: unknown }>((resolve) => client.on('connected', resolve));
    const serverSub = new Promise<{ channel: string }>((resolve) => client.on('subscribed', resolve));
    client.connect();
    const ctx = await connectedCtx;
    expect(ctx.data).toEqual({ welcome: 1 });
    expect((await serverSub).channel).toBe('news:alice');
    const seen = backend.last('/connect')!;
    expect(seen.headers.cookie).toBe('session=alice');
    expect(seen.headers['x-internal']).toBeUndefined();
    expect(seen.body).toMatchObject({ client: ctx.client, transport: 'websocket', protocol: 'json', encoding: 'json' });
    client.disconnect();
  });

  it("connect: the backend's error reaches the client as its reply, its disconnect as the close code", async () => {
    backend.answers.set('/connect', () => ({ error: { code: 1000, message: 'no session' } }));
    const raw = await RawClient.open(url);
    expect((await raw.call('connect', {})).error).toEqual({ code: 1000, message: 'no session' });
    raw.close();

    backend.answers.set('/connect', () => ({ disconnect: { code: 4501, reason: 'banned' } }));
    const banned = await RawClient.open(url);
    banned.command('connect', {});
    expect(await banned.closed()).toEqual({ code: 4501, reason: 'banned' });
  });

  it('a slow, failing, oversized or ill-formed backend answer is error 100 (temporary), never a yes; the gateway serves on', async () => {
    const broken: Answer[] = [
      () => ({ status: 200, delayMs: 800, body: JSON.stringify({ result: { user: 'late' } }) }),
      () => ({ status: 500, body: JSON.stringify({ result: { user: 'x' } }) }),
      () => ({ status: 200, body: 'not json' }),
      () => ({ status: 200, body: JSON.stringify({ result: { user: 'x', pad: 'y'.repeat(10_000) } }) }),
      () => ({ error: { code: 5, message: 'a code of the server' } }),
      () => ({ error: { code: 'x' } }),
      () => ({ disconnect: { code: 3000, reason: 'server range' } }),
      () => ({ result: { user: 42 } }),
      () => ({ result: { user: 'a\u0000b' } }),
      () => ({ result: { user: 'x', expire_at: 1 } }),
      () => ({ result: { user: 'x', channels: 'news:x' } }),
      () => ({ result: {} }),
    ];
    for (const answer of broken) {
      backend.answers.set('/connect', answer);
      const raw = await RawClient.open(url);
      const reply = await raw.call('connect', {});
      expect(reply.error, JSON.stringify(answer({} as Seen))).toEqual({ code: 100, message: 'internal server error', temporary: true });
      raw.close();
    }
    backend.answers.set('/connect', () => ({ result: { user: 'fine' } }));
    const raw = await RawClient.open(url);
    expect((await raw.call('connect', {})).connect).toBeDefined();
    raw.close();
  });

  it('rpc reaches the backend with the user, answers its data or its error; tidings.* methods are never forwarded', async () => {
    backend.answers.set('/rpc', (req) => {
      const body = req.body as { method: string; user: string; data: { id: number } };
      if (body.method === 'fail') return { error: { code: 1403, message: 'forbidden' } };
      return { result: { data: { id: body.data.id, by: body.user } } };
    });
    const client = await connected(url, await token('bob'));
    expect(await client.rpc('getItem', { id: 7 })).toEqual({ data: { id: 7, by: 'bob' } });
    await expect(client.rpc('fail', {})).rejects.toMatchObject({ code: 1403, message: 'forbidden' });
    // Tidings' own methods are answered here (a read cursor without a channel: 107), never forwarded.
    const before = backend.seen.length;
    await expect(client.rpc('tidings.read', {})).rejects.toMatchObject({ code: 107 });
    await expect(client.rpc('tidings.nothing', {})).rejects.toMatchObject({ code: 104 });
    expect(backend.seen.length).toBe(before);
    client.disconnect();

    // The server API's rpc reaches the same backend, without a connection.
    expect(await call(port, 'rpc', { method: 'getItem', params: { id: 9 } })).toEqual({ data: { id: 9, by: '' } });
    expect(backend.last('/rpc')!.body).not.toHaveProperty('client');
    expect(await callError(port, 'rpc', { method: 'fail' })).toEqual({ code: 1403, message: 'forbidden' });
    expect((await callError(port, 'rpc', { method: 'tidings.unread' })).code).toBe(108);
  });

  it('publish proxy: the backend rejects or rewrites each publish, in the order sent; the reply still comes after the commit', async () => {
    backend.answers.set('/publish', (req) => {
      const data = req.body.data as { text: string };
      if (data.text.includes('bad')) return { error: { code: 1001, message: 'rejected by moderation' } };
      return { result: { data: { text: data.text.toUpperCase() } } };
    });
    const channel = `moderated:${Date.now()}`;
    const client = await connected(url, await token('carol'));
    const rec = record(client, channel);
    rec.sub.subscribe();
    await rec.sub.ready(5000);
    const texts = ['one', 'bad two', 'three', 'four', 'bad five', 'six'];
    const outcomes = await Promise.all(texts.map((text) => rec.sub.publish({ text }).then(() => 'ok', (e: { code: number }) => e.code)));
    expect(outcomes).toEqual(['ok', 1001, 'ok', 'ok', 1001, 'ok']);
    await waitFor('four publications', () => rec.received.length === 4);
    expect(rec.received.map((r) => r.data)).toEqual([{ text: 'ONE' }, { text: 'THREE' }, { text: 'FOUR' }, { text: 'SIX' }]);
    expect(rec.offsets()).toEqual([1, 2, 3, 4]);
    const history = await rec.sub.history({ limit: 10 });
    expect(history.publications.map((p) => p.data)).toEqual(rec.received.map((r) => r.data));
    expect(backend.seen.filter((s) => s.path === '/publish').map((s) => (s.body.data as { text: string }).text)).toEqual(texts);

    // A client edit is a publish too: the backend rejects or rewrites its new data the same way.
    await expect(client.rpc('tidings.edit', { channel, offset: 1, data: { text: 'bad edit' } })).rejects.toMatchObject({ code: 1001 });
    expect(await client.rpc('tidings.edit', { channel, offset: 1, data: { text: 'one, edited' } })).toEqual({
      data: { offset: 5, epoch: expect.any(String) },
    });
    await waitFor('the edit, live', () => rec.received.length === 5);
    expect(rec.received[4]!.data).toEqual({ text: 'ONE, EDITED' });
    client.disconnect();
  });

  it('subscribe proxy: the backend lets a subscription in with its info and data, or keeps it out', async () => {
    backend.answers.set('/subscribe', (req) =>
      req.body.channel === 'gated:open'
        ? { result: { info: { role: 'reader' }, data: { motd: 'hi' } } }
        : { error: { code: 1403, message: 'not for you' } },
    );
    const client = await connected(url, await token('dan'));
    const open = client.newSubscription('gated:open');
    const subscribedCtx = new Promise<{ data?: unknown }>((resolve) => open.on('subscribed', resolve));
    open.subscribe();
    expect((await subscribedCtx).data).toEqual({ motd: 'hi' });
    expect(backend.last('/subscribe')!.body).toMatchObject({ channel: 'gated:open', user: 'dan' });
    const presence = await open.presence();
    expect(Object.values(presence.clients)[0]).toMatchObject({ user: 'dan', chanInfo: { role: 'reader' } });

    // A non-temporary subscribe error leaves the SDK's subscription unsubscribed with its code.
    const closed = client.newSubscription('gated:closed');
    const refused = new Promise<{ code: number; reason: string }>((resolve) => closed.on('unsubscribed', resolve));
    closed.subscribe();
    expect(await refused).toMatchObject({ code: 1403, reason: 'not for you' });
    client.disconnect();
  });

  it('refresh proxy: the server renews an expiring connection itself, keeps it while the backend fails, and closes it (3005) when told it expired', async () => {
    const soon = () => Math.floor(Date.now() / 1000) + 2;
    backend.answers.set('/connect', () => ({ result: { user: 'erin', expire_at: soon() } }));
    const answers: Answer[] = [() => ({ result: { expire_at: soon() } }), () => ({ status: 500, body: '{}' }), () => ({ result: { expired: true } })];
    backend.answers.set('/refresh', (req) => (answers.shift() ?? (() => ({ result: { expired: true } })))(req));
    const raw = await RawClient.open(url);
    const reply = await raw.call('connect', {});
    // The client is not asked to refresh: no `expires` in the reply.
    expect(reply.connect).not.toHaveProperty('expires');
    expect(await raw.closed(20_000)).toEqual({ code: 3005, reason: 'connection expired' });
    const calls = backend.seen.filter((s) => s.path === '/refresh');
    expect(calls).toHaveLength(3);
    expect(calls[0]!.body).toMatchObject({ user: 'erin', client: (reply.connect as { client: string }).client });
  }, 30_000);

  it('sub_refresh proxy: the server renews an expiring subscription, and when told it expired the client resubscribes (2501)', async () => {
    const soon = () => Math.floor(Date.now() / 1000) + 2;
    backend.answers.set('/subscribe', () => ({ result: { expire_at: soon() } }));
    const answers: Answer[] = [() => ({ result: { expire_at: soon() } }), () => ({ result: { expired: true } })];
    backend.answers.set('/sub_refresh', (req) => (answers.shift() ?? (() => ({ result: { expire_at: soon() + 60 } })))(req));
    const client = await connected(url, await token('fay'));
    const channel = `renewed:${Date.now()}`;
    const sub = client.newSubscription(channel);
    let subscribedTimes = 0;
    sub.on('subscribed', () => (subscribedTimes += 1));
    sub.subscribe();
    await waitFor('a second subscribe after the subscription expired', () => subscribedTimes === 2, { timeoutMs: 15_000 });
    const refreshes = backend.seen.filter((s) => s.path === '/sub_refresh');
    expect(refreshes.length).toBeGreaterThanOrEqual(2);
    expect(refreshes[0]!.body).toMatchObject({ user: 'fay', channel });
    expect(backend.seen.filter((s) => s.path === '/subscribe' && s.body.channel === channel)).toHaveLength(2);
    client.disconnect();
  }, 30_000);

  it('TIDINGS_PROXY_CONNECT_WITH_TOKEN: a connect with a token goes to the backend too, token forwarded and not verified here', async () => {
    const withToken = wsUrl((await stack.gateway({ TIDINGS_PROXY_CONNECT_URL: `${backend.url}/connect`, TIDINGS_PROXY_CONNECT_WITH_TOKEN: 'true' })).port);
    backend.answers.set('/connect', (req) =>
      req.body.token === 'opaque-session-token' ? { result: { user: 'tokened' } } : { error: { code: 1401, message: 'bad token' } },
    );
    const client = newClient(withToken, 'opaque-session-token');
    const connectedCtx = new Promise<{ client: string }>((resolve) => client.on('connected', resolve));
    client.connect();
    await connectedCtx;
    expect(backend.last('/connect')!.body).toMatchObject({ token: 'opaque-session-token' });
    client.disconnect();
    const raw = await RawClient.open(withToken);
    expect((await raw.call('connect', { token: 'something else' })).error).toEqual({ code: 1401, message: 'bad token' });
    raw.close();
  });
});
