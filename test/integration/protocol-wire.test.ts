/**
 * The client protocol at the wire (PROTOCOL.md A, B connect, E): framing of batches, text
 * frames of compact JSON, protocol violations and token failures with their close codes,
 * the size limit and the stale timer. Raw sockets for what the SDK never sends; the real
 * centrifuge SDK where its reaction is the point (109 → getToken → reconnect).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { signToken } from '../../src/auth/jwt.js';
import { newClient } from '../helpers/client.js';
import { RawClient, type Message } from '../helpers/raw.js';
import { SECRET, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A connect command that did not close the socket got a success reply: the gateway still serves. */
async function expectServes(url: string): Promise<void> {
  const raw = await RawClient.open(url);
  await raw.connect(await token('still-up'));
  raw.close();
}

describe('client protocol: the wire', () => {
  const stack = new TestStack();
  let gateway: RunningGateway;
  let url: string;

  beforeAll(async () => {
    gateway = await stack.gateway();
    await stack.worker();
    url = wsUrl(gateway.port);
  });
  afterAll(() => stack.close());

  describe('framing', () => {
    it('runs connect and subscribe sent in one frame, in order, and answers with compact JSON text frames', async () => {
      const raw = await RawClient.open(url);
      const channel = uniqueChannel('batch');
      raw.send(
        `{"connect":{"token":"${await token()}","name":"js"},"id":1}\n{"subscribe":{"channel":"${channel}","flag":1},"id":2}`,
      );
      const first = await raw.next('connect reply');
      const second = await raw.next('subscribe reply');
      expect(first.id).toBe(1);
      expect(first.connect).toMatchObject({ client: expect.any(String), version: expect.any(String) });
      expect(second.id).toBe(2);
      expect(second.subscribe).toMatchObject({ recoverable: true, positioned: true });
      expect(second.error).toBeUndefined();

      raw.send(JSON.stringify({ id: 3, publish: { channel, data: { text: 'line one\nline two', n: 1 } } }));
      const pub = await raw.reply(3);
      expect(pub).toEqual({ id: 3, publish: {} });
      const push = await waitFor('the publication pushed to the subscriber', () =>
        raw.messages.find((m) => (m.push as Message | undefined)?.channel === channel),
      );
      expect((push.push as { pub: { data: unknown } }).pub.data).toEqual({
        text: 'line one\nline two',
        n: 1,
      });

      expect(raw.frames.length).toBeGreaterThan(0);
      for (const frame of raw.frames) {
        expect(frame.isBinary).toBe(false);
        for (const line of frame.text.split('\n')) {
          // Compact: re-serialising the parsed message gives the same bytes (no spaces, no pretty-printing).
          expect(JSON.stringify(JSON.parse(line))).toBe(line);
        }
      }
      raw.close();
    });

    it('echoes ids, whatever their size, and accepts ids that do not start at 1', async () => {
      const raw = await RawClient.open(url);
      raw.send(JSON.stringify({ id: 9007199254740991, connect: { token: await token() } }));
      expect((await raw.next('connect reply')).id).toBe(9007199254740991);
      raw.send(JSON.stringify({ id: 42, history: { channel: uniqueChannel('ids') } }));
      const reply = await raw.next('history reply');
      expect(reply.id).toBe(42);
      expect(reply.history).toMatchObject({ publications: [], offset: 0 });
      raw.close();
    });

    it('skips blank lines in a frame', async () => {
      const raw = await RawClient.open(url);
      raw.send(
        `\n{"connect":{"token":"${await token()}"},"id":1}\n\n{"history":{"channel":"blank:lines"},"id":2}\n`,
      );
      expect((await raw.next('connect reply')).id).toBe(1);
      expect((await raw.next('history reply')).id).toBe(2);
      raw.close();
    });
  });

  describe('protocol violations close with 3501 and a reason', () => {
    const cases: [string, (raw: RawClient) => Promise<void>][] = [
      ['a command before connect', async (raw) => void raw.command('history', { channel: 'x' })],
      ['a publish before connect', async (raw) => void raw.command('publish', { channel: 'x', data: {} })],
      ['a send before connect', async (raw) => raw.send('{"send":{"data":{}}}')],
      [
        'a second connect',
        async (raw) => {
          await raw.connect(await token());
          raw.command('connect', { token: await token() });
        },
      ],
      ['a malformed JSON line', async (raw) => raw.send('{"connect":{"token":')],
      [
        'a malformed line after a good connect',
        async (raw) => {
          await raw.connect(await token());
          raw.send('{"history":{"channel":"x"},"id":2}\nnot json');
        },
      ],
      ['a JSON value that is not an object', async (raw) => raw.send('[1,2,3]')],
      ['an unknown method', async (raw) => raw.send('{"id":1,"frobnicate":{}}')],
      [
        'two methods in one command',
        async (raw) => raw.send(`{"id":1,"connect":{"token":"${await token()}"},"history":{"channel":"x"}}`),
      ],
      ['a negative id', async (raw) => raw.send(`{"id":-1,"connect":{"token":"${await token()}"}}`)],
      ['a connect without id', async (raw) => raw.send(`{"connect":{"token":"${await token()}"}}`)],
      [
        'a command without id after connect',
        async (raw) => {
          await raw.connect(await token());
          raw.send('{"history":{"channel":"x"}}');
        },
      ],
      [
        'an id 0 command after connect',
        async (raw) => {
          await raw.connect(await token());
          raw.send('{"id":0,"publish":{"channel":"x","data":1}}');
        },
      ],
      ['a connect whose token is not a string', async (raw) => raw.send('{"id":1,"connect":{"token":42}}')],
      [
        'invalid UTF-8 in a text frame',
        async (raw) => raw.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false }),
      ],
      [
        'invalid UTF-8 in a binary frame',
        async (raw) => raw.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: true }),
      ],
      ['a connect without token', async (raw) => void raw.command('connect', {})],
      ['a connect with an empty token', async (raw) => void raw.command('connect', { token: '' })],
    ];

    for (const [name, act] of cases) {
      it(`${name} → 3501`, async () => {
        const raw = await RawClient.open(url);
        await act(raw);
        const close = await raw.closed();
        expect(close.code).toBe(3501);
        expect(close.reason).not.toBe('');
        await expectServes(url);
      });
    }

    it('a connect that failed (109) leaves the socket unusable: a further connect → 3501', async () => {
      const raw = await RawClient.open(url);
      const failed = await raw.call('connect', { token: await token('u1', { ttlSeconds: -60 }) });
      expect(failed.error).toMatchObject({ code: 109 });
      raw.command('connect', { token: await token() });
      const close = await raw.closed();
      expect(close.code).toBe(3501);
      expect(close.reason).not.toBe('');
    });
  });

  describe('connection tokens', () => {
    const invalid: [string, () => Promise<string>][] = [
      [
        'signed with another secret',
        () => signToken({ user: 'u1', secret: 'another-secret-0123456789', ttlSeconds: 60 }),
      ],
      [
        'with alg none',
        async () =>
          `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u1', exp: Math.floor(Date.now() / 1000) + 60 })}.`,
      ],
      [
        'with alg none and the signature of a valid token',
        async () => {
          const [, , signature] = (await token('u1')).split('.');
          return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'admin' })}.${signature}`;
        },
      ],
      ['that is garbage', async () => 'garbage'],
      ['with three garbage parts', async () => 'a.b.c'],
      [
        'with a channel claim',
        () => signToken({ user: 'u1', secret: SECRET, channel: 'room', ttlSeconds: 60 }),
      ],
    ];

    for (const [name, make] of invalid) {
      it(`a token ${name} → close 3500 "invalid token"`, async () => {
        const raw = await RawClient.open(url);
        raw.command('connect', { token: await make() });
        const close = await raw.closed();
        expect(close).toEqual({ code: 3500, reason: 'invalid token' });
        expect(raw.messages).toEqual([]);
        await expectServes(url);
      });
    }

    it('an expired token → error reply 109, socket left open', async () => {
      const raw = await RawClient.open(url);
      const reply = await raw.call('connect', { token: await token('u1', { ttlSeconds: -5 }) });
      expect(reply).toEqual({ id: 1, error: { code: 109, message: 'token expired' } });
      expect(raw.closeEvent).toBeUndefined();
      raw.close();
    });

    it('a token with exp reports expires and ttl in the connect reply', async () => {
      const raw = await RawClient.open(url);
      const reply = await raw.connect(await token('u1', { ttlSeconds: 600 }));
      const result = reply.connect as { expires?: boolean; ttl?: number };
      expect(result.expires).toBe(true);
      expect(result.ttl).toBeGreaterThan(590);
      expect(result.ttl).toBeLessThanOrEqual(600);
      raw.close();
    });

    it('the SDK given an expired token calls getToken and connects with the fresh one', async () => {
      let calls = 0;
      const errors: number[] = [];
      const client = newClient(url, await token('sdk', { ttlSeconds: -5 }), {
        getToken: async () => {
          calls++;
          return token('sdk', { ttlSeconds: 600 });
        },
      });
      client.on('error', (ctx) => errors.push(ctx.error.code));
      client.connect();
      await client.ready(10_000);
      expect(calls).toBe(1);
      expect(errors).toContain(109);
      expect(client.state).toBe('connected');
      client.disconnect();
    });

    it('the SDK given an invalid token ends disconnected with 3500, without reconnecting', async () => {
      const client = newClient(url, 'garbage');
      const disconnected = new Promise<{ code: number; reason: string }>((resolve) =>
        client.on('disconnected', resolve),
      );
      let connecting = 0;
      client.on('connecting', () => connecting++);
      client.connect();
      const ctx = await Promise.race([
        disconnected,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('SDK never reached disconnected')), 5000),
        ),
      ]);
      expect(ctx).toEqual({ code: 3500, reason: 'invalid token' });
      expect(connecting).toBe(1); // only the first, from connect()
    });
  });

  describe('limits and timers', () => {
    it('closes with 1009 a frame larger than TIDINGS_MAX_MESSAGE_BYTES, and still serves', async () => {
      const small = await stack.gateway({ TIDINGS_MAX_MESSAGE_BYTES: '4096' });
      const smallUrl = wsUrl(small.port);
      const raw = await RawClient.open(smallUrl);
      await raw.connect(await token());
      // Just under the limit passes (a publish of ~3.9 KB of data)...
      const channel = uniqueChannel('size');
      const fits = await raw.call('publish', { channel, data: 'x'.repeat(3900) });
      expect(fits).toMatchObject({ publish: {} });
      // ...and one byte-heavy frame over it closes the socket.
      raw.command('publish', { channel, data: 'x'.repeat(5000) });
      const close = await raw.closed();
      expect(close.code).toBe(1009);
      await expectServes(smallUrl);

      // The SDK treats 1009 as terminal (PROTOCOL.md E.3): disconnected, no reconnect loop.
      const client = newClient(smallUrl, await token());
      const disconnected = new Promise<{ code: number }>((resolve) => client.on('disconnected', resolve));
      client.connect();
      await client.ready(5000);
      client.publish(channel, 'y'.repeat(5000)).catch(() => {});
      const ctx = await Promise.race([
        disconnected,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('SDK never reached disconnected')), 5000),
        ),
      ]);
      expect(ctx.code).toBe(3);
    });

    it('closes a socket that never sends connect with 3502 "stale"', async () => {
      const stale = await stack.gateway({ TIDINGS_STALE_S: '1' });
      const raw = await RawClient.open(wsUrl(stale.port));
      const close = await raw.closed(5000);
      expect(close).toEqual({ code: 3502, reason: 'stale' });
      // A connected client is not stale.
      const ok = await RawClient.open(wsUrl(stale.port));
      await ok.connect(await token());
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(ok.closeEvent).toBeUndefined();
      ok.close();
    });
  });
});
