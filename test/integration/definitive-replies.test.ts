/**
 * Issue 12, part 2, "replies that are definitive": an error reply means never committed, and
 * a publish that committed gets its success reply even when its ack was lost.
 *
 *  - tidings_abandon (migrations/0003) against the worker's commit: under the stream row
 *    lock, a job is either found decided (committed: its offsets come back) or cancelled,
 *    and a cancelled job never commits afterwards, whoever runs it; exactly one wins a race;
 *  - end to end, a gateway whose Redis connections are cut while a worker commits its
 *    publications answers them with success: at once when its ack topic is back (a read-only
 *    look in PostgreSQL), or at the publish timeout (the abandon finds them committed).
 *
 * The other half, a publish timed out by the gateway is never found in history afterwards, is
 * test/faults/publish-timeout.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { persistBatch, removeHistory } from '../../src/db/repos/publications.js';
import { abandonJob, findCommitted, type Claim, type JobOrder } from '../../src/db/repos/streams.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { call, API_KEY } from '../helpers/api.js';
import { TcpProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor, within } from '../helpers/wait.js';

/** Long enough for a worker to start and commit after the gateway was cut off Redis. */
const TIMEOUT_MS = 6000;

function pub(channel: string, extra: Partial<NewPublication> = {}): NewPublication {
  return { id: randomUUID(), channel, data: '{"n":1}', ...extra };
}

function order(stream: string, seq: number): JobOrder {
  return { stream, seq, skipGap: false };
}

function claims(batch: NewPublication[]): Claim[] {
  return batch.map((p) => ({ id: p.id, channel: p.channel, idempotencyKey: p.idempotencyKey }));
}

async function stored(database: Database, channel: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ id: string }>(
    'select id from publications where channel = $1 order by "offset"',
    [channel],
  );
  return rows.map((r) => r.id);
}

async function lastSeq(database: Database, stream: string): Promise<number | undefined> {
  const { rows } = await database.pool.query<{ last_seq: number }>('select last_seq from ingest_streams where stream = $1', [stream]);
  return rows[0]?.last_seq;
}

describe('tidings_abandon: a job is committed or cancelled, never both', () => {
  const stack = new TestStack();
  let database: Database;

  beforeAll(() => {
    database = openDatabase(stack.databaseUrl);
  });
  afterAll(() => database.close());

  it('cancels an undecided job: a worker that runs it later stores nothing and refuses it', async () => {
    const channel = uniqueChannel('cancel');
    const stream = `s-${randomUUID()}`;
    await persistBatch(database.db, [pub(channel)], order(stream, 1));
    const late = [pub(channel), pub(channel)];
    const decision = await abandonJob(database.db, stream, 2, claims(late), 5000);
    expect(decision).toEqual({ cancelled: true, committed: new Map() });
    const run = await persistBatch(database.db, late, order(stream, 2));
    expect(run.rejected.map((r) => r.why)).toEqual(['turn passed', 'turn passed']);
    expect(await stored(database, channel)).toHaveLength(1);
  });

  it('finds a committed job with its offsets and epoch, and changes nothing', async () => {
    const channel = uniqueChannel('found');
    const stream = `s-${randomUUID()}`;
    const batch = [pub(channel), pub(channel)];
    const run = await persistBatch(database.db, batch, order(stream, 1));
    const decision = await abandonJob(database.db, stream, 1, claims(batch), 5000);
    expect(decision.cancelled).toBe(false);
    expect([...decision.committed]).toEqual(run.results.map((r) => [r.id, { offset: r.offset, epoch: r.epoch }]));
    expect(await lastSeq(database, stream)).toBe(1);
  });

  it('ends the earlier undecided jobs of the stream too, and the next job commits without waiting', async () => {
    const channel = uniqueChannel('earlier');
    const stream = `s-${randomUUID()}`;
    const jobs = [1, 2, 3].map(() => [pub(channel)]);
    expect((await abandonJob(database.db, stream, 3, claims(jobs[2]!), 5000)).cancelled).toBe(true);
    for (const [i, batch] of jobs.entries()) {
      const run = await persistBatch(database.db, batch, order(stream, i + 1));
      expect(run.rejected, `job ${i + 1}`).toEqual([{ id: batch[0]!.id, why: 'turn passed' }]);
    }
    const next = await persistBatch(database.db, [pub(channel)], order(stream, 4));
    expect(next.results[0]?.offset).toBe(1);
    // Asked again, the same answer for every publication (the job is decided now).
    expect(await abandonJob(database.db, stream, 3, claims(jobs[2]!), 5000)).toEqual({ cancelled: false, committed: new Map() });
  });

  it('finds what history_remove removed, and an idempotency key used before on the channel', async () => {
    const channel = uniqueChannel('removed');
    const stream = `s-${randomUUID()}`;
    const keyed = pub(channel, { idempotencyKey: 'order-7' });
    const run = await persistBatch(database.db, [keyed], order(stream, 1));
    await removeHistory(database.db, channel, order(stream, 2));
    const again = pub(channel, { idempotencyKey: 'order-7' });
    const decision = await abandonJob(database.db, stream, 3, claims([keyed, again]), 5000);
    const at = { offset: run.results[0]!.offset, epoch: run.results[0]!.epoch };
    expect(decision.committed).toEqual(new Map([[keyed.id, at], [again.id, at]]));
  });

  it('a history_remove that ran is found by its id at the position it removed up to; one that never ran is cancelled', async () => {
    const channel = uniqueChannel('removal');
    const stream = `s-${randomUUID()}`;
    const first = await persistBatch(database.db, [pub(channel), pub(channel)], order(stream, 1));
    const ran = randomUUID();
    const position = await removeHistory(database.db, channel, order(stream, 2), ran);
    expect(position.top).toBe(2);
    const found = await abandonJob(database.db, stream, 2, [{ id: ran, channel }], 5000);
    expect(found).toEqual({ cancelled: false, committed: new Map([[ran, { offset: 2, epoch: first.results[0]!.epoch }]]) });
    expect(await findCommitted(database.db, [{ id: ran, channel }], 5000)).toEqual(found.committed);

    // Job 4, a removal the gateway gave up on before any worker ran it: cancelled, and the
    // worker that runs it later removes nothing.
    await persistBatch(database.db, [pub(channel)], order(stream, 3));
    const never = randomUUID();
    const cancelled = await abandonJob(database.db, stream, 4, [{ id: never, channel }], 5000);
    expect(cancelled).toEqual({ cancelled: true, committed: new Map() });
    await removeHistory(database.db, channel, order(stream, 4), never);
    expect(await findCommitted(database.db, [{ id: never, channel }], 5000)).toEqual(new Map());
    const left = await database.pool.query('select count(*)::int as n from publications where channel = $1', [channel]);
    expect(left.rows[0].n, 'the late removal removed nothing').toBe(1);
  });

  it('racing a worker\'s commit of the same job, exactly one of "committed" and "cancelled" wins', async () => {
    const channel = uniqueChannel('race');
    let commits = 0;
    for (let round = 0; round < 40; round++) {
      const stream = `s-${randomUUID()}`;
      const batch = [pub(channel, { data: `{"r":${round}}` }), pub(channel, { data: `{"r":${round}}` })];
      // The abandon takes three round trips before its call, the commit one: on odd rounds
      // the commit starts a little later, so each side wins some.
      const lag = round % 2 === 1 ? 1 + Math.random() * 3 : 0;
      const [run, decision] = await Promise.all([
        new Promise((r) => setTimeout(r, lag)).then(() => persistBatch(database.db, batch, order(stream, 1))),
        abandonJob(database.db, stream, 1, claims(batch), 5000),
      ]);
      const committed = run.rejected.length === 0;
      if (committed) commits++;
      expect(decision.cancelled, `round ${round}`).toBe(!committed);
      expect(decision.committed.size, `round ${round}`).toBe(committed ? 2 : 0);
      const rows = await database.pool.query('select count(*)::int as n from publications where id = any($1::uuid[])', [
        batch.map((p) => p.id),
      ]);
      expect(rows.rows[0].n, `round ${round}`).toBe(committed ? 2 : 0);
    }
    console.log(`[race] the commit won ${commits} of 40 rounds, the abandon the rest`);
  });

  it('waits for a worker transaction on the stream; bounded by its timeout, when it gives up it changed nothing', async () => {
    const stream = `s-${randomUUID()}`;
    const channel = uniqueChannel('locked');
    await persistBatch(database.db, [pub(channel)], order(stream, 1));
    const worker = await database.pool.connect();
    try {
      await worker.query('begin');
      await worker.query('select last_seq from ingest_streams where stream = $1 for update', [stream]);
      const started = Date.now();
      await expect(abandonJob(database.db, stream, 2, claims([pub(channel)]), 300)).rejects.toThrow();
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const waiting = abandonJob(database.db, stream, 2, claims([pub(channel)]), 5000);
      let done = false;
      void waiting.then(() => (done = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(done, 'waits while the stream row is locked').toBe(false);
      await worker.query('commit');
      expect((await waiting).cancelled).toBe(true);
    } finally {
      worker.release();
    }
  });

  it('the read-only look finds what is committed and decides nothing', async () => {
    const channel = uniqueChannel('look');
    const stream = `s-${randomUUID()}`;
    const done = [pub(channel)];
    await persistBatch(database.db, done, order(stream, 1));
    const queued = [pub(channel)];
    const found = await findCommitted(database.db, claims([...done, ...queued]), 5000);
    expect([...found.keys()]).toEqual([done[0]!.id]);
    expect(await lastSeq(database, stream)).toBe(1);
    const run = await persistBatch(database.db, queued, order(stream, 2));
    expect(run.rejected, 'the job looked at still commits').toEqual([]);
  });
});

/**
 * A gateway whose Redis is reached through a proxy (so its pub/sub can be cut on demand) and
 * a worker that reaches Redis directly: the worker commits and publishes the acks while the
 * gateway cannot hear them.
 */
describe('a publish whose ack is lost but which committed is answered with success', () => {
  let proxy: TcpProxy;
  const stacks: TestStack[] = [];

  beforeAll(async () => {
    proxy = new TcpProxy([Number(new URL(new TestStack().redisUrl).port)]);
    await proxy.listen();
  });
  afterAll(async () => {
    for (const stack of stacks) await stack.close();
    await proxy.close();
  });

  /** A gateway behind the proxy (no worker yet), a connected client and a channel. */
  async function setUp(publishTimeoutMs: number) {
    // Several jobs in flight, so the second publish goes out without waiting for the first's ack.
    const stack = new TestStack({ env: { TIDINGS_PARTITIONS: '1', TIDINGS_INFLIGHT_JOBS: '4', TIDINGS_API_KEY: API_KEY } });
    stacks.push(stack);
    const redisUrl = new URL(stack.redisUrl);
    redisUrl.port = String(proxy.port);
    const gateway = await stack.gateway({
      REDIS_URL: redisUrl.toString(),
      TIDINGS_PUBLISH_TIMEOUT_MS: String(publishTimeoutMs),
    });
    const client = await RawClient.open(wsUrl(gateway.port));
    await client.connect(await token('pub'));
    return { stack, gateway, client, channel: uniqueChannel('lostack') };
  }

  /** Publishes over the socket and the API, waits until both are queued, then cuts the gateway off Redis. */
  async function publishThenCut(s: Awaited<ReturnType<typeof setUp>>) {
    const id = s.client.command('publish', { channel: s.channel, data: { via: 'ws' } });
    const api = call<{ offset: number; epoch: string }>(s.gateway.port, 'publish', { channel: s.channel, data: { via: 'api' } });
    api.catch(() => {});
    await waitFor('both publishes to be queued', async () => (await s.stack.jobCount(['wait'])) === 2);
    proxy.block();
    return { reply: s.client.reply(id, 30_000), api };
  }

  async function commitWithoutTheGateway(s: Awaited<ReturnType<typeof setUp>>, database: Database) {
    await s.stack.worker();
    await waitFor('the worker to commit both', async () => (await stored(database, s.channel)).length === 2, {
      timeoutMs: 15_000,
    });
  }

  it('at once when the ack topic is back (read-only look in PostgreSQL), long before the timeout', async () => {
    const s = await setUp(60_000);
    const database = openDatabase(s.stack.databaseUrl);
    try {
      const { reply, api } = await publishThenCut(s);
      await commitWithoutTheGateway(s, database);
      await new Promise((r) => setTimeout(r, 300)); // the acks are published into the void
      proxy.unblock();
      const started = Date.now();
      expect((await reply).error, 'the client publish succeeds').toBeUndefined();
      const result = await within('the API publish result', api, 15_000);
      expect([1, 2]).toContain(result.offset);
      expect(Date.now() - started, 'answered after the reconnect, not at the 60 s timeout').toBeLessThan(10_000);
    } finally {
      proxy.unblock();
      s.client.close();
      await database.close();
    }
  });

  it('at the publish timeout, when the ack topic is still cut (the abandon finds the job committed)', async () => {
    const s = await setUp(TIMEOUT_MS);
    const database = openDatabase(s.stack.databaseUrl);
    try {
      const { reply, api } = await publishThenCut(s);
      await commitWithoutTheGateway(s, database);
      const answer = await reply;
      expect(answer.error, 'the client publish succeeds though its ack never came').toBeUndefined();
      const result = await within('the API publish result', api, 15_000);
      expect([1, 2]).toContain(result.offset);
    } finally {
      proxy.unblock();
      s.client.close();
      await database.close();
    }
  });
});
