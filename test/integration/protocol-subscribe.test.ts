/**
 * Subscribe, publish, recovery and history as the client sees them (PROTOCOL.md B, D):
 * subscribe errors and their codes, the reply-before-publication rule, the publish reply
 * only after the commit, recovery through the SDK and its failure modes on raw sockets,
 * and the history command's limit / reverse / since semantics.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import { connected, newClient } from '../helpers/client.js';
import { RawClient, tappedWebSocket, type Message, type Tap } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Pub {
  offset: number;
  data: unknown;
  epoch?: string;
  info?: { user: string; client: string };
}

/** Publishes `count` publications `{n}` (from `first`), all in flight together; resolves once all are committed. */
async function publishN(client: Centrifuge, channel: string, count: number, first = 1): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => client.publish(channel, { n: first + i })));
}

function pushesOf(raw: RawClient, channel: string): Pub[] {
  return raw.messages
    .map((m) => m.push as { channel?: string; pub?: Pub } | undefined)
    .filter((p) => p?.channel === channel && p.pub)
    .map((p) => p!.pub!);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

describe('client protocol: subscribe, publish, recovery, history', () => {
  const stack = new TestStack();
  let url: string;
  let limitedUrl: string;
  let publisher: Centrifuge;
  let db: pg.Client;

  beforeAll(async () => {
    const [main, limited] = await Promise.all([
      stack.gateway(),
      stack.gateway({
        TIDINGS_CHANNELS_PER_CONNECTION: '2',
        TIDINGS_RECOVERY_MAX: '5',
        TIDINGS_HISTORY_MAX_PER_CALL: '7',
      }),
    ]);
    await stack.worker();
    url = wsUrl(main.port);
    limitedUrl = wsUrl(limited.port);
    publisher = await connected(url, await token('publisher'));
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    publisher?.disconnect();
    await db?.end();
    await stack.close();
  });

  async function rawConnected(at = url): Promise<RawClient> {
    const raw = await RawClient.open(at);
    await raw.connect(await token('raw'));
    return raw;
  }

  describe('subscribe errors', () => {
    it('a duplicate subscribe → 105, and the first subscription keeps working', async () => {
      const raw = await rawConnected();
      const channel = uniqueChannel('dup');
      // Both in one frame: the second must see the first's state.
      raw.send(
        `{"id":11,"subscribe":{"channel":"${channel}","flag":1}}\n{"id":12,"subscribe":{"channel":"${channel}","flag":1}}`,
      );
      expect((await raw.reply(11)).subscribe).toBeDefined();
      expect(await raw.reply(12)).toEqual({ id: 12, error: { code: 105, message: 'already subscribed' } });
      await publisher.publish(channel, { n: 1 });
      await waitFor('the publication on the first subscription', () => pushesOf(raw, channel).length === 1);
      raw.close();
    });

    it('over TIDINGS_CHANNELS_PER_CONNECTION → 106; after an unsubscribe there is room again', async () => {
      const raw = await rawConnected(limitedUrl);
      const [a, b, c] = [uniqueChannel('lim'), uniqueChannel('lim'), uniqueChannel('lim')];
      expect((await raw.call('subscribe', { channel: a })).subscribe).toBeDefined();
      expect((await raw.call('subscribe', { channel: b })).subscribe).toBeDefined();
      expect((await raw.call('subscribe', { channel: c })).error).toEqual({
        code: 106,
        message: 'limit exceeded',
      });
      expect(await raw.call('unsubscribe', { channel: a })).toMatchObject({ unsubscribe: {} });
      expect((await raw.call('subscribe', { channel: c })).subscribe).toBeDefined();
      expect(raw.closeEvent).toBeUndefined();
      raw.close();
    });

    const badNames: [string, string][] = [
      ['a space', 'a b'],
      ['SQL with spaces', "x'; drop table publications;--"],
      ['a tab', 'a\tb'],
      ['a newline', 'a\nb'],
      ['a NUL', 'a\u0000b'],
      ['DEL', 'a\u007fb'],
      ['a C1 control', 'a\u0085b'],
      ['a line separator', 'a\u2028b'],
      ['256 ASCII bytes', 'x'.repeat(256)],
      ['256 UTF-8 bytes in 128 characters', 'é'.repeat(128)],
    ];
    for (const [name, channel] of badNames) {
      it(`a channel name with ${name} → 107`, async () => {
        const raw = await rawConnected();
        expect((await raw.call('subscribe', { channel, flag: 1 })).error).toEqual({
          code: 107,
          message: 'bad request',
        });
        expect((await raw.call('publish', { channel, data: {} })).error).toEqual({
          code: 107,
          message: 'bad request',
        });
        expect((await raw.call('history', { channel, limit: 1 })).error).toEqual({
          code: 107,
          message: 'bad request',
        });
        expect(raw.closeEvent).toBeUndefined();
        raw.close();
      });
    }

    it('a channel name of exactly 255 bytes is fine', async () => {
      const raw = await rawConnected();
      const channel = `${uniqueChannel('long')}${'x'.repeat(255)}`.slice(0, 255);
      expect((await raw.call('subscribe', { channel })).subscribe).toBeDefined();
      raw.close();
    });

    it('type 1 (map) and type 4 (shared poll) → 108; a tags filter → 108', async () => {
      const raw = await rawConnected();
      for (const body of [
        { channel: uniqueChannel('map'), type: 1, flag: 1 },
        { channel: uniqueChannel('poll'), type: 4 },
        { channel: uniqueChannel('tf'), tf: { key: 'k', cmp: 'eq', val: 'v' } },
      ]) {
        expect((await raw.call('subscribe', body)).error, JSON.stringify(body)).toEqual({
          code: 108,
          message: 'not available',
        });
      }
      raw.close();
    });

    for (const [name, body] of [
      ['an empty channel', { channel: '', flag: 1 }],
      ['no channel', { flag: 1 }],
    ] as const) {
      it(`${name} → close 3501`, async () => {
        const raw = await rawConnected();
        raw.command('subscribe', body);
        const close = await raw.closed();
        expect(close).toEqual({ code: 3501, reason: 'bad request' });
      });
    }

    it('the SDK subscription to an invalid channel ends unsubscribed with 107, the client stays connected', async () => {
      const client = await connected(url, await token());
      const sub = client.newSubscription('bad name');
      const unsubscribed = new Promise<{ code: number }>((resolve) => sub.on('unsubscribed', resolve));
      sub.subscribe();
      expect((await unsubscribed).code).toBe(107);
      expect(client.state).toBe('connected');
      client.disconnect();
    });
  });

  describe('ordering', () => {
    it('writes the subscribe reply before any publication of the channel, then every later offset once', async () => {
      const channel = uniqueChannel('order');
      let stop = false;
      let published = 0;
      const flow = (async () => {
        while (!stop) {
          await publishN(publisher, channel, 5, published + 1);
          published += 5;
        }
      })();
      await waitFor('the flow of publications to start', () => published >= 10);

      const subscribers: { raw: RawClient; replyId: number }[] = [];
      for (let i = 0; i < 8; i++) {
        const raw = await RawClient.open(url);
        // Connect and subscribe in one frame, as the SDK does.
        raw.send(
          `{"id":1,"connect":{"token":"${await token(`o${i}`)}"}}\n{"id":2,"subscribe":{"channel":"${channel}","flag":1}}`,
        );
        subscribers.push({ raw, replyId: 2 });
        await new Promise((resolve) => setTimeout(resolve, 15 * i));
      }
      await Promise.all(subscribers.map((s) => s.raw.reply(s.replyId)));
      const floor = published;
      await waitFor('20 more publications after the last subscribe', () => published >= floor + 20);
      stop = true;
      await flow;

      for (const [i, { raw }] of subscribers.entries()) {
        await waitFor(
          `subscriber ${i} to receive up to offset ${published}`,
          () => pushesOf(raw, channel).at(-1)?.offset === published,
        );
        const replyAt = raw.messages.findIndex((m) => m.id === 2);
        const firstPushAt = raw.messages.findIndex(
          (m) => (m.push as Message | undefined)?.channel === channel,
        );
        expect(replyAt, `subscriber ${i}: reply before the first push`).toBeLessThan(firstPushAt);
        const reply = raw.messages[replyAt]!.subscribe as { offset?: number };
        const from = (reply.offset ?? 0) + 1;
        expect(
          pushesOf(raw, channel).map((p) => p.offset),
          `subscriber ${i}`,
        ).toEqual(range(from, published));
        raw.close();
      }
    });
  });

  describe('publish', () => {
    it('replies only after the publication is committed in PostgreSQL', async () => {
      const channel = uniqueChannel('commit');
      const raw = await rawConnected();
      const checks: Promise<{ n: number; rows: number }>[] = [];
      // Query the moment each reply arrives, before anything else can commit it.
      raw.ws.on('message', (data) => {
        for (const line of String(data).split('\n')) {
          const m = JSON.parse(line) as { id?: number; publish?: object };
          if (m.id === undefined || !m.publish) continue;
          const n = m.id - 1000;
          checks.push(
            db
              .query('select "offset" from publications where channel = $1 and data = $2', [
                channel,
                JSON.stringify({ n }),
              ])
              .then((r) => ({ n, rows: r.rowCount ?? 0 })),
          );
        }
      });
      // 40 publishes in one frame (all in flight), then 10 one at a time.
      raw.send(
        range(1, 40)
          .map((n) => JSON.stringify({ id: 1000 + n, publish: { channel, data: { n } } }))
          .join('\n'),
      );
      await waitFor('40 publish replies', () => checks.length === 40);
      for (const n of range(41, 50)) {
        raw.send(JSON.stringify({ id: 1000 + n, publish: { channel, data: { n } } }));
        await raw.reply(1000 + n);
      }
      const results = await Promise.all(checks);
      expect(results.filter((r) => r.rows !== 1)).toEqual([]);
      expect(results.map((r) => r.n).sort((x, y) => x - y)).toEqual(range(1, 50));

      // Publisher FIFO: offsets follow the order the publishes were sent.
      const { rows } = await db.query<{ offset: string; data: string }>(
        'select "offset", data from publications where channel = $1 order by "offset"',
        [channel],
      );
      expect(rows.map((r) => (JSON.parse(r.data) as { n: number }).n)).toEqual(range(1, 50));
      raw.close();
    });

    it('a publication carries the publisher info, also to the publisher itself when subscribed', async () => {
      const channel = uniqueChannel('info');
      const raw = await RawClient.open(url);
      const connect = await raw.connect(await token('alice', { info: { name: 'Alice' } }));
      await raw.call('subscribe', { channel });
      await raw.call('publish', { channel, data: { hi: 1 } });
      const [pub] = await waitFor('the own publication', () =>
        pushesOf(raw, channel).length ? pushesOf(raw, channel) : undefined,
      );
      expect(pub).toMatchObject({
        data: { hi: 1 },
        offset: 1,
        info: {
          user: 'alice',
          client: (connect.connect as { client: string }).client,
          conn_info: { name: 'Alice' },
        },
      });
      expect(pub!.epoch).toMatch(/^[a-z]{8}$/);
      raw.close();
    });
  });

  describe('recovery', () => {
    it('the SDK recovers missed publications in order after disconnect() and connect()', async () => {
      const channel = uniqueChannel('recover');
      const tap: Tap = { sent: [], received: [] };
      const client = newClient(url, await token('recoverer'), { websocket: tappedWebSocket(tap) });
      const sub = client.newSubscription(channel);
      const received: number[] = [];
      const subscribed: { wasRecovering: boolean; recovered: boolean; epoch?: string; offset?: number }[] =
        [];
      sub.on('publication', (ctx) => received.push(Number(ctx.offset)));
      sub.on('subscribed', (ctx) =>
        subscribed.push({
          wasRecovering: ctx.wasRecovering,
          recovered: ctx.recovered,
          epoch: ctx.streamPosition?.epoch,
          offset: ctx.streamPosition?.offset,
        }),
      );
      sub.subscribe();
      client.connect();
      await sub.ready(5000);
      await publishN(publisher, channel, 5);
      await waitFor('publications 1..5 live', () => received.length === 5);
      const epoch = (await publisher.history(channel, {})).epoch;

      client.disconnect();
      await publishN(publisher, channel, 7, 6);
      client.connect();
      await waitFor('the recovering subscribe', () => subscribed.length === 2);
      await waitFor('publications 6..12 recovered', () => received.length === 12);

      expect(subscribed[1]).toMatchObject({ wasRecovering: true, recovered: true, epoch });
      expect(received).toEqual(range(1, 12));
      const resubscribe = tap.sent
        .flatMap((f) => f.split('\n'))
        .filter((l) => l.includes('"subscribe"'))
        .at(-1)!;
      expect(JSON.parse(resubscribe).subscribe).toMatchObject({ channel, recover: true, offset: 5, epoch });

      // Live again after the recovery, without a duplicate.
      await publisher.publish(channel, { n: 13 });
      await waitFor('publication 13 live', () => received.length === 13);
      expect(received).toEqual(range(1, 13));
      client.disconnect();
    });

    async function channelWith(n: number): Promise<{ channel: string; epoch: string }> {
      const channel = uniqueChannel('rec');
      await publishN(publisher, channel, n);
      const { epoch, offset } = await publisher.history(channel, {});
      expect(offset).toBe(n);
      return { channel, epoch };
    }

    it('recovers from a raw position: publications after the offset, offset echoed', async () => {
      const { channel, epoch } = await channelWith(4);
      const raw = await rawConnected();
      const reply = await raw.call('subscribe', { channel, flag: 1, recover: true, epoch, offset: 1 });
      const result = reply.subscribe as { offset: number; publications: Pub[] };
      expect(result).toMatchObject({
        recoverable: true,
        positioned: true,
        epoch,
        offset: 1,
        was_recovering: true,
        recovered: true,
      });
      expect(result.publications.map((p) => p.offset)).toEqual([2, 3, 4]);
      expect(result.publications.map((p) => p.data)).toEqual([{ n: 2 }, { n: 3 }, { n: 4 }]);

      // Nothing missed: recovered, no publications.
      const upToDate = await raw.call('subscribe', {
        channel: (await channelWith(2)).channel,
        recover: true,
        offset: 2,
      });
      expect(upToDate.subscribe).toMatchObject({ was_recovering: true, recovered: true, offset: 2 });
      expect((upToDate.subscribe as Message).publications).toBeUndefined();
      raw.close();
    });

    it('a wrong epoch → was_recovering, not recovered, offset = top, no publications; with flag 3 → 112', async () => {
      const { channel, epoch } = await channelWith(3);
      const raw = await rawConnected();
      const reply = await raw.call('subscribe', {
        channel,
        flag: 1,
        recover: true,
        epoch: 'zzzzzzzz',
        offset: 1,
      });
      expect(reply.subscribe).toEqual({
        recoverable: true,
        positioned: true,
        epoch,
        offset: 3,
        was_recovering: true,
      });

      const strict = await rawConnected();
      const rejected = await strict.call('subscribe', {
        channel,
        flag: 3,
        recover: true,
        epoch: 'zzzzzzzz',
        offset: 1,
      });
      expect(rejected).toEqual({ id: rejected.id, error: { code: 112, message: 'unrecoverable position' } });
      // After 112 the channel is not subscribed: a plain subscribe works.
      expect((await strict.call('subscribe', { channel, flag: 1 })).subscribe).toMatchObject({ offset: 3 });

      // An offset ahead of the stream is not recoverable either.
      const ahead = await rawConnected();
      const aheadReply = await ahead.call('subscribe', {
        channel,
        flag: 1,
        recover: true,
        epoch,
        offset: 99,
      });
      expect(aheadReply.subscribe).toEqual({
        recoverable: true,
        positioned: true,
        epoch,
        offset: 3,
        was_recovering: true,
      });
      for (const r of [raw, strict, ahead]) r.close();
    });

    it('a gap larger than TIDINGS_RECOVERY_MAX is not recovered (raw and SDK); one within it is', async () => {
      const { channel, epoch } = await channelWith(10);
      const raw = await rawConnected(limitedUrl);
      const tooFar = await raw.call('subscribe', { channel, flag: 1, recover: true, epoch, offset: 4 });
      expect(tooFar.subscribe).toEqual({
        recoverable: true,
        positioned: true,
        epoch,
        offset: 10,
        was_recovering: true,
      });
      await raw.call('unsubscribe', { channel });
      const within = await raw.call('subscribe', { channel, flag: 1, recover: true, epoch, offset: 5 });
      expect(within.subscribe).toMatchObject({ offset: 5, was_recovering: true, recovered: true });
      expect(((within.subscribe as Message).publications as Pub[]).map((p) => p.offset)).toEqual([
        6, 7, 8, 9, 10,
      ]);
      raw.close();

      const client = newClient(limitedUrl, await token('far'));
      const sub = client.newSubscription(channel);
      const received: number[] = [];
      const subscribed: { wasRecovering: boolean; recovered: boolean; offset?: number }[] = [];
      sub.on('publication', (ctx) => received.push(Number(ctx.offset)));
      sub.on('subscribed', (ctx) =>
        subscribed.push({
          wasRecovering: ctx.wasRecovering,
          recovered: ctx.recovered,
          offset: ctx.streamPosition?.offset,
        }),
      );
      sub.subscribe();
      client.connect();
      await sub.ready(5000);
      client.disconnect();
      await publishN(publisher, channel, 6, 11);
      client.connect();
      await waitFor('the recovering subscribe', () => subscribed.length === 2);
      expect(subscribed[1]).toEqual({ wasRecovering: true, recovered: false, offset: 16 });
      await publisher.publish(channel, { n: 17 });
      await waitFor('publication 17 live', () => received.includes(17));
      expect(received).toEqual([17]);
      client.disconnect();
    });
  });

  describe('history', () => {
    it('limit 0 or absent → position only; -1 → all up to the cap; reverse; since; a wrong epoch → 112', async () => {
      const channel = uniqueChannel('hist');
      await publishN(publisher, channel, 12);
      const raw = await rawConnected(limitedUrl); // TIDINGS_HISTORY_MAX_PER_CALL=7
      const offsets = async (body: object): Promise<number[]> => {
        const reply = await raw.call('history', { channel, ...body });
        const result = reply.history as { publications: Pub[]; epoch: string; offset: number } | undefined;
        if (!result) throw new Error(`history ${JSON.stringify(body)} failed: ${JSON.stringify(reply)}`);
        expect(result.offset).toBe(12);
        expect(result.epoch).toMatch(/^[a-z]{8}$/);
        return result.publications.map((p) => p.offset);
      };
      const position = await raw.call('history', { channel, limit: 0 });
      const { epoch } = position.history as { epoch: string };
      expect(position.history).toEqual({ publications: [], epoch, offset: 12 });
      expect(await offsets({})).toEqual([]);
      expect(await offsets({ limit: -1 })).toEqual(range(1, 7));
      expect(await offsets({ limit: 100 })).toEqual(range(1, 7));
      expect(await offsets({ limit: 3 })).toEqual([1, 2, 3]);
      expect(await offsets({ limit: 3, reverse: true })).toEqual([12, 11, 10]);
      expect(await offsets({ limit: -1, reverse: true })).toEqual([12, 11, 10, 9, 8, 7, 6]);
      expect(await offsets({ limit: 2, since: { offset: 4, epoch } })).toEqual([5, 6]);
      expect(await offsets({ limit: -1, since: { offset: 10 } })).toEqual([11, 12]);
      expect(await offsets({ limit: -1, since: { offset: 4, epoch }, reverse: true })).toEqual([3, 2, 1]);
      expect(await offsets({ limit: -1, since: { offset: 12, epoch } })).toEqual([]);
      const wrong = await raw.call('history', { channel, limit: 1, since: { offset: 1, epoch: 'zzzzzzzz' } });
      expect(wrong).toEqual({ id: wrong.id, error: { code: 112, message: 'unrecoverable position' } });

      const full = await raw.call('history', { channel, limit: 1 });
      expect((full.history as { publications: Pub[] }).publications[0]).toMatchObject({
        data: { n: 1 },
        offset: 1,
        epoch,
        info: { user: 'publisher', client: expect.any(String) },
      });
      raw.close();
    });

    it('history of a channel never published → no publications, offset 0, all three fields present', async () => {
      const raw = await rawConnected();
      const reply = await raw.call('history', { channel: uniqueChannel('empty'), limit: -1 });
      expect(reply.history).toEqual({ publications: [], epoch: expect.any(String), offset: 0 });
      raw.close();
    });
  });
});
