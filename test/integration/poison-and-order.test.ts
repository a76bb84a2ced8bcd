/**
 * Issue 9, the holes in the durable path:
 *  - one API call with a key PostgreSQL refuses (NUL, ~3 KB, lone surrogates) used to stall
 *    a whole partition forever: now it is a 107 at the edge, and a bad publication that
 *    still reaches a worker fails alone while the rest of its batch commits;
 *  - publisher order is a PostgreSQL invariant (per-gateway, per-partition job numbers),
 *    so no Redis state can let a later job of a connection commit before an earlier one;
 *  - a re-run job never stores its publications again, not even after history_remove,
 *    and a re-run history_remove never deletes what came after it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAcks, type Ack } from '../../src/ingest/acks.js';
import { makeKeys, partitionOf, partitionQueueName } from '../../src/bus/keys.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { persistBatch, removeHistory } from '../../src/db/repos/publications.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { OrderGap, type JobOrder } from '../../src/db/repos/streams.js';
import { INGEST_JOB_NAME, type IngestJob } from '../../src/ingest/job.js';
import { createLogger } from '../../src/observability/logger.js';
import { inTurn } from '../../src/persist/order.js';
import { isTransient } from '../../src/persist/retry.js';
import { call, callError } from '../helpers/api.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const permanent = (err: unknown) => !isTransient(err);

function pub(channel: string, extra: Partial<NewPublication> = {}): NewPublication {
  return { id: randomUUID(), channel, data: '{"n":1}', ...extra };
}

function order(stream: string, seq: number, skipGap = false): JobOrder {
  return { stream, seq, skipGap };
}

async function storedOffsets(database: Database, channel: string): Promise<{ offset: number; data: string }[]> {
  const { rows } = await database.pool.query<{ offset: number; data: string }>(
    'select "offset", data from publications where channel = $1 order by "offset"',
    [channel],
  );
  return rows;
}

describe('poison publications and PostgreSQL-enforced order', () => {
  const stack = new TestStack();
  let database: Database;
  let port: number;

  beforeAll(async () => {
    const gw = await stack.gateway({ TIDINGS_API_KEY: 'test-api-key-0123456789abcdef-0123456789' });
    port = gw.port;
    await stack.worker();
    database = openDatabase(stack.databaseUrl);
  });
  afterAll(async () => {
    await database?.close();
    await stack.close();
  });

  /**
   * Plays a gateway by hand: adds jobs straight to the channel's partition queue and hears the
   * worker's acks on its own ack topic, so a test can build jobs no real gateway would send.
   */
  async function asGateway(
    channel: string,
    body: (gw: { queue: Queue; gatewayId: string; heard: Ack[] }) => Promise<void>,
  ): Promise<void> {
    const redis = new Redis(stack.redisUrl);
    const acks = new Redis(stack.redisUrl);
    const gatewayId = `gw-test-${randomUUID()}`;
    const heard: Ack[] = [];
    await acks.subscribe(makeKeys(stack.prefix).acks(gatewayId));
    acks.on('message', (_topic, message: string) => heard.push(...decodeAcks(message)));
    const queue = new Queue(partitionQueueName(partitionOf(channel, 4)), { connection: redis, prefix: stack.prefix });
    try {
      await body({ queue, gatewayId, heard });
    } finally {
      await queue.close();
      redis.disconnect();
      acks.disconnect();
    }
  }

  it('idempotency keys PostgreSQL cannot store or index are a 107, and the partition keeps committing', async () => {
    const channel = uniqueChannel('poison');
    const bad = ['a\u0000b', 'k'.repeat(3000), 'x\ud800', 'x\udbff', '\udc00y'];
    for (const key of bad) {
      const error = await callError(port, 'publish', { channel, data: {}, idempotency_key: key });
      expect(error.code, JSON.stringify(key.slice(0, 8))).toBe(107);
    }
    // The same partition (same channel) still commits at once, in order.
    const results = [];
    for (let n = 1; n <= 3; n++) results.push(await call<{ offset: number }>(port, 'publish', { channel, data: { n } }));
    expect(results.map((r) => r.offset)).toEqual([1, 2, 3]);
    // A key with a proper surrogate pair is fine and deduplicates.
    const first = await call<{ offset: number }>(port, 'publish', { channel, data: {}, idempotency_key: 'emoji-😀' });
    const again = await call<{ offset: number }>(port, 'publish', { channel, data: {}, idempotency_key: 'emoji-😀' });
    expect(again.offset).toBe(first.offset);
  });

  it('hostile strings through the client protocol never reach PostgreSQL raw, and the partition keeps committing', async () => {
    const channel = uniqueChannel('wspoison');
    const client = await RawClient.open(wsUrl(port));
    try {
      await client.connect(await token('alice'));
      // Data is re-encoded as JSON (NUL and lone surrogates become escapes), so it commits
      // and comes back exactly as sent; a channel name with NUL or a lone surrogate is refused.
      const hostile = ['a\u0000b', 'x\ud800', '\udc00y', 'k'.repeat(3000)];
      for (const text of hostile) {
        const reply = await client.call('publish', { channel, data: { text } });
        expect(reply.error, JSON.stringify(text.slice(0, 8))).toBeUndefined();
      }
      for (const name of [`${channel}\u0000x`, `${channel}\ud800`]) {
        const reply = await client.call('publish', { channel: name, data: {} });
        expect((reply.error as { code: number } | undefined)?.code).toBe(107);
      }
      const history = await client.call('history', { channel, limit: -1 });
      const pubs = (history.history as { publications: { data: { text: string } }[] }).publications;
      expect(pubs.map((p) => p.data.text)).toEqual(hostile);
      const next = await call<{ offset: number }>(port, 'publish', { channel, data: { n: 5 } });
      expect(next.offset).toBe(5);
    } finally {
      client.close();
    }
  });

  it('a poison publication inside a queued batch fails alone: its publisher gets 107, the rest commit contiguously', async () => {
    const channel = uniqueChannel('batch');
    await asGateway(channel, async ({ queue, gatewayId, heard }) => {
      const good1 = pub(channel, { data: '{"n":1}' });
      const poison = pub(channel, { data: '{"n":2}', idempotencyKey: 'a\u0000b' });
      const good2 = pub(channel, { data: '{"n":3}' });
      const job: IngestJob = { g: gatewayId, p: [good1, poison, good2], s: 1 };
      await queue.add(INGEST_JOB_NAME, job);
      await waitFor('acks for the whole batch', () => heard.length === 3, { timeoutMs: 10_000 });
      const byId = new Map(heard.map((a) => [a[0], a]));
      expect(byId.get(good1.id)?.[1]).toBe(1);
      expect(byId.get(good2.id)?.[1]).toBe(2);
      expect(byId.get(poison.id)?.[3]).toBe(107);
      expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['{"n":1}', '{"n":3}']);
      // And the partition is not stalled.
      const next = await call<{ offset: number }>(port, 'publish', { channel, data: { n: 4 } });
      expect(next.offset).toBe(3);
    });
  });

  it('jobs of one gateway that reach the queue out of order are committed in their stream order (worker end to end)', async () => {
    const channel = uniqueChannel('reversed');
    await asGateway(channel, async ({ queue, gatewayId, heard }) => {
      // What Redis losing its lists can produce: job 2 of a stream is queued before job 1.
      // The worker takes both at once; job 2 waits for job 1's turn, in the same group.
      const second = pub(channel, { data: '"second"' });
      const first = pub(channel, { data: '"first"' });
      await queue.add(INGEST_JOB_NAME, { g: gatewayId, p: [second], s: 2 } satisfies IngestJob);
      await queue.add(INGEST_JOB_NAME, { g: gatewayId, p: [first], s: 1 } satisfies IngestJob);
      await waitFor('both jobs to be answered', () => heard.length === 2, { timeoutMs: 10_000 });
      const byId = new Map(heard.map((a) => [a[0], a]));
      expect(byId.get(first.id)?.[1]).toBe(1);
      expect(byId.get(second.id)?.[1]).toBe(2);
      expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['"first"', '"second"']);
    });
  });

  it('a job whose predecessor never comes commits after the wait, and the predecessor arriving late is refused', async () => {
    const channel = uniqueChannel('late');
    await asGateway(channel, async ({ queue, gatewayId, heard }) => {
      const second = pub(channel, { data: '"second"' });
      const first = pub(channel, { data: '"first"' });
      await queue.add(INGEST_JOB_NAME, { g: gatewayId, p: [second], s: 2 } satisfies IngestJob);
      await waitFor('job 2 to go ahead without job 1', () => heard.length === 1, { timeoutMs: 10_000 });
      expect(heard[0]).toEqual([second.id, 1, expect.any(String)]);
      await queue.add(INGEST_JOB_NAME, { g: gatewayId, p: [first], s: 1 } satisfies IngestJob);
      await waitFor('job 1 to be answered', () => heard.length === 2, { timeoutMs: 10_000 });
      // Its turn passed: committing it now would put it after job 2.
      expect(heard[1]?.[0]).toBe(first.id);
      expect(heard[1]?.[3]).toBe(100);
      expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['"second"']);
    });
  });

  it('a publication PostgreSQL refuses inside the transaction (index row too big) is rejected alone', async () => {
    const channel = uniqueChannel('toobig');
    const stream = `s-${randomUUID()}`;
    const batch = [pub(channel), pub(channel, { idempotencyKey: randomBytes(6000).toString('base64') }), pub(channel)];
    const outcome = await persistBatch(database.db, batch, order(stream, 1), permanent);
    expect(outcome.rejected).toEqual([{ id: batch[1]!.id, why: 'refused' }]);
    expect(outcome.results.map((r) => r.offset)).toEqual([1, 2]);
    expect((await storedOffsets(database, channel)).map((r) => r.offset)).toEqual([1, 2]);
    // The job's turn was used: the next job of the stream commits without waiting.
    const next = await persistBatch(database.db, [pub(channel)], order(stream, 2), permanent);
    expect(next.results[0]?.offset).toBe(3);
  });

  it('a job waits for the earlier job of its stream, which then commits first', async () => {
    const channel = uniqueChannel('order');
    const stream = `s-${randomUUID()}`;
    const early = pub(channel, { data: '"early"' });
    const late = pub(channel, { data: '"late"' });
    await expect(persistBatch(database.db, [late], order(stream, 2))).rejects.toBeInstanceOf(OrderGap);
    // Job 2 is taken first (as after a FLUSHALL); job 1 arrives 100 ms later.
    const signal = new AbortController().signal;
    const log = createLogger('silent');
    const lateDone = inTurn(order(stream, 2), (o) => persistBatch(database.db, [late], o), { log, signal, waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await persistBatch(database.db, [early], order(stream, 1));
    await lateDone;
    expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['"early"', '"late"']);
  });

  it('a job that waited long enough commits past a lost one, and the lost one never commits', async () => {
    const channel = uniqueChannel('skip');
    const stream = `s-${randomUUID()}`;
    const lost = pub(channel, { data: '"lost"' });
    const later = pub(channel, { data: '"later"' });
    const log = createLogger('silent');
    const signal = new AbortController().signal;
    const started = Date.now();
    await inTurn(order(stream, 2), (o) => persistBatch(database.db, [later], o), { log, signal, waitMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const outcome = await persistBatch(database.db, [lost], order(stream, 1));
    expect(outcome.rejected).toEqual([{ id: lost.id, why: 'turn passed' }]);
    expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['"later"']);
  });

  it('a job marked skipGap (an earlier add failed) does not wait', async () => {
    const channel = uniqueChannel('skipflag');
    const stream = `s-${randomUUID()}`;
    const outcome = await persistBatch(database.db, [pub(channel)], order(stream, 5, true));
    expect(outcome.results[0]?.offset).toBe(1);
  });

  it('a re-run job after history_remove acknowledges its publications again and stores nothing', async () => {
    const channel = uniqueChannel('rerun');
    const stream = `s-${randomUUID()}`;
    const batch = [pub(channel), pub(channel)];
    const first = await persistBatch(database.db, batch, order(stream, 1));
    await removeHistory(database.db, channel, order(stream, 2));
    expect(await storedOffsets(database, channel)).toEqual([]);
    const rerun = await persistBatch(database.db, batch, order(stream, 1));
    expect(rerun.rejected).toEqual([]);
    expect(rerun.results.map((r) => [r.offset, r.fresh])).toEqual(first.results.map((r) => [r.offset, false]));
    expect(await storedOffsets(database, channel)).toEqual([]);
    // Even a job of a stream PostgreSQL has forgotten (no order row) finds them by id.
    const orphan = await persistBatch(database.db, batch, order(`s-${randomUUID()}`, 7, true));
    expect(orphan.results.map((r) => r.fresh)).toEqual([false, false]);
    expect(await storedOffsets(database, channel)).toEqual([]);
  });

  it('a re-run history_remove removes nothing committed after it', async () => {
    const channel = uniqueChannel('rmrerun');
    const stream = `s-${randomUUID()}`;
    await persistBatch(database.db, [pub(channel)], order(stream, 1));
    await removeHistory(database.db, channel, order(stream, 2));
    await persistBatch(database.db, [pub(channel, { data: '"after"' })], order(stream, 3));
    const position = await removeHistory(database.db, channel, order(stream, 2));
    expect(position.top).toBe(2);
    expect((await storedOffsets(database, channel)).map((r) => r.data)).toEqual(['"after"']);
  });

  it('an idempotency key outlives history_remove: the repeat returns the first offset and stores nothing', async () => {
    const channel = uniqueChannel('keyrm');
    const first = await call<{ offset: number }>(port, 'publish', { channel, data: { n: 1 }, idempotency_key: 'order-1' });
    await call(port, 'history_remove', { channel });
    const again = await call<{ offset: number }>(port, 'publish', { channel, data: { n: 1 }, idempotency_key: 'order-1' });
    expect(again.offset).toBe(first.offset);
    expect(await storedOffsets(database, channel)).toEqual([]);
    const fresh = await call<{ offset: number }>(port, 'publish', { channel, data: { n: 2 } });
    expect(fresh.offset).toBe(first.offset + 1);
  });
});
