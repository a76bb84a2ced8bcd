/**
 * Regression tests for the access holes of issue 9, one per attack, over raw sockets (the
 * SDK never sends an empty token, so it cannot express them) and the real HTTP API:
 *
 *  - a private channel opened with `token: ""`, then read and written through;
 *  - tokens that are empty, missing, oversized or malformed, in every command that takes one;
 *  - publish / history / presence on a channel the connection may not subscribe to;
 *  - a connection token whose `channels` claim smuggles bad names, unknown namespaces or
 *    more channels than the per-connection limit, or whose `sub` PostgreSQL cannot store;
 *  - a channel named `__proto__` vanishing from the API's `channels` answer;
 *  - an empty `client` in the API's user commands reaching every connection of the user;
 *  - empty, oversized and malformed API keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, API_KEY, call, namespacesFile, request } from '../helpers/api.js';
import { RawClient, type Message } from '../helpers/raw.js';
import { SECRET, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { signToken } from '../../src/auth/jwt.js';

/** The per-connection channel limit of this file's gateway: small, so a claim can exceed it. */
const LIMIT = 4;

function errorCode(reply: Message): number | undefined {
  return (reply.error as { code?: number } | undefined)?.code;
}

function subToken(
  user: string,
  channel: string,
  extra: { secret?: string; client?: string } = {},
): Promise<string> {
  return signToken({
    user,
    channel,
    secret: extra.secret ?? SECRET,
    ttlSeconds: 600,
    ...(extra.client ? { client: extra.client } : {}),
  });
}

describe('access attacks (issue 9)', () => {
  const stack = new TestStack();
  let url = '';
  let port = 0;

  beforeAll(async () => {
    const config = await namespacesFile({ namespaces: { secret: { private: true }, room: {} } });
    const gateway = await stack.gateway({
      TIDINGS_API_KEY: API_KEY,
      TIDINGS_CONFIG: config,
      TIDINGS_CHANNELS_PER_CONNECTION: String(LIMIT),
    });
    await stack.worker();
    port = gateway.port;
    url = wsUrl(port);
  });
  afterAll(() => stack.close());

  async function connectedRaw(user: string, claims: { channels?: string[] } = {}): Promise<RawClient> {
    const raw = await RawClient.open(url);
    await raw.connect(await token(user, claims));
    return raw;
  }

  /** The codes publish, history, presence and presence_stats answer on `channel`. */
  async function readCodes(raw: RawClient, channel: string): Promise<(number | undefined)[]> {
    return [
      errorCode(await raw.call('publish', { channel, data: { stolen: true } })),
      errorCode(await raw.call('history', { channel, limit: -1 })),
      errorCode(await raw.call('presence', { channel })),
      errorCode(await raw.call('presence_stats', { channel })),
    ];
  }

  it('attack: an empty subscription token opens a private channel ($name or private namespace): refused 103, and nothing can be read or written', async () => {
    const raw = await connectedRaw('u1');
    for (const channel of [`$${uniqueChannel('secret-room')}`, `secret:${uniqueChannel()}`]) {
      for (const body of [{ channel, token: '' }, { channel }]) {
        const reply = await raw.call('subscribe', body);
        expect(errorCode(reply), `subscribe ${JSON.stringify(body)}`).toBe(103);
      }
      expect(await readCodes(raw, channel), `reads of ${channel}`).toEqual([103, 103, 103, 103]);
    }
    expect(raw.closeEvent).toBeUndefined();
    raw.close();
    // A token that is not a string at all breaks the protocol: the codec closes (3501).
    for (const bad of [null, 42, {}]) {
      const typed = await connectedRaw('u1');
      typed.command('subscribe', { channel: `$${uniqueChannel('secret-room')}`, token: bad });
      expect((await typed.closed()).code, `token ${JSON.stringify(bad)}`).toBe(3501);
    }
  });

  it('attack: malformed, oversized or forged subscription tokens are always verified and refused', async () => {
    const raw = await connectedRaw('u1');
    const channel = `$${uniqueChannel('secret-room')}`;
    const forged = await subToken('u1', channel, { secret: 'another-secret-0123456789abcdef-0123456789' });
    for (const bad of ['not-a-jwt', 'a.b.c', 'x'.repeat(30_000), forged]) {
      expect(errorCode(await raw.call('subscribe', { channel, token: bad })), bad.slice(0, 20)).toBe(103);
    }
    // A given token is verified on a channel that needs none too…
    const open = uniqueChannel('open');
    expect(errorCode(await raw.call('subscribe', { channel: open, token: 'not-a-jwt' }))).toBe(103);
    // …and an empty one there is no token at all (as in Centrifugo).
    expect((await raw.call('subscribe', { channel: open, token: '' })).subscribe).toBeDefined();
    expect(await readCodes(raw, channel)).toEqual([103, 103, 103, 103]);

    // A verified token opens the channel, and then it can be read and written.
    const reply = await raw.call('subscribe', { channel, token: await subToken('u1', channel) });
    expect(reply.subscribe).toBeDefined();
    expect(await readCodes(raw, channel)).toEqual([undefined, undefined, undefined, undefined]);

    // A valid token for another channel is a forgery: the connection is closed (3500).
    const other = await connectedRaw('u1');
    other.command('subscribe', {
      channel: `$${uniqueChannel('secret-room')}`,
      token: await subToken('u1', channel),
    });
    expect((await other.closed()).code).toBe(3500);
    raw.close();
  });

  it('attack: connect, refresh and sub_refresh with an empty, missing, oversized or malformed token', async () => {
    const connectCases: [unknown, number][] = [
      [{ token: '' }, 3501],
      [{}, 3501],
      [{ token: null }, 3501],
      [{ token: 'x'.repeat(30_000) }, 3500],
      [{ token: 'a.b.c' }, 3500],
      [{ token: 42 }, 3501],
      [{ token: await subToken('u1', 'news') }, 3500], // a subscription token is no connection token
    ];
    for (const [body, code] of connectCases) {
      const raw = await RawClient.open(url);
      raw.command('connect', body);
      expect((await raw.closed()).code, `connect ${JSON.stringify(body).slice(0, 40)}`).toBe(code);
    }

    for (const [body, code] of [
      [{ token: '' }, 3501],
      [{}, 3501],
      [{ token: 'x'.repeat(30_000) }, 3500],
      [{ token: 'a.b.c' }, 3500],
    ] as const) {
      const raw = await connectedRaw('u1');
      raw.command('refresh', body);
      expect((await raw.closed()).code, `refresh ${JSON.stringify(body).slice(0, 40)}`).toBe(code);
    }

    const raw = await connectedRaw('u1');
    const channel = `secret:${uniqueChannel()}`;
    expect(
      (await raw.call('subscribe', { channel, token: await subToken('u1', channel) })).subscribe,
    ).toBeDefined();
    for (const [body, code] of [
      [{ token: '' }, 107],
      [{ token: 'x'.repeat(30_000) }, 103],
      [{ token: 'a.b.c' }, 103],
    ] as const) {
      expect(
        errorCode(await raw.call('sub_refresh', { channel, ...body })),
        `sub_refresh ${JSON.stringify(body).slice(0, 40)}`,
      ).toBe(code);
    }
    expect(raw.closeEvent).toBeUndefined();
    // No token field at all breaks the protocol (the codec requires it): 3501.
    raw.command('sub_refresh', { channel });
    expect((await raw.closed()).code).toBe(3501);
  });

  it('attack: a connection token whose sub PostgreSQL cannot store (NUL, lone surrogate, over 255 bytes) is refused (3500)', async () => {
    for (const user of ['a\u0000b', 'x\ud800', '\udc00', 'u'.repeat(256)]) {
      const raw = await RawClient.open(url);
      raw.command('connect', { token: await signToken({ user, secret: SECRET, ttlSeconds: 600 }) });
      expect((await raw.closed()).code, `sub ${JSON.stringify(user).slice(0, 20)}`).toBe(3500);
    }
  });

  it("attack: publish, history and presence on another user's #channel, or on a private channel without subscribing, are refused (103)", async () => {
    const me = `u7-${uniqueChannel('user')}`;
    const raw = await connectedRaw(me);
    const theirs = `${uniqueChannel('room')}#42`;
    expect(await readCodes(raw, theirs), 'user-limited').toEqual([103, 103, 103, 103]);
    expect(await readCodes(raw, `$${uniqueChannel('secret-room')}`), '$private').toEqual([
      103, 103, 103, 103,
    ]);
    expect(await readCodes(raw, `secret:${uniqueChannel()}`), 'private namespace').toEqual([
      103, 103, 103, 103,
    ]);

    // Even a subscription the backend made (API subscribe) gives no more than the channel's
    // name allows: `#42` is for user 42 only.
    await call(port, 'subscribe', { channel: theirs, user: me });
    await raw.until('the server-side subscribe push', () =>
      raw.messages.find((m) => (m.push as { channel?: string } | undefined)?.channel === theirs),
    );
    expect(await readCodes(raw, theirs), 'user-limited, server-side subscribed').toEqual([
      103, 103, 103, 103,
    ]);

    // An anonymous connection reads nothing where the namespace keeps anonymous users out.
    const anonymous = await RawClient.open(url);
    await anonymous.connect(await signToken({ user: '', secret: SECRET, ttlSeconds: 600 }));
    expect(await readCodes(anonymous, uniqueChannel('room')), 'anonymous').toEqual([103, 103, 103, 103]);
    raw.close();
    anonymous.close();
  });

  it('attack: the token channels claim smuggles invalid names, unknown namespaces or more channels than the limit (3500)', async () => {
    const many = Array.from({ length: LIMIT + 1 }, () => uniqueChannel('feed'));
    const claims = [
      [''],
      ['bad name'],
      ['x\ud800'],
      ['tab\there'],
      ['nope:x'],
      many,
      [uniqueChannel('feed'), 'c'.repeat(256)],
    ];
    for (const channels of claims) {
      const raw = await RawClient.open(url);
      raw.command('connect', { token: await token('u1', { channels }) });
      expect((await raw.closed()).code, `claim ${JSON.stringify(channels).slice(0, 60)}`).toBe(3500);
    }

    // Up to the limit (duplicates count once), private channels included: the backend signed
    // the claim, so they open without a subscription token, and can then be read.
    const secret = `$${uniqueChannel('secret-room')}`;
    const allowed = [secret, `secret:${uniqueChannel()}`, uniqueChannel('feed'), uniqueChannel('feed')];
    const raw = await RawClient.open(url);
    const reply = await raw.connect(await token('u1', { channels: [...allowed, secret] }));
    expect(Object.keys((reply.connect as { subs: object }).subs).sort()).toEqual([...allowed].sort());
    expect(await readCodes(raw, secret)).toEqual([undefined, undefined, undefined, undefined]);
    raw.close();
  });

  it('attack: channels named __proto__, constructor or toString vanish from the API channels answer', async () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
    const raw = await connectedRaw('u1');
    for (const channel of names)
      expect((await raw.call('subscribe', { channel })).subscribe, channel).toBeDefined();

    const all = await call<{ channels: Record<string, { num_clients: number }> }>(port, 'channels', {});
    for (const channel of names) {
      expect(Object.hasOwn(all.channels, channel), `${channel} listed`).toBe(true);
      expect(all.channels[channel]!.num_clients).toBeGreaterThanOrEqual(1);
    }
    const matched = await api(port, 'channels', { pattern: '__proto__' });
    expect(matched.text).toContain('"__proto__":{"num_clients":');
    raw.close();
  });

  it('attack: an empty, oversized or malformed user or client in API subscribe, unsubscribe and disconnect reaches every connection', async () => {
    const user = `victim-${uniqueChannel('user')}`;
    const channel = uniqueChannel('feed');
    const [a, b] = [await connectedRaw(user), await connectedRaw(user)];
    for (const raw of [a, b]) expect((await raw.call('subscribe', { channel })).subscribe).toBeDefined();
    const bad: Record<string, unknown>[] = [
      { user, client: '' },
      { user, client: 'c'.repeat(256) },
      { user, client: 'a\u0000b' },
      { user, client: 42 },
      { user: '' },
      {},
      { user: 'u'.repeat(256) },
      { user: 'x\ud800' },
      { user: 7 },
    ];
    for (const method of ['subscribe', 'unsubscribe', 'disconnect']) {
      for (const target of bad) {
        const params = method === 'disconnect' ? target : { channel: uniqueChannel('feed'), ...target };
        const res = await api(port, method, params);
        expect(res.body, `${method} ${JSON.stringify(target).slice(0, 40)}`).toEqual({
          error: { code: 107, message: 'bad request' },
        });
      }
    }
    // The API applies a command here before it answers: nothing reached either connection.
    for (const raw of [a, b]) {
      expect(raw.closeEvent).toBeUndefined();
      expect(raw.messages.filter((m) => m.push !== undefined)).toEqual([]);
    }

    // A real client id reaches that connection only.
    const clientA = (a.messages.find((m) => m.connect)!.connect as { client: string }).client;
    await call(port, 'disconnect', { user, client: clientA });
    expect((await a.closed()).code).toBe(3503);
    expect(b.closeEvent).toBeUndefined();
    b.close();
  });

  it('attack: empty, oversized or malformed API keys are refused (401)', async () => {
    const attempts: [string, Record<string, string>][] = [
      ['empty X-API-Key', { 'x-api-key': '' }],
      ['empty apikey', { authorization: 'apikey ' }],
      ['bare apikey scheme', { authorization: 'apikey' }],
      ['oversized key', { 'x-api-key': `${API_KEY}${'k'.repeat(8000)}` }],
      ['key with a latin-1 suffix', { 'x-api-key': `${API_KEY}\u00e9` }],
      ['key with a space inside', { 'x-api-key': `${API_KEY.slice(0, 10)} ${API_KEY.slice(10)}` }],
      ['key prefix', { 'x-api-key': API_KEY.slice(0, 16) }],
      ['empty X-API-Key, empty apikey', { 'x-api-key': '', authorization: 'apikey ' }],
    ];
    for (const [what, headers] of attempts) {
      const res = await api(port, 'info', {}, { auth: 'none', headers });
      expect({ what, status: res.status, text: res.text }).toEqual({ what, status: 401, text: '' });
    }
    // The key twice (joined "KEY, KEY" by the HTTP stack) is not the key.
    const twice = new Headers({ 'content-type': 'application/json' });
    twice.append('x-api-key', API_KEY);
    twice.append('x-api-key', API_KEY);
    const res = await fetch(`http://127.0.0.1:${port}/api/info`, {
      method: 'POST',
      headers: twice,
      body: '{}',
    });
    expect(res.status).toBe(401);
    // An empty X-API-Key is no key at all, so Authorization is read (as Centrifugo does).
    const fallback = await api(
      port,
      'info',
      {},
      { auth: 'none', headers: { 'x-api-key': '', authorization: `apikey ${API_KEY}` } },
    );
    expect(fallback.status).toBe(200);
    expect(
      (
        await request(
          port,
          '/api',
          {},
          { auth: 'none', headers: { 'x-api-key': '' }, raw: '{"method":"info"}' },
        )
      ).status,
    ).toBe(401);
  });
});
