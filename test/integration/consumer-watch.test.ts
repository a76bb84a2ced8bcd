/**
 * The watch on partition consumers (src/persist/watch.ts) against a real Redis and real BullMQ
 * workers: a consumer that takes nothing while jobs wait and none is active is reported after
 * two looks; one that is working, one whose queue is empty, and one with a job in progress are
 * left alone. And the persist worker's guard replaces a wedged consumer with one that takes
 * the waiting jobs.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys, partitionQueueName } from '../../src/bus/keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { guardPartitions } from '../../src/persist/guard.js';
import { ConsumerWatch } from '../../src/persist/watch.js';
import { waitFor } from '../helpers/wait.js';
import { startPrivateRedis } from '../helpers/stack.js';

type Handle = Awaited<ReturnType<typeof startPrivateRedis>>;

describe('partition consumer watch', () => {
  let server: Handle;
  let redis: Redis;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    redis.disconnect();
    await server.stop();
  });

  function pair(processor: (job: Job) => Promise<unknown>) {
    const name = `watch-${randomBytes(4).toString('hex')}`;
    const queue = new Queue(name, { connection: redis });
    const worker = new Worker(name, processor, { connection: redis, autorun: false, drainDelay: 1 });
    closers.push(() => queue.close(), () => worker.close(true));
    return { queue, worker };
  }

  function watching(queue: Queue, worker: Worker) {
    const restarts: number[] = [];
    const watch = new ConsumerWatch({
      queues: [queue],
      owned: () => [0],
      intervalMs: 60_000, // looks are taken by hand below
      restart: (_p, waiting) => restarts.push(waiting),
      log: createLogger('silent'),
    });
    worker.on('active', () => watch.started(0));
    return { watch, restarts };
  }

  it('reports a consumer that takes nothing while jobs wait, at the second look', async () => {
    const { queue, worker } = pair(async () => {});
    await worker.waitUntilReady();
    // Never started: as good as wedged, from the queue's side.
    const { watch, restarts } = watching(queue, worker);
    await queue.addBulk([1, 2, 3].map((n) => ({ name: 'j', data: { n } })));
    await watch.check();
    expect(restarts, 'one look is not enough').toEqual([]);
    await watch.check();
    expect(restarts).toEqual([3]);
  });

  it('leaves alone a consumer that takes jobs, an empty queue, and a job in progress', async () => {
    const busy = pair(async () => {});
    const { watch, restarts } = watching(busy.queue, busy.worker);
    void busy.worker.run();
    for (let round = 0; round < 3; round++) {
      await busy.queue.add('j', { round });
      await new Promise((r) => setTimeout(r, 200));
      await watch.check();
    }
    expect(restarts, 'taking jobs').toEqual([]);
    await watch.check();
    await watch.check();
    expect(restarts, 'nothing waiting').toEqual([]);

    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const slow = pair(() => held);
    const slowWatch = watching(slow.queue, slow.worker);
    await slow.queue.add('first', {});
    void slow.worker.run();
    await new Promise((r) => setTimeout(r, 300));
    await slow.queue.addBulk([{ name: 'second', data: {} }, { name: 'third', data: {} }]);
    // Concurrency 1: the others wait behind the active one, which is work, not a wedge.
    for (let i = 0; i < 3; i++) await slowWatch.watch.check();
    expect(slowWatch.restarts).toEqual([]);
    release();
  });

  it('the persist worker replaces a wedged partition consumer, and the new one takes the waiting jobs', async () => {
    const keys = makeKeys(`wg${randomBytes(3).toString('hex')}`);
    const taken: number[] = [];
    const guard = guardPartitions({
      redis,
      keys,
      partitions: 1,
      lockMs: 1000,
      log: createLogger('silent'),
      processor: async (job) => {
        taken.push((job.data as { n: number }).n);
        return 0;
      },
      stopProcessing: () => {},
    });
    closers.push(() => guard.close());
    await guard.ready();
    const queue = new Queue(partitionQueueName(0), { connection: redis, prefix: keys.queuePrefixOf(0) });
    closers.push(() => queue.close());
    await queue.add('j', { n: 0 });
    await waitFor('the first job', () => taken.length === 1);
    // Wedged: it still holds the lease, and takes nothing.
    const wedged = guard.consumerOf(0)!;
    await wedged.pause(true);
    await queue.addBulk([1, 2, 3].map((n) => ({ name: 'j', data: { n } })));
    await waitFor('the waiting jobs, taken by a new consumer', () => taken.length === 4, { timeoutMs: 15_000 });
    expect(taken).toEqual([0, 1, 2, 3]);
    expect(guard.consumerOf(0)).not.toBe(wedged);
  });
});
