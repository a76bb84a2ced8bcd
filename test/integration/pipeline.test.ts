/**
 * Guarantees 2, 3 and 4 end to end: publishers and subscribers on two gateways, two
 * workers, one channel. Every subscriber sees offsets 1..N exactly once and in order, and
 * each publisher's messages keep the order in which it sent them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { connected, expectContiguous, subscribed, waitForCount } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';

const PUBLISHERS = 3;
const PER_PUBLISHER = 300;
const TOTAL = PUBLISHERS * PER_PUBLISHER;

describe('durable pipeline', () => {
  const stack = new TestStack();
  let ports: number[] = [];

  beforeAll(async () => {
    const gateways = await Promise.all([stack.gateway(), stack.gateway()]);
    await Promise.all([stack.worker(), stack.worker()]);
    ports = gateways.map((g) => g.port);
  });
  afterAll(() => stack.close());

  it('delivers 3 × 300 publications through 2 gateways and 2 workers exactly once, in order', async () => {
    const channel = uniqueChannel('pipeline');
    const subscribers = await Promise.all(
      [0, 1, 0, 1].map(async (g, i) => subscribed(wsUrl(ports[g]!), await token(`sub${i}`), channel)),
    );
    const publishers = await Promise.all(
      Array.from({ length: PUBLISHERS }, async (_, p) => connected(wsUrl(ports[p % 2]!), await token(`pub${p}`))),
    );

    // Each publisher sends all its messages without waiting for replies: they are in flight
    // together, so ordering is the server's job, not the client's.
    await Promise.all(
      publishers.map((client, p) =>
        Promise.all(Array.from({ length: PER_PUBLISHER }, (_, seq) => client.publish(channel, { p, seq }))),
      ),
    );

    for (const [i, s] of subscribers.entries()) {
      await waitForCount(s, TOTAL, `subscriber ${i}`);
      expect(expectContiguous(s.offsets(), TOTAL)).toBeUndefined();
      for (let p = 0; p < PUBLISHERS; p++) {
        const seqs = s.received.map((r) => r.data as { p: number; seq: number }).filter((d) => d.p === p).map((d) => d.seq);
        expect(seqs).toEqual(Array.from({ length: PER_PUBLISHER }, (_, k) => k));
      }
    }

    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    const { rows } = await db.query('select count(*)::int as n, min("offset")::int as lo, max("offset")::int as hi from publications where channel = $1', [channel]);
    await db.end();
    expect(rows[0]).toEqual({ n: TOTAL, lo: 1, hi: TOTAL });

    for (const c of [...subscribers.map((s) => s.client), ...publishers]) c.disconnect();
  });

  it('answers history forward, reverse and with since, from the cache and from PostgreSQL', async () => {
    const channel = uniqueChannel('history');
    const client = await connected(wsUrl(ports[0]!), await token());
    await Promise.all(Array.from({ length: 20 }, (_, n) => client.publish(channel, { n })));

    const forward = await client.history(channel, { limit: 5 });
    expect(forward.publications.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(forward.offset).toBe(20);
    expect(forward.epoch).toMatch(/^[a-z]{8}$/);

    const reverse = await client.history(channel, { limit: 3, reverse: true });
    expect(reverse.publications.map((p) => p.offset)).toEqual([20, 19, 18]);

    const since = await client.history(channel, { limit: -1, since: { offset: 15, epoch: forward.epoch } });
    expect(since.publications.map((p) => p.offset)).toEqual([16, 17, 18, 19, 20]);

    const positionOnly = await client.history(channel, {});
    expect(positionOnly.publications).toEqual([]);
    expect(positionOnly.offset).toBe(20);

    await expect(client.history(channel, { limit: 1, since: { offset: 1, epoch: 'otherepo' } })).rejects.toMatchObject({
      code: 112,
    });
    client.disconnect();
  });
});
