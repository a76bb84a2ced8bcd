/**
 * The Protobuf client protocol (issue 16) through the official centrifuge-js Protobuf build,
 * the protocol centrifuge-swift, centrifuge-java and centrifuge-dart speak: the same session
 * as the JSON tests (connect, subscribe with recovery, durable publish, history, presence,
 * RPC, refresh), JSON and Protobuf subscribers of one channel side by side, and hostile
 * binary frames on raw sockets.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { API_KEY, call } from '../helpers/api.js';
import { connected, record } from '../helpers/client.js';
import {
  command,
  commandBody,
  delimited,
  fromJsonBytes,
  lengthDelimited,
  jsonBytes,
  newProtobufClient,
  RawProtobufClient,
  text,
} from '../helpers/protobuf.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Got {
  offset: number;
  data: unknown;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A Protobuf SDK subscription that records what it received, data decoded from its JSON bytes. */
function recordProtobuf(client: ProtobufCentrifuge, channel: string) {
  const sub = client.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 500 });
  const received: Got[] = [];
  const subscribed: { wasRecovering: boolean; recovered: boolean; epoch?: string }[] = [];
  sub.on('publication', (ctx) =>
    received.push({ offset: Number(ctx.offset), data: fromJsonBytes(ctx.data) }),
  );
  sub.on('subscribed', (ctx) =>
    subscribed.push({
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      epoch: ctx.streamPosition?.epoch,
    }),
  );
  return { sub, received, subscribed, offsets: () => received.map((r) => r.offset) };
}

async function protobufConnected(
  url: string,
  user: string,
  opts: Record<string, unknown> = {},
): Promise<ProtobufCentrifuge> {
  const client = newProtobufClient(url, await token(user), opts);
  client.connect();
  await client.ready(5000);
  return client;
}

describe('client protocol: Protobuf', () => {
  const stack = new TestStack();
  let gateway: RunningGateway;
  let url: string;
  let db: pg.Client;
  const clients: { disconnect(): void }[] = [];

  beforeAll(async () => {
    gateway = await stack.gateway({ TIDINGS_API_KEY: API_KEY });
    await stack.worker();
    url = wsUrl(gateway.port);
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await db.end();
    await stack.close();
  });

  async function client(user: string, opts: Record<string, unknown> = {}): Promise<ProtobufCentrifuge> {
    const c = await protobufConnected(url, user, opts);
    clients.push(c);
    return c;
  }

  describe('the SDK session', () => {
    it('connects over binary frames with the centrifuge-protobuf subprotocol', async () => {
      const c = newProtobufClient(url, await token('pb-connect'));
      clients.push(c);
      const connected = new Promise<{ client: string }>((resolve) => c.once('connected', resolve));
      c.connect();
      const ctx = await connected;
      expect(ctx.client).toMatch(/[0-9a-f-]{36}/);
    });

    it('publish replies once committed in PostgreSQL; the data bytes arrive unchanged, in order', async () => {
      const channel = uniqueChannel('pb-pub');
      const c = await client('pb-publisher');
      const rec = recordProtobuf(c, channel);
      rec.sub.subscribe();
      await rec.sub.ready(5000);
      for (let n = 1; n <= 3; n++) {
        await c.publish(channel, jsonBytes({ n, text: 'é\n"' }));
        const { rows } = await db.query('SELECT count(*)::int AS n FROM publications WHERE channel = $1', [
          channel,
        ]);
        expect(rows[0].n, 'committed before the reply').toBe(n);
      }
      await waitFor('three publications live', () => rec.received.length === 3);
      expect(rec.received).toEqual(range(1, 3).map((n) => ({ offset: n, data: { n, text: 'é\n"' } })));
    });

    it('recovers missed publications after disconnect() and connect(): recovered, in order, no duplicates', async () => {
      const channel = uniqueChannel('pb-recover');
      const c = newProtobufClient(url, await token('pb-recoverer'));
      clients.push(c);
      const rec = recordProtobuf(c, channel);
      rec.sub.subscribe();
      c.connect();
      await rec.sub.ready(5000);
      for (let n = 1; n <= 5; n++) await call(gateway.port, 'publish', { channel, data: { n } });
      await waitFor('publications 1..5 live', () => rec.received.length === 5);

      c.disconnect();
      for (let n = 6; n <= 12; n++) await call(gateway.port, 'publish', { channel, data: { n } });
      c.connect();
      await waitFor('the recovering subscribe', () => rec.subscribed.length === 2);
      await waitFor('publications 6..12 recovered', () => rec.received.length === 12);
      expect(rec.subscribed[1]).toMatchObject({ wasRecovering: true, recovered: true });
      expect(rec.subscribed[1]!.epoch).toBeTruthy();
      expect(rec.offsets()).toEqual(range(1, 12));
      // An API publication (JSON) reaches a Protobuf client as its JSON text.
      expect(rec.received.map((r) => r.data)).toEqual(range(1, 12).map((n) => ({ n })));

      await call(gateway.port, 'publish', { channel, data: { n: 13 } });
      await waitFor('publication 13 live', () => rec.received.length === 13);
      expect(rec.offsets()).toEqual(range(1, 13));
    });

    it('history, presence and presence_stats', async () => {
      const channel = uniqueChannel('pb-hist');
      const c = await client('pb-reader');
      const rec = recordProtobuf(c, channel);
      rec.sub.subscribe();
      await rec.sub.ready(5000);
      for (let n = 1; n <= 4; n++) await c.publish(channel, jsonBytes({ n }));

      const all = await c.history(channel, { limit: -1 });
      expect(all.offset).toBe(4);
      expect(all.epoch).toBeTruthy();
      expect(all.publications.map((p) => [Number(p.offset), fromJsonBytes(p.data)])).toEqual(
        range(1, 4).map((n) => [n, { n }]),
      );
      const since = await c.history(channel, { limit: 10, since: { offset: 2, epoch: all.epoch } });
      expect(since.publications.map((p) => Number(p.offset))).toEqual([3, 4]);
      const newest = await c.history(channel, { limit: 1, reverse: true });
      expect(newest.publications.map((p) => Number(p.offset))).toEqual([4]);
      expect(newest.publications[0]!.info).toMatchObject({ user: 'pb-reader' });
      await expect(
        c.history(channel, { limit: 1, since: { offset: 1, epoch: 'wrong' } }),
      ).rejects.toMatchObject({ code: 112 });

      const presence = await c.presence(channel);
      expect(Object.values(presence.clients).map((info) => info.user)).toEqual(['pb-reader']);
      expect(await c.presenceStats(channel)).toEqual({ numClients: 1, numUsers: 1 });
    });

    it('RPC: the tidings.* methods answer with JSON bytes; a payload that is not JSON → 107', async () => {
      const channel = uniqueChannel('pb-rpc');
      const c = await client('pb-rpc-user');
      await call(gateway.port, 'publish', { channel, data: { n: 1 } });
      const read = await c.rpc('tidings.read', jsonBytes({ channel, offset: 1 }));
      expect(fromJsonBytes(read.data)).toMatchObject({ read: 1, unread: 0, offset: 1 });
      const unread = await c.rpc('tidings.unread', jsonBytes({ channels: [channel] }));
      expect(fromJsonBytes(unread.data)).toEqual({
        channels: { [channel]: { offset: 1, read: 1, unread: 0 } },
      });
      await expect(c.rpc('tidings.unread', text.encode('not json'))).rejects.toMatchObject({ code: 107 });
      expect(c.state).toBe('connected');
    });

    it('refreshes a token that expires in 2 s through getToken and stays connected past its exp', async () => {
      let refreshed = 0;
      const c = newProtobufClient(url, await token('pb-refresher', { ttlSeconds: 2 }), {
        getToken: async () => {
          refreshed++;
          return token('pb-refresher', { ttlSeconds: 600 });
        },
      });
      clients.push(c);
      const disconnects: number[] = [];
      c.on('disconnected', (ctx) => disconnects.push(ctx.code));
      c.connect();
      await c.ready(5000);
      await waitFor('the SDK to refresh its token', () => refreshed > 0, { timeoutMs: 10_000 });
      await sleep(2500); // past the first token's exp and the refresh's round trip
      expect(c.state).toBe('connected');
      expect(disconnects).toEqual([]);
      await c.publish(uniqueChannel('pb-refreshed'), jsonBytes({ ok: true }));
    });
  });

  it('pings are empty Replies: the SDK answers them with empty Commands and stays; a silent client is closed 3012', async () => {
    const pinging = await stack.gateway({ TIDINGS_PING_INTERVAL_S: '2', TIDINGS_PONG_TIMEOUT_S: '1' });
    const pingUrl = wsUrl(pinging.port);
    const sdk = newProtobufClient(pingUrl, await token('pb-pinged'));
    clients.push(sdk);
    const disconnects: number[] = [];
    sdk.on('disconnected', (ctx) => disconnects.push(ctx.code));
    sdk.connect();
    await sdk.ready(5000);
    const silent = await RawProtobufClient.open(pingUrl);
    await silent.connect(await token('pb-silent'));
    await waitFor(
      'an empty Reply (the ping)',
      () => silent.replies.some((r) => Object.keys(r).length === 0),
      { timeoutMs: 5000 },
    );
    expect((await silent.closed()).code).toBe(3012);
    await sleep(2500); // past another ping and its pong timeout
    expect(sdk.state).toBe('connected');
    expect(disconnects).toEqual([]);
  });

  it('counts accepted connections by protocol in /metrics', async () => {
    await client('pb-metrics');
    const text = await (await fetch(`http://127.0.0.1:${gateway.port}/metrics`)).text();
    const count = (protocol: string) =>
      Number(
        new RegExp(
          `tidings_gateway_connections_accepted_total\\{[^}]*protocol="${protocol}"[^}]*\\} (\\d+)`,
        ).exec(text)?.[1] ?? 0,
      );
    expect(count('protobuf')).toBeGreaterThan(0);
  });

  describe('JSON and Protobuf side by side', () => {
    it('a JSON and a Protobuf subscriber of one channel both get every publication, with the same data', async () => {
      const channel = uniqueChannel('pb-mixed');
      const jsonClient = await connected(url, await token('json-side'));
      clients.push(jsonClient);
      const jsonRec = record(jsonClient, channel);
      jsonRec.sub.subscribe();
      const pb = await client('pb-side');
      const pbRec = recordProtobuf(pb, channel);
      pbRec.sub.subscribe();
      await Promise.all([jsonRec.sub.ready(5000), pbRec.sub.ready(5000)]);

      await pb.publish(channel, jsonBytes({ from: 'protobuf', list: [1, 2.5, 'x'] }));
      await jsonClient.publish(channel, { from: 'json', nested: { deep: [true, null] } });
      await call(gateway.port, 'publish', { channel, data: 'a plain string' });
      await waitFor(
        'three publications on both sides',
        () => jsonRec.received.length === 3 && pbRec.received.length === 3,
      );
      const expected = [
        { from: 'protobuf', list: [1, 2.5, 'x'] },
        { from: 'json', nested: { deep: [true, null] } },
        'a plain string',
      ];
      expect(jsonRec.received.map((r) => r.data)).toEqual(expected);
      expect(pbRec.received.map((r) => r.data)).toEqual(expected);
      expect(pbRec.offsets()).toEqual(jsonRec.offsets());
    });

    it('a Protobuf publish whose data is not JSON text is refused with 107 and not committed; the connection serves on', async () => {
      const channel = uniqueChannel('pb-notjson');
      const pb = await client('pb-binary');
      await expect(pb.publish(channel, Uint8Array.of(0x00, 0xff, 0x10))).rejects.toMatchObject({ code: 107 });
      await expect(pb.publish(channel, text.encode('{"unfinished":'))).rejects.toMatchObject({ code: 107 });
      await pb.publish(channel, jsonBytes({ ok: 1 }));
      const { rows } = await db.query('SELECT data FROM publications WHERE channel = $1', [channel]);
      expect(rows.map((r) => JSON.parse(r.data as string) as unknown)).toEqual([{ ok: 1 }]);
      expect(pb.state).toBe('connected');
    });
  });

  describe('the wire', () => {
    it('?cf_protocol=protobuf without a subprotocol also speaks Protobuf; pings are empty Replies', async () => {
      const raw = await RawProtobufClient.open(`${url}?cf_protocol=protobuf`, []);
      const reply = await raw.connect(await token('pb-query'));
      expect(reply.connect).toMatchObject({ version: expect.any(String) });
      // A pong is an empty Command: a zero length prefix.
      raw.send(Buffer.of(0));
      const subscribe = await raw.call('subscribe', { channel: uniqueChannel('pb-raw') });
      expect(subscribe.subscribe).toMatchObject({ recoverable: true, positioned: true });
      expect(raw.textFrames).toEqual([]);
      raw.close();
    });

    it('several commands in one frame are run in order', async () => {
      const raw = await RawProtobufClient.open(url);
      const channel = uniqueChannel('pb-batch');
      raw.send(
        Buffer.concat([
          command({ id: 1, connect: { token: await token('pb-batch') } }),
          command({ id: 2, subscribe: { channel } }),
          command({ id: 3, publish: { channel, data: jsonBytes({ n: 1 }) } }),
          command({ id: 4, presence_stats: { channel } }),
        ]),
      );
      const ids = await waitFor('four replies', () => {
        const got = raw.replies.filter((r) => r.id).map((r) => r.id);
        return got.length >= 4 ? got : undefined;
      });
      expect([...ids].sort()).toEqual([1, 2, 3, 4]);
      expect(ids.slice(0, 2), 'connect, then subscribe, answered in order').toEqual([1, 2]);
      expect(raw.replies.find((r) => r.id === 4)!.presence_stats).toEqual({ num_clients: 1, num_users: 1 });
      raw.close();
    });

    it('bounds of the JSON protocol hold: a NUL or an oversized channel → 107, the connection stays', async () => {
      const raw = await RawProtobufClient.open(url);
      await raw.connect(await token('pb-bounds'));
      for (const channel of ['bad\u0000channel', 'x'.repeat(300)]) {
        const reply = await raw.call('subscribe', { channel });
        expect(reply.error).toMatchObject({ code: 107 });
      }
      const fine = await raw.call('subscribe', { channel: uniqueChannel('ok') });
      expect(fine.subscribe).toMatchObject({ recoverable: true });
      raw.close();
    });

    it('unknown fields of a valid wire type are skipped (newer clients add fields)', async () => {
      const raw = await RawProtobufClient.open(url);
      const body = commandBody({ id: 1, connect: { token: await token('pb-unknown') } });
      // Field 99 (varint 7) and field 100 (a length-delimited "hi") appended to the Command.
      const extra = Buffer.from([0x98, 0x06, 0x07, 0xa2, 0x06, 0x02, 0x68, 0x69]);
      raw.send(delimited(Buffer.concat([body, extra])));
      expect((await raw.reply(1)).connect).toBeTruthy();
      raw.close();
    });

    // Which check caught each is pinned by the unit tests (test/unit/protocol-protobuf.test.ts).
    const hostile: [string, () => Promise<Buffer | string>, string?][] = [
      ['a text frame', async () => `{"id":1,"connect":{"token":"${await token('x')}"}}`, 'text frame'],
      ['a truncated length prefix', async () => Buffer.from([0x80])],
      ['a length past the end of the frame', async () => Buffer.from([0x05, 0x08, 0x01])],
      [
        'a huge length prefix',
        async () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0x01]),
        'length prefix',
      ],
      ['a truncated varint inside a command', async () => Buffer.from([0x02, 0x08, 0x80])],
      [
        'a known field with the wrong wire type',
        async () => Buffer.from([0x03, 0x0a, 0x01, 0x41]),
        'wire type',
      ],
      ['a group (wire type 3)', async () => Buffer.from([0x02, 0x1b, 0x1c])],
      ['wire type 7', async () => Buffer.from([0x02, 0x0f, 0x00])],
      ['field number 0', async () => Buffer.from([0x02, 0x00, 0x01])],
      ['a string that is not UTF-8', async () => notUtf8Token(), 'not UTF-8'],
      ['a sub-message longer than its parent', async () => Buffer.from([0x04, 0x08, 0x01, 0x22, 0x09])],
      [
        'a filter nested 100 deep',
        async () =>
          Buffer.concat([command({ id: 1, connect: { token: await token('x') } }), deepFilter(100)]),
        'nested deeper',
      ],
      ['two methods in one command', async () => command({ id: 1, connect: {}, history: { channel: 'x' } })],
      ['a connect without id', async () => command({ connect: { token: await token('x') } })],
    ];
    for (const [name, frame] of hostile) {
      it(`${name} → close 3501, and the gateway serves on`, async () => {
        const raw = await RawProtobufClient.open(url);
        raw.send(await frame());
        const close = await raw.closed();
        expect(close.code).toBe(3501);
        expect(close.reason).toBe('bad request');
        await expectServes();
      });
    }

    it('a binary frame on a JSON connection is read as JSON text, as the Go server reads it', async () => {
      const raw = await RawClient.open(url);
      raw.send(Buffer.from(`{"id":1,"connect":{"token":"${await token('x')}"}}`), { binary: true });
      const reply = await raw.next();
      expect(reply).toMatchObject({ id: 1, connect: { client: expect.any(String) } });
      raw.ws.close();
    });

    it('300 random frames on connected sockets: only replies or a 3501, never a crash or a stall', async () => {
      const valid = await token('pb-fuzz');
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 48 }), async (bytes) => {
          const raw = await RawProtobufClient.open(url);
          try {
            await raw.connect(valid);
            raw.send(Buffer.from(bytes));
            raw.send(command({ id: 99, presence_stats: { channel: 'fuzz-probe' } }));
            await waitFor(
              'the probe reply or a close',
              () => raw.closeEvent ?? raw.replies.find((r) => r.id === 99),
              { timeoutMs: 5000 },
            );
            if (raw.closeEvent) expect([3501, 3013]).toContain(raw.closeEvent.code);
            for (const r of raw.replies) expect(r.error?.code ?? 0).not.toBe(100);
          } finally {
            raw.close();
          }
        }),
        { numRuns: 300 },
      );
      await expectServes();
    });
  });

  /** A connect over Protobuf still works: the gateway survived whatever came before. */
  async function expectServes(): Promise<void> {
    const raw = await RawProtobufClient.open(url);
    await raw.connect(await token('after'));
    raw.close();
  }
});

/**
 * A subscribe command whose tags filter nests `depth` FilterNodes, written by hand (protobufjs
 * itself refuses to build one this deep).
 */
function deepFilter(depth: number): Buffer {
  let node = lengthDelimited(2, Buffer.from('k')); // FilterNode.key
  for (let i = 0; i < depth; i++) node = lengthDelimited(6, node); // FilterNode.nodes
  const subscribe = Buffer.concat([lengthDelimited(1, Buffer.from('x')), lengthDelimited(13, node)]);
  return delimited(Buffer.concat([commandBody({ id: 2 }), lengthDelimited(5, subscribe)]));
}

/** A connect whose token bytes are not UTF-8 (protobufjs would write a JS string as UTF-8). */
function notUtf8Token(): Buffer {
  const token = Buffer.from([0x0a, 0x02, 0xc3, 0x28]); // ConnectRequest.token = C3 28
  const cmd = Buffer.concat([Buffer.from([0x08, 0x01, 0x22, token.length]), token]); // id 1, connect
  return Buffer.concat([Buffer.from([cmd.length]), cmd]);
}
