/**
 * The watch on partition consumers (src/persist/watch.ts) against a real Redis and real BullMQ
 * workers: a consumer that takes nothing while jobs wait and none is active is reported after
 * two looks; one that is working, one whose queue is empty, and one with a job in progress are
 * left alone.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { ConsumerWatch } from '../../src/persist/watch.js';
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
});
