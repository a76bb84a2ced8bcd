/**
 * src/ingest/client.ts in memory: adaptive batching, publish timeouts, acks, job order.
 *
 * Why a fake queue (STYLE habit 13): the client's decisions hang on the moment an add
 * completes or fails, and real Redis cannot, on demand, hold an add pending while more
 * publishes arrive, or fail one add and not the next. Those moments decide which publications
 * share a job and whether a job carries `x`. The fake is injected with vi.mock('bullmq'), so
 * src/ingest/client.ts runs unchanged; it records what the client asks of a queue, in order.
 * Acks arrive through a fake PubSub as the real worker encodes them (src/ingest/acks.ts).
 * PostgreSQL's decisions on timed-out jobs come from a fake JobOutcomes (src/ingest/outcomes.ts)
 * that records what it is asked and answers as told, or not at all; the real one is covered by
 * test/integration/definitive-replies.test.ts.
 * The real queue path, against Redis and a worker, is covered by test/integration/pipeline.test.ts
 * and poison-and-order.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeKeys, partitionOf } from '../../src/bus/keys.js';
import type { PubSub } from '../../src/bus/pubsub.js';
import { encodeAcks, type Ack } from '../../src/ingest/acks.js';
import { IngestClient, type Committed, type IngestSettings } from '../../src/ingest/client.js';
import type { Abandoned, Claim, Found, JobOutcomes } from '../../src/ingest/outcomes.js';
import type { IngestBundle, IngestJob, HistoryRemoveJob } from '../../src/ingest/job.js';
import { createLogger } from '../../src/observability/logger.js';
import { waitFor } from '../helpers/wait.js';

type Call = { kind: 'concurrency' } | { kind: 'add'; name: string; data: unknown };

/** What the client did with one queue, and a say over how its adds end. */
const fake = vi.hoisted(() => {
  class FakeQueue {
    readonly calls: Call[] = [];
    /** Adds held open until release(); the next `failures` adds fail. */
    private held: (() => void)[] | undefined;
    failures = 0;

    constructor(readonly name: string) {
      fake.queues.push(this);
    }

    on(): this {
      return this;
    }

    async setGlobalConcurrency(): Promise<void> {
      this.calls.push({ kind: 'concurrency' });
    }

    async add(name: string, data: unknown): Promise<{ id: string }> {
      this.calls.push({ kind: 'add', name, data });
      if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
      if (this.failures > 0) {
        this.failures--;
        throw new Error('fake add failure');
      }
      return { id: String(this.calls.length) };
    }

    hold(): void {
      this.held ??= [];
    }

    release(): void {
      const held = this.held ?? [];
      this.held = undefined;
      for (const resolve of held) resolve();
    }

    get jobs(): { name: string; data: unknown }[] {
      return this.calls.flatMap((c) => (c.kind === 'add' ? [{ name: c.name, data: c.data }] : []));
    }

    async getWaitingCount(): Promise<number> {
      return 0;
    }

    async close(): Promise<void> {}
  }
  return { FakeQueue, queues: [] as FakeQueue[] };
});

vi.mock('bullmq', () => ({ Queue: fake.FakeQueue }));

type FakeQueue = InstanceType<typeof fake.FakeQueue>;

const keys = makeKeys('unit');
const log = createLogger('silent');
const clients: IngestClient[] = [];

/** Lets every pending promise chain (adds, acks, pumps) run to its end. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * PostgreSQL as the client sees it: each abandon and lookup is recorded; `stored` holds what
 * is committed (id → position); `down` makes every call fail, as when PostgreSQL cannot be
 * reached.
 */
class FakeOutcomes implements JobOutcomes {
  readonly abandoned: { stream: string; seq: number; ids: string[] }[] = [];
  readonly lookups: string[][] = [];
  readonly stored = new Map<string, Found>();
  down = false;

  async abandon(stream: string, seq: number, claims: Claim[]): Promise<Abandoned> {
    if (this.down) throw new Error('PostgreSQL unreachable');
    this.abandoned.push({ stream, seq, ids: claims.map((c) => c.id) });
    return { cancelled: !claims.some((c) => this.stored.has(c.id)), committed: this.found(claims) };
  }

  async committed(claims: Claim[]): Promise<Map<string, Found>> {
    if (this.down) throw new Error('PostgreSQL unreachable');
    this.lookups.push(claims.map((c) => c.id));
    return this.found(claims);
  }

  private found(claims: Claim[]): Map<string, Found> {
    return new Map(claims.flatMap((c) => (this.stored.has(c.id) ? [[c.id, this.stored.get(c.id)!] as const] : [])));
  }
}

/** `owners`: what the gateway reads as each partition's lease holder (null: no lease). */
async function start(overrides: Partial<IngestSettings> = {}, owners?: (string | null)[]) {
  fake.queues.length = 0;
  let onAcks: ((message: string) => void) | undefined;
  let reconnected: (() => void) | undefined;
  let listens = 0;
  const pubsub = {
    listen: async (_topic: string, handler: (message: string) => void) => {
      onAcks = handler;
      listens++;
    },
    onReconnect: (listener: () => void) => {
      reconnected = listener;
    },
  } as unknown as PubSub;
  const pg = new FakeOutcomes();
  const settings: IngestSettings = {
    partitions: 1,
    batchMax: 100,
    inflightJobs: 1,
    publishTimeoutMs: 4000,
    backlogMax: 1000,
    ...overrides,
  };
  const redis = owners ? { mget: async () => owners } : {};
  const client = new IngestClient(redis as never, pubsub, keys, settings, log, pg);
  clients.push(client);
  await client.start();
  const ack = (acks: Ack[]) => onAcks!(encodeAcks(acks));
  const reconnect = () => reconnected!();
  return { client, queue: fake.queues[0]!, queues: fake.queues.slice(), ack, pg, reconnect, listens: () => listens };
}

/** A publish whose outcome can be read later without an unhandled rejection meanwhile. */
function publish(client: IngestClient, data: string, channel = 'chat') {
  const result = client.publish({ channel, data });
  const outcome = result.then(
    (value): { ok: true; value: Committed } => ({ ok: true, value }),
    (err: unknown): { ok: false; code: number | undefined } => ({ ok: false, code: (err as { error?: { code?: number } }).error?.code }),
  );
  return { result, outcome };
}

function ingestJobs(queue: FakeQueue): IngestJob[] {
  return queue.jobs.filter((j) => j.name === 'publish').map((j) => j.data as IngestJob);
}

/** Data of each publication in each job, in add order. */
function batches(queue: FakeQueue): string[][] {
  return ingestJobs(queue).map((job) => job.p.map((p) => p.data));
}

/** Acks every publication of the job as committed at offsets from `from`. */
function commit(ack: (acks: Ack[]) => void, job: IngestJob, from = 1) {
  ack(job.p.map((p, i) => [p.id, from + i, 'epoch']));
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('ingest client batching', () => {
  it('sends a publication to an idle partition at once, as a job of one', async () => {
    const { client, queue } = await start();
    publish(client, 'a');
    await settle();
    expect(batches(queue)).toEqual([['a']]);
  });

  it('gathers what arrives while the partition is busy into the next job, up to batchMax', async () => {
    const { client, queue, ack } = await start({ batchMax: 3 });
    for (const data of ['a', 'b', 'c', 'd', 'e', 'f']) publish(client, data);
    await settle();
    expect(batches(queue), 'only the first goes while its job awaits its ack').toEqual([['a']]);
    commit(ack, ingestJobs(queue)[0]!);
    await settle();
    expect(batches(queue)).toEqual([['a'], ['b', 'c', 'd']]);
    commit(ack, ingestJobs(queue)[1]!, 2);
    await settle();
    expect(batches(queue)).toEqual([['a'], ['b', 'c', 'd'], ['e', 'f']]);
  });

  it('ends a batch before it passes 4 MiB, and still sends a larger publication alone', async () => {
    const { client, queue, ack } = await start();
    const mib = (n: number, tag: string) => tag + 'x'.repeat(n * 1024 * 1024 - 1);
    publish(client, 'first');
    for (const data of [mib(1.5, 'b'), mib(1.5, 'c'), mib(1.5, 'd'), mib(5, 'e')]) publish(client, data);
    await settle();
    for (let job = 0; job < 4; job++) {
      commit(ack, ingestJobs(queue)[job]!);
      await settle();
    }
    expect(batches(queue).map((batch) => batch.map((data) => data[0]))).toEqual([['f'], ['b', 'c'], ['d'], ['e']]);
  });

  it('keeps up to inflightJobs jobs out per partition, and partitions apart', async () => {
    const [one, other] = channelsOnTwoPartitions();
    const { client, queues } = await start({ partitions: 2, inflightJobs: 2 });
    for (const data of ['a', 'b', 'c']) publish(client, data, one);
    publish(client, 'z', other);
    await settle();
    const [p0, p1] = partitionOf(one, 2) === 0 ? [queues[0]!, queues[1]!] : [queues[1]!, queues[0]!];
    expect(batches(p0)).toEqual([['a'], ['b']]);
    expect(batches(p1), 'a busy partition does not hold up another').toEqual([['z']]);
  });
});

describe('ingest client timeouts', () => {
  it('answers error 100 after publishTimeoutMs: unsent ones are dropped, a sent job is abandoned in PostgreSQL first', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const { client, queue, pg } = await start({ publishTimeoutMs: 1000 });
    const a = publish(client, 'a');
    const b = publish(client, 'b');
    await vi.advanceTimersByTimeAsync(600);
    const c = publish(client, 'c');
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    expect(await a.outcome).toEqual({ ok: false, code: 100 });
    expect(await b.outcome).toEqual({ ok: false, code: 100 });
    expect(batches(queue), 'b expired unsent and is dropped; a freed its slot for c').toEqual([['a'], ['c']]);
    const [jobA, jobC] = ingestJobs(queue);
    expect(pg.abandoned, 'only the job that went out is decided in PostgreSQL').toEqual([
      { stream: `${client.gatewayId}/ingest-0`, seq: 1, ids: jobA!.p.map((p) => p.id) },
    ]);
    expect(client.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(600);
    expect(await c.outcome).toEqual({ ok: false, code: 100 });
    expect(pg.abandoned.map((x) => [x.seq, x.ids])).toEqual([
      [1, jobA!.p.map((p) => p.id)],
      [2, jobC!.p.map((p) => p.id)],
    ]);
    expect(client.pending).toBe(0);
  });

  it('answers success when PostgreSQL finds the timed-out job committed (its ack was lost), one call per job', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const { client, queue, ack, pg } = await start({ publishTimeoutMs: 1000 });
    publish(client, 'first');
    const [a, b, c] = ['a', 'b', 'c'].map((data) => publish(client, data));
    await settle();
    commit(ack, ingestJobs(queue)[0]!);
    await settle();
    const job = ingestJobs(queue)[1]!;
    const [idA, idB] = job.p.map((p) => p.id);
    pg.stored.set(idA!, { offset: 2, epoch: 'e' });
    pg.stored.set(idB!, { offset: 3, epoch: 'e' });
    await vi.advanceTimersByTimeAsync(1200);
    expect(pg.abandoned.map((x) => [x.seq, x.ids.length]), 'the whole job in one call').toEqual([[2, 3]]);
    expect(await a!.outcome).toEqual({ ok: true, value: { offset: 2, epoch: 'e' } });
    expect(await b!.outcome).toEqual({ ok: true, value: { offset: 3, epoch: 'e' } });
    expect(await c!.outcome, 'refused in the same job: never committed').toEqual({ ok: false, code: 100 });
    commit(ack, job, 7);
    expect(await a!.outcome, 'a late ack changes nothing').toEqual({ ok: true, value: { offset: 2, epoch: 'e' } });
  });

  it('gives no reply while PostgreSQL cannot decide, and answers once it does', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const { client, pg } = await start({ publishTimeoutMs: 1000 });
    pg.down = true;
    const a = publish(client, 'a');
    const b = publish(client, 'b');
    let answered = false;
    void a.outcome.then(() => (answered = true));
    await vi.advanceTimersByTimeAsync(1200);
    expect(await b.outcome, 'never sent: a true error at once').toEqual({ ok: false, code: 100 });
    await new Promise((r) => setTimeout(r, 300));
    expect(answered, 'no reply rather than one PostgreSQL did not give').toBe(false);
    expect(client.pending).toBe(1);
    pg.down = false;
    await vi.waitFor(() => expect(pg.abandoned).toHaveLength(1), { timeout: 3000, interval: 20 });
    expect(await a.outcome).toEqual({ ok: false, code: 100 });
  });
});

describe('ingest client after the ack topic reconnects', () => {
  it('subscribes again, then answers from PostgreSQL what committed meanwhile, and decides nothing', async () => {
    const { client, queue, pg, reconnect, listens } = await start({ inflightJobs: 2 });
    const a = publish(client, 'a');
    const b = publish(client, 'b');
    let bAnswered = false;
    void b.outcome.then(() => (bAnswered = true));
    await settle();
    const [jobA, jobB] = ingestJobs(queue);
    pg.stored.set(jobA!.p[0]!.id, { offset: 4, epoch: 'e' });
    reconnect();
    await settle();
    expect(listens(), 'listened again').toBe(2);
    expect(pg.lookups).toEqual([[jobA!.p[0]!.id, jobB!.p[0]!.id]]);
    expect(await a.outcome).toEqual({ ok: true, value: { offset: 4, epoch: 'e' } });
    expect(bAnswered, 'b may still be queued: left to its ack or its timeout').toBe(false);
    expect(pg.abandoned, 'a lookup never cancels a job').toEqual([]);
  });
});

describe('ingest client acks', () => {
  it('resolves and rejects exactly the publications each ack names', async () => {
    const { client, queue, ack } = await start();
    const first = publish(client, 'first');
    const [a, b, c] = ['a', 'b', 'c'].map((data) => publish(client, data));
    await settle();
    commit(ack, ingestJobs(queue)[0]!);
    await settle();
    const [idA, idB, idC] = ingestJobs(queue)[1]!.p.map((p) => p.id);
    ack([['not-ours', 9, 'epoch'], [idC!, 0, '', 107], [idA!, 2, 'epoch']]);
    ack([[idB!, 0, '', 100]]);
    expect(await first.outcome).toEqual({ ok: true, value: { offset: 1, epoch: 'epoch' } });
    expect(await a!.outcome).toEqual({ ok: true, value: { offset: 2, epoch: 'epoch' } });
    expect(await b!.outcome).toEqual({ ok: false, code: 100 });
    expect(await c!.outcome, 'a refused publication hears its own code').toEqual({ ok: false, code: 107 });
    expect(client.pending).toBe(0);
  });

  it('frees the slot only when the last publication of the job is answered', async () => {
    const { client, queue, ack } = await start();
    ['a', 'b', 'c'].forEach((data) => publish(client, data));
    await settle();
    commit(ack, ingestJobs(queue)[0]!);
    await settle();
    publish(client, 'd');
    const [idB, idC] = ingestJobs(queue)[1]!.p.map((p) => p.id);
    ack([[idB!, 2, 'epoch']]);
    await settle();
    expect(batches(queue), 'c is not answered yet').toEqual([['a'], ['b', 'c']]);
    ack([[idC!, 3, 'epoch']]);
    await settle();
    expect(batches(queue)).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('answers 111 at once when the partition backlog is full', async () => {
    const { client } = await start({ backlogMax: 2 });
    ['a', 'b', 'c'].forEach((data) => publish(client, data));
    expect(await publish(client, 'd').outcome).toEqual({ ok: false, code: 111 });
  });

  it('queues a flow-controlled publish past the bound: it waited for room first (issue 12)', async () => {
    const { client, queue, ack } = await start({ backlogMax: 2 });
    ['a', 'b', 'c'].forEach((data) => publish(client, data));
    expect(client.backlogOf('chat'), 'a went alone; b and c wait').toBe(2);
    const late = client.publish({ channel: 'chat', data: 'd' }, true);
    expect(client.backlogOf('chat')).toBe(3);
    await settle();
    commit(ack, ingestJobs(queue)[0]!);
    await settle();
    commit(ack, ingestJobs(queue)[1]!, 2);
    expect(await late).toMatchObject({ offset: 4 });
  });
});

describe('ingest client job order', () => {
  it('numbers the jobs of a partition 1, 2, 3, one round trip (one add) each', async () => {
    const { client, queue, ack } = await start();
    for (const data of ['a', 'b', 'c']) {
      publish(client, data);
      await settle();
      commit(ack, ingestJobs(queue).at(-1)!);
    }
    await settle();
    expect(ingestJobs(queue).map((j) => [j.s, j.x, j.g])).toEqual([
      [1, undefined, client.gatewayId],
      [2, undefined, client.gatewayId],
      [3, undefined, client.gatewayId],
    ]);
    expect(queue.calls.map((c) => c.kind)).toEqual(['add', 'add', 'add']);
  });

  it('adds a job only after the previous add completed, so queue order is accept order', async () => {
    const { client, queue } = await start({ inflightJobs: 3 });
    queue.hold();
    ['a', 'b', 'c'].forEach((data) => publish(client, data));
    await settle();
    expect(batches(queue), 'b and c wait for the add of a').toEqual([['a']]);
    queue.release();
    await settle();
    expect(batches(queue)).toEqual([['a'], ['b'], ['c']]);
  });

  it('marks the job after a failed add with x, decides the lost job in PostgreSQL at once, and goes on', async () => {
    const { client, queue, ack, pg } = await start({ inflightJobs: 3 });
    queue.hold();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((data) => publish(client, data));
    await settle();
    queue.failures = 1;
    queue.release();
    await settle();
    expect(await a!.outcome, 'its add failed, and PostgreSQL cancelled the job').toEqual({ ok: false, code: 100 });
    expect(pg.abandoned.map((x) => x.seq)).toEqual([1]);
    const jobs = ingestJobs(queue);
    expect(jobs.map((j) => [j.p.map((p) => p.data), j.s, j.x])).toEqual([
      [['a'], 1, undefined],
      [['b'], 2, true],
      [['c'], 3, undefined],
      [['d'], 4, undefined],
    ]);
    for (const job of jobs.slice(1)) commit(ack, job);
    for (const pub of [b, c, d]) expect((await pub!.outcome).ok).toBe(true);
  });

  it('decides a job whose add failed only at its timeout while an earlier job is still open', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const { client, queue, pg } = await start({ inflightJobs: 3, publishTimeoutMs: 1000 });
    const a = publish(client, 'a');
    await settle();
    queue.failures = 1;
    const b = publish(client, 'b');
    await settle();
    expect(pg.abandoned, 'abandoning job 2 would also end job 1, which still has time').toEqual([]);
    await vi.advanceTimersByTimeAsync(1200);
    expect(await a.outcome).toEqual({ ok: false, code: 100 });
    expect(await b.outcome).toEqual({ ok: false, code: 100 });
    expect(pg.abandoned.map((x) => x.seq).sort()).toEqual([1, 2]);
  });

  it('sends a history removal alone, between the publications accepted before and after it', async () => {
    const { client, queue, ack } = await start();
    publish(client, 'first');
    publish(client, 'a');
    publish(client, 'b');
    const removed = client.removeHistory('chat');
    publish(client, 'c');
    await settle();
    for (let job = 0; job < 3; job++) {
      const last = queue.jobs.at(-1)!;
      if (last.name === 'publish') commit(ack, last.data as IngestJob);
      else ack([[(last.data as HistoryRemoveJob).i, 7, 'epoch']]);
      await settle();
    }
    expect(queue.jobs.map((j) => (j.name === 'publish' ? (j.data as IngestJob).p.map((p) => p.data) : j.name))).toEqual([
      ['first'],
      ['a', 'b'],
      'history_remove',
      ['c'],
    ]);
    expect((queue.jobs[2]!.data as HistoryRemoveJob).channel).toBe('chat');
    expect(queue.jobs.map((j) => (j.data as { s: number }).s)).toEqual([1, 2, 3, 4]);
    await expect(removed).resolves.toEqual({ offset: 7, epoch: 'epoch' });
  });
});

describe('ingest client bundles', () => {
  /** A channel name on each of `n` partitions, by partition. */
  const channelsOn = (n: number) =>
    Array.from({ length: n }, (_, p) => {
      for (let i = 0; ; i++) if (partitionOf(`room:${i}`, n) === p) return `room:${i}`;
    });
  const bundlesOn = (queue: FakeQueue) => queue.jobs.filter((j) => j.name === 'publish-bundle').map((j) => j.data as IngestBundle);
  const parts = (bundle: IngestBundle) => bundle.b.map((part) => [part.q, part.s, part.p.map((p) => p.data)]);
  /** Acks every publication of every job so far (bundles too) as committed, as one ack message. */
  const ackAll = (ack: (acks: Ack[]) => void, queues: FakeQueue[]) =>
    ack(
      queues.flatMap((q) =>
        q.jobs.flatMap((j) => {
          const batches = j.name === 'publish-bundle' ? (j.data as IngestBundle).b : j.name === 'publish' ? [j.data as IngestJob] : [];
          return batches.flatMap((batch) => batch.p.map((p, i): Ack => [p.id, i + 1, 'epoch']));
        }),
      ),
    );

  it("keeps one job out per gateway, the owners in turn: each owner's partitions gather meanwhile, then leave together, each batch in its own stream", async () => {
    const channels = channelsOn(4);
    const { client, queues, ack } = await start({ partitions: 4 }, ['w1', 'w1', 'w2', 'w2']);
    const outcomes = channels.map((channel, p) => publish(client, `first-${p}`, channel).outcome);
    for (const [p, channel] of channels.entries()) for (const n of [1, 2]) outcomes.push(publish(client, `${p}.${n}`, channel).outcome);
    await settle();
    expect(
      queues.map((q) => batches(q)),
      "the first publication goes at once; every other partition waits for the gateway's slot",
    ).toEqual([[['first-0']], [], [], []]);

    const placed = () => queues.flatMap((q, at) => bundlesOn(q).map((bundle) => ({ at, bundle })));
    const answer = (bundle: IngestBundle) => ack(bundle.b.flatMap((part) => part.p.map((p, i): Ack => [p.id, 10 + i, 'epoch'])));
    ackAll(ack, queues);
    await settle();
    // w1 took the first job, so the slot goes to w2, on the queue of one of its partitions;
    // w1's partitions wait for their turn.
    expect(placed().map((b) => [b.at, parts(b.bundle)])).toEqual([
      [
        2,
        [
          [2, 1, ['first-2', '2.1', '2.2']],
          [3, 1, ['first-3', '3.1', '3.2']],
        ],
      ],
    ]);
    expect(batches(queues[0]!)).toEqual([['first-0']]);

    // Each publication of a bundle is answered by its own ack; once all are, w1 has its turn.
    answer(placed()[0]!.bundle);
    await settle();
    const second = placed().find((b) => b.at !== 2)!;
    expect([second.at, parts(second.bundle)]).toEqual([
      1,
      [
        [0, 2, ['0.1', '0.2']],
        [1, 1, ['first-1', '1.1', '1.2']],
      ],
    ]);
    answer(second.bundle);
    const results = await Promise.all(outcomes);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(client.pending).toBe(0);

    // The slot is free again once all the bundle's batches are answered: a publish goes at once.
    publish(client, 'later', channels[1]!);
    await settle();
    expect(batches(queues[1]!)).toEqual([['later']]);
  });

  it("gives an owner with 256 publications waiting a job of its own while the gateway's slot is taken, one per owner", async () => {
    const channels = channelsOn(2);
    const { client, queues } = await start({ partitions: 2, batchMax: 1000 }, ['w1', 'w2']);
    publish(client, 'first-0', channels[0]!);
    for (let n = 1; n <= 255; n++) publish(client, `1.${n}`, channels[1]!);
    publish(client, '0.1', channels[0]!);
    await settle();
    expect(queues.map((q) => batches(q).map((b) => b.length)), "255 wait for the gateway's slot").toEqual([[1], []]);
    publish(client, '1.256', channels[1]!);
    await settle();
    expect(queues.map((q) => batches(q).map((b) => b.length)), 'the 256th sends them all; w1 still has its one job out').toEqual([[1], [256]]);
    for (let n = 257; n <= 600; n++) publish(client, `1.${n}`, channels[1]!);
    await settle();
    expect(batches(queues[1]!).map((b) => b.length), 'w2 has its one job out too').toEqual([256]);
  });

  it("lets the other owners go once a job has held the gateway's slot for 250 ms (its worker may be gone)", async () => {
    const channels = channelsOn(2);
    const { client, queues } = await start({ partitions: 2 }, ['w1', 'w2']);
    publish(client, 'stuck-0', channels[0]!);
    publish(client, 'waits-1', channels[1]!);
    publish(client, 'waits-0', channels[0]!);
    await settle();
    expect(queues.map((q) => batches(q))).toEqual([[['stuck-0']], []]);
    await sleep(150);
    expect(batches(queues[1]!), 'within its patience the slot is still held').toEqual([]);
    await waitFor('w2 to get its job', () => batches(queues[1]!).length === 1, { timeoutMs: 1000, intervalMs: 5 });
    expect(queues.map((q) => batches(q)), "w1's partition still waits for its own job").toEqual([[['stuck-0']], [['waits-1']]]);
  });

  it('keeps the partitions of an unknown owner apart, and a bundle within 4 MiB', async () => {
    const channels = channelsOn(3);
    const { client, queues, ack } = await start({ partitions: 3 }, ['w1', 'w1', null]);
    const big = 'x'.repeat(2.5 * 1024 * 1024);
    for (const [p, channel] of channels.entries()) publish(client, `first-${p}`, channel);
    await settle();
    expect(queues.map((q) => batches(q)), 'no owner, no owner slot: partition 2 went at once').toEqual([[['first-0']], [], [['first-2']]]);
    for (const [p, channel] of channels.entries()) publish(client, `${p}${big}`, channel);
    ackAll(ack, queues);
    await settle();
    const sent = queues.map((q) => q.jobs.map((j) => [j.name, j.name === 'publish' ? (j.data as IngestJob).p.length : 0]));
    expect(sent, "two batches over 4 MiB together go as two jobs; the gateway's slots do not hold the second").toEqual([
      [
        ['publish', 1],
        ['publish', 1],
      ],
      [['publish', 2]],
      [
        ['publish', 1],
        ['publish', 1],
      ],
    ]);
  });

  it('marks every partition of a bundle whose add failed, and decides each of its lost batches', async () => {
    const channels = channelsOn(2);
    const { client, queues, ack, pg } = await start({ partitions: 2 }, ['w1', 'w1']);
    publish(client, 'first-0', channels[0]!);
    const lost = channels.map((channel, p) => publish(client, `lost-${p}`, channel));
    await settle();
    queues[0]!.failures = 1;
    ackAll(ack, queues);
    await settle();
    expect(bundlesOn(queues[0]!), 'the bundle whose add failed').toHaveLength(1);
    for (const pub of lost) expect(await pub.outcome, 'the failed add was decided in PostgreSQL: cancelled').toEqual({ ok: false, code: 100 });
    expect(pg.abandoned.map((a) => [a.stream.split('/')[1], a.seq]).sort()).toEqual([
      ['ingest-0', 2],
      ['ingest-1', 1],
    ]);
    for (const [p, channel] of channels.entries()) publish(client, `next-${p}`, channel);
    await settle();
    const next0 = ingestJobs(queues[0]!).at(-1)!;
    expect([next0.p[0]!.data, next0.s, next0.x]).toEqual(['next-0', 3, true]);
    commit(ack, next0);
    await settle();
    const next1 = ingestJobs(queues[1]!).at(-1)!;
    expect([next1.p[0]!.data, next1.s, next1.x]).toEqual(['next-1', 2, true]);
  });
});

/** Two channel names that fall on different partitions of two. */
function channelsOnTwoPartitions(): [string, string] {
  const first = 'room:0';
  for (let i = 1; ; i++) {
    if (partitionOf(`room:${i}`, 2) !== partitionOf(first, 2)) return [first, `room:${i}`];
  }
}
