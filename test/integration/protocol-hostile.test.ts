/**
 * Hostile input on the client protocol: a thousand random and mutated frames (fast-check),
 * deeply nested JSON, and channel names that look like SQL, Redis patterns or broken
 * Unicode. Whatever arrives, the gateway answers in protocol (a text reply, an error code
 * or a close code with a reason), never with an internal error, and keeps serving.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { partitionOf } from '../../src/bus/keys.js';
import { connected, subscribed } from '../helpers/client.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/** Close codes a hostile frame may earn: bad request, invalid token, too big, expired refresh, rate. */
const EXPECTED_CLOSE_CODES = [3500, 3501, 1009, 3005, 3013];
const PROBE_ID = 8_888_888_888_888;

describe('client protocol: hostile input', () => {
  const stack = new TestStack();
  const suffix = randomBytes(4).toString('hex');
  let gateway: RunningGateway;
  let url: string;
  let validToken: string;

  beforeAll(async () => {
    // Namespace `room` exists, so `room:*` is a valid channel name.
    const dir = await mkdtemp(join(tmpdir(), 'tidings-hostile-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ namespaces: { room: {} } }));
    gateway = await stack.gateway({ TIDINGS_CONFIG: join(dir, 'config.json') });
    await stack.worker();
    url = wsUrl(gateway.port);
    validToken = await token('fuzzer');
  });
  afterAll(() => stack.close());

  /**
   * /health answers, the SDK connects, subscribes and receives, and a publish commits on every
   * ingest partition (one poisoned job would stall its whole partition, not just its channel).
   */
  async function expectServes(): Promise<void> {
    const health = await fetch(`http://127.0.0.1:${gateway.port}/health`);
    expect(health.status).toBe(200);
    const channel = uniqueChannel('after-hostile');
    const sub = await subscribed(url, await token('checker'), channel);
    const pub = await connected(url, await token('checker-pub'));
    await pub.publish(channel, { still: 'serving' });
    await waitFor('the publication after the hostile input', () => sub.received.length === 1);
    expect(sub.received[0]).toMatchObject({ offset: 1, data: { still: 'serving' } });
    const partitions = Number(stack.env().TIDINGS_PARTITIONS);
    for (let p = 0; p < partitions; p++) {
      let probe = uniqueChannel('partition');
      while (partitionOf(probe, partitions) !== p) probe = uniqueChannel('partition');
      await expect(
        pub.publish(probe, { partition: p }),
        `a publish on partition ${p}`,
      ).resolves.toBeDefined();
    }
    sub.client.disconnect();
    pub.disconnect();
  }

  describe('random and mutated frames', () => {
    const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    const nastyString = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'binary-ascii', maxLength: 40 }),
      fc.string({
        unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), loneSurrogate),
        maxLength: 10,
      }),
      fc.constantFrom(
        '',
        ' ',
        '$private',
        'room:x',
        'nope:x',
        'u#fuzzer',
        'u#other',
        '\u0000',
        'é'.repeat(200),
        '__proto__',
      ),
    );
    const channel = fc.oneof(
      { weight: 3, arbitrary: fc.constant(`fuzz-${suffix}`) },
      { weight: 3, arbitrary: nastyString },
      fc.jsonValue({ maxDepth: 2 }),
    );
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      nastyString,
      fc.constantFrom(
        -1,
        0,
        1,
        2,
        3,
        -0,
        1.5,
        2 ** 53,
        2 ** 53 + 2,
        -(2 ** 53),
        1e308,
        'zzzzzzzz',
        true,
        null,
        [],
        {},
      ),
    );
    // prettier-ignore
    const fields = fc.constantFrom(
      'channel', 'token', 'data', 'recover', 'offset', 'epoch', 'limit', 'since', 'reverse', 'flag', 'type', 'method', 'tf',
      'positioned', 'recoverable', 'join_leave', 'delta', 'subs', 'headers', 'name', 'version', '__proto__', 'constructor',
    );
    const body = fc.oneof(
      fc.dictionary(fields, value, { maxKeys: 5 }),
      fc.record({ channel, data: value }, { requiredKeys: ['channel'] }),
      fc.record({ token: fc.oneof(fc.constant('VALID'), nastyString) }),
      value,
    );
    // prettier-ignore
    const method = fc.constantFrom(
      'connect', 'subscribe', 'unsubscribe', 'publish', 'history', 'refresh', 'sub_refresh', 'presence', 'presence_stats',
      'rpc', 'send', 'ping', 'bogus', '__proto__', '',
    );
    const id = fc.oneof(
      { weight: 6, arbitrary: fc.nat({ max: 1000 }) },
      fc.integer(),
      value,
      fc.constant(undefined),
    );
    const wellFormed = fc
      .record({
        id: fc.nat({ max: 1000 }),
        method: fc.constantFrom('publish', 'subscribe', 'history', 'unsubscribe', 'presence'),
        channel: fc.oneof(fc.constant(`fuzz-${suffix}`), nastyString),
        data: value,
      })
      .map(({ id, method, channel, data }) =>
        JSON.stringify({ id, [method]: method === 'publish' ? { channel, data } : { channel } }),
      );
    const anyCommand = fc
      .record({ id, method, body })
      .map(({ id, method, body }) =>
        JSON.stringify({ ...(id === undefined ? {} : { id }), [method]: body }).replaceAll(
          '"VALID"',
          JSON.stringify(validToken),
        ),
      );
    const command = fc.oneof({ weight: 2, arbitrary: anyCommand }, { weight: 2, arbitrary: wellFormed });
    const mutation = fc.oneof(
      { weight: 8, arbitrary: fc.constant((s: string) => s) },
      fc.nat().map((n) => (s: string) => s.slice(0, n % (s.length + 1))),
      fc.tuple(fc.nat(), nastyString).map(
        ([n, x]) =>
          (s: string) =>
            s.slice(0, n % (s.length + 1)) + x + s.slice(n % (s.length + 1)),
      ),
      fc.tuple(fc.nat(), fc.nat()).map(
        ([a, b]) =>
          (s: string) =>
            s.slice(0, a % (s.length + 1)) + s.slice((a % (s.length + 1)) + (b % 8)),
      ),
      fc.constant((s: string) => s.replace('{', '{"id":1,')), // duplicate keys
      fc.constant((s: string) => `${s}\n${s}`),
    );
    // prettier-ignore
    const textFrame = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.oneof({ weight: 3, arbitrary: command.map((c) => [c]) }, fc.array(command, { minLength: 2, maxLength: 3 })), mutation).map(([cmds, m]) => m(cmds.join('\n'))) },
      { weight: 1, arbitrary: nastyString },
      { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
      { weight: 1, arbitrary: fc.constantFrom('{}', '[]', 'null', '""', '{"id":1}', '{"id":1,"connect":null}', '{"__proto__":{"connect":{}},"id":1}', '\n\n', '{"id":1e400,"connect":{}}') },
    );
    const frame = fc.oneof(
      { weight: 8, arbitrary: textFrame.map((text) => ({ data: text as string | Buffer, binary: false })) },
      {
        weight: 1,
        arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: true })),
      },
      {
        weight: 1,
        arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: false })),
      },
    );

    it('1,000 frames on fresh and connected sockets: only protocol answers, and the gateway keeps serving', async () => {
      let runs = 0;
      const seen = new Map<string, number>();
      const count = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);
      await fc.assert(
        // Mostly on connected sockets, where commands reach the handlers.
        fc.asyncProperty(
          frame,
          fc.nat(9).map((n) => n < 8),
          async ({ data, binary }, connectFirst) => {
            runs++;
            const raw = await RawClient.open(url);
            try {
              if (connectFirst) await raw.connect(validToken);
              raw.send(data, { binary });
              // Commands run in order: once the probe is answered (or the socket closed), the
              // hostile frame has been dealt with.
              raw.send(JSON.stringify({ id: PROBE_ID, history: { channel: `fuzz-probe-${suffix}` } }));
              await raw.until(
                'the probe reply or a close',
                () => raw.closeEvent ?? raw.messages.find((m) => m.id === PROBE_ID),
              );
              for (const f of raw.frames) expect(f.isBinary).toBe(false);
              for (const m of raw.messages) {
                if (m.id !== PROBE_ID)
                  count(
                    m.error
                      ? `error ${(m.error as { code: number }).code}`
                      : `reply ${Object.keys(m).filter((k) => k !== 'id')[0]}`,
                  );
                expect(m.unparsable).toBeUndefined();
                expect((m.error as { code?: number } | undefined)?.code).not.toBe(100);
              }
              if (raw.closeEvent) {
                count(`close ${raw.closeEvent.code}`);
                expect(EXPECTED_CLOSE_CODES).toContain(raw.closeEvent.code);
                if (raw.closeEvent.code >= 3000) expect(raw.closeEvent.reason).not.toBe('');
              }
            } finally {
              raw.close();
            }
          },
        ),
        { numRuns: 1000, verbose: 1 },
      );
      expect(runs).toBeGreaterThanOrEqual(1000);
      // The run reached the handlers, not only the codec's front door.
      for (const outcome of ['reply subscribe', 'reply history', 'error 107', 'close 3501']) {
        expect(seen.get(outcome), `${outcome} in ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
      }
      await waitFor(
        `the gateway to drop every fuzzed connection (${gateway.ws.connections.size} left)`,
        () => gateway.ws.connections.size === 0,
      );
      await expectServes();
    });
  });

  describe('deep nesting', () => {
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

    for (const [name, make] of [
      [
        'as publication data',
        (d: number) => `{"id":2,"publish":{"channel":"deep-${suffix}","data":${nested(d)}}}`,
      ],
      ['as the command itself', (d: number) => `{"id":2,"publish":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`],
      ['inside a string-free object chain', (d: number) => `${'{"x":'.repeat(d)}0${'}'.repeat(d)}`],
    ] as const) {
      it(`depth 10,000 ${name} → close 3501, and the gateway keeps serving`, async () => {
        const raw = await RawClient.open(url);
        await raw.connect(validToken);
        raw.send(make(10_000));
        expect(await raw.closed()).toEqual({ code: 3501, reason: 'bad request' });
        await expectServes();
      });
    }

    it('frames of empty commands (pongs) count against the rate limit: closed 3013, before connect too', async () => {
      const client = await RawClient.open(url);
      const flood = '{}\n'.repeat(21_000);
      for (let i = 0; i < 20; i++) client.send(flood);
      expect((await client.closed(10_000)).code).toBe(3013);
      await expectServes();
    });

    it('depth 100,000 (over the message size limit) → close 1009', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(validToken);
      raw.send(`{"id":2,"publish":{"channel":"deep-${suffix}","data":${nested(100_000)}}}`);
      expect((await raw.closed()).code).toBe(1009);
    });

    it('nesting within the limit publishes and reads back intact', async () => {
      const channel = uniqueChannel('nested');
      let data: unknown = 'bottom';
      for (let i = 0; i < 50; i++) data = i % 2 ? [data] : { d: data };
      const raw = await RawClient.open(url);
      await raw.connect(validToken);
      expect(await raw.call('publish', { channel, data })).toMatchObject({ publish: {} });
      const history = await raw.call('history', { channel, limit: -1 });
      expect(
        (history.history as { publications: { data: unknown }[] }).publications.map((p) => p.data),
      ).toEqual([data]);
      raw.close();
    });
  });

  describe('channel names that look like SQL, Redis patterns or markup', () => {
    const names = [
      `a'b"c;--${suffix}`,
      `room:*${suffix}`,
      `a{b}${suffix}`,
      `*${suffix}`,
      `[ab]${suffix}`,
      `?${suffix}`,
      `\\${suffix}\\`,
      `%s%n%00${suffix}`,
      `<script>alert(1)</script>${suffix}`,
      `../../etc/passwd${suffix}`,
      `日本語-ünï-🎉${suffix}`,
      `a\u200bb${suffix}`,
      `x'||pg_sleep(1)||'${suffix}`,
    ];

    it('publish and read back through live delivery, history and PostgreSQL, each channel on its own', async () => {
      const publisher = await connected(url, await token('names-pub'));
      const db = new pg.Client({ connectionString: stack.databaseUrl });
      await db.connect();
      try {
        for (const name of names) {
          const sub = await subscribed(url, await token('names-sub'), name);
          const payloads = [
            { n: 1, name },
            { n: 2, sql: "'); drop table publications;--" },
            { n: 3, redis: 'FLUSHALL\r\n*1\r\n$8\r\nFLUSHALL' },
          ];
          for (const p of payloads) await publisher.publish(name, p);
          await waitFor(`3 live publications on ${JSON.stringify(name)}`, () => sub.received.length === 3);
          expect(
            sub.received.map((r) => r.data),
            name,
          ).toEqual(payloads);
          expect(sub.offsets(), name).toEqual([1, 2, 3]);
          const history = await publisher.history(name, { limit: -1 });
          expect(
            history.publications.map((p) => p.data),
            name,
          ).toEqual(payloads);
          const { rows } = await db.query<{ n: number }>(
            'select count(*)::int as n from publications where channel = $1',
            [name],
          );
          expect(rows[0]!.n, name).toBe(3);
          sub.client.disconnect();
        }
        // Glob-looking names are names, not patterns: a publication to a channel they would
        // match reaches neither them nor their history.
        const pattern = await subscribed(url, await token('names-sub'), `room:*${suffix}`);
        const bracket = await subscribed(url, await token('names-sub'), `[ab]${suffix}`);
        await publisher.publish(`room:x${suffix}`, { other: 1 });
        await publisher.publish(`a${suffix}`, { other: 2 });
        await publisher.publish(`room:*${suffix}`, { own: 4 });
        await publisher.publish(`[ab]${suffix}`, { own: 4 });
        await waitFor(
          'the own publications',
          () => pattern.received.length >= 1 && bracket.received.length >= 1,
        );
        expect(pattern.received.map((r) => r.data)).toEqual([{ own: 4 }]);
        expect(bracket.received.map((r) => r.data)).toEqual([{ own: 4 }]);
        expect((await publisher.history(`room:*${suffix}`, { limit: -1 })).offset).toBe(4);
        pattern.client.disconnect();
        bracket.client.disconnect();
      } finally {
        publisher.disconnect();
        await db.end();
      }
    });

    it('a channel name with a lone surrogate (not representable in UTF-8) → 107, never an alias of another channel', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(validToken);
      for (const name of [`x\ud800${suffix}`, `x\udc00${suffix}`, `\udfff`, `x${suffix}\ud83d`]) {
        // JSON.stringify escapes lone surrogates, so the server receives exactly this name.
        for (const [method, body] of [
          ['subscribe', { channel: name }],
          ['publish', { channel: name, data: 1 }],
          ['history', { channel: name }],
        ] as const) {
          const reply = await raw.call(method, body);
          expect(reply.error, `${method} ${JSON.stringify(name)}`).toEqual({
            code: 107,
            message: 'bad request',
          });
        }
      }
      // A well-formed astral character (a surrogate pair) is fine.
      expect((await raw.call('subscribe', { channel: `x🎉${suffix}` })).subscribe).toBeDefined();
      raw.close();
    });
  });
});
