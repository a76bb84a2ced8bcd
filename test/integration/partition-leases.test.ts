/**
 * Partition ownership: workers split the partitions between them through leases, a worker
 * that joins gets its fair share, and a worker that stops (or dies: its leases simply
 * expire) leaves its partitions to the others within about TIDINGS_WORKER_LOCK_MS. The
 * worker that takes a partition over runs the jobs its last owner left active at once, not
 * when their locks expire.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { makeKeys, partitionOf, partitionQueueName } from '../../src/bus/keys.js';
import { decodeAcks, type Ack } from '../../src/ingest/acks.js';
import { INGEST_JOB_NAME, type IngestJob } from '../../src/ingest/job.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('partition leases', () => {
  const stack = new TestStack();
  const redis = new Redis(stack.redisUrl);
  afterAll(async () => {
    redis.disconnect();
    await stack.close();
  });
  const keys = makeKeys(stack.prefix);
  const PARTITIONS = 4; // the test stack's TIDINGS_PARTITIONS

  async function owners(): Promise<(string | null)[]> {
    return Promise.all(Array.from({ length: PARTITIONS }, (_, p) => redis.get(keys.lease(p))));
  }

  function shares(list: (string | null)[]): number[] {
    const count = new Map<string, number>();
    for (const owner of list) if (owner) count.set(owner, (count.get(owner) ?? 0) + 1);
    return [...count.values()].sort();
  }

  it('one worker owns every partition; a second one takes half; when one stops the other takes all back', async () => {
    const first = await stack.worker();
    await waitFor('the first worker to own every partition', async () => shares(await owners()).join() === '4');
    const second = await stack.worker();
    await waitFor('the partitions to be split 2 + 2', async () => shares(await owners()).join() === '2,2', { timeoutMs: 10_000 });
    await first.close();
    await waitFor('the remaining worker to own all 4 again', async () => shares(await owners()).join() === '4', { timeoutMs: 10_000 });
    await second.close();
    expect((await owners()).every((o) => o === null)).toBe(true);
  });

  it('a job its dead owner left active runs as soon as the partition is taken over, not when its lock expires', async () => {
    const channel = uniqueChannel('orphan');
    const partition = partitionOf(channel, PARTITIONS);
    const queueName = partitionQueueName(partition);
    const gatewayId = `gw-test-${randomUUID()}`;
    const heard: Ack[] = [];
    const acks = new Redis(stack.redisUrl);
    const conn = new Redis(stack.redisUrl, { maxRetriesPerRequest: null });
    await acks.subscribe(keys.acks(gatewayId));
    acks.on('message', (_topic, message: string) => heard.push(...decodeAcks(message)));
    const queue = new Queue(queueName, { connection: conn, prefix: stack.prefix });
    // The dead owner: it holds the partition's lease for a moment more, and the job, under a
    // lock that would last 30 s, and then it is gone (no renewals, no completion).
    await redis.set(keys.lease(partition), 'wk-dead', 'PX', 500);
    const dead = new Worker(queueName, () => new Promise(() => {}), { connection: conn, prefix: stack.prefix, lockDuration: 30_000, autorun: false });
    try {
      const id = randomUUID();
      await queue.add(INGEST_JOB_NAME, { g: gatewayId, p: [{ id, channel, data: '{"n":1}' }], s: 1 } satisfies IngestJob);
      void dead.run();
      await waitFor('the dead owner to hold the job', async () => (await queue.getActiveCount()) === 1);
      await dead.close(true);
      const started = Date.now();
      const worker = await stack.worker({ TIDINGS_WORKER_LOCK_MS: '2000' });
      await waitFor('the job to be committed and acknowledged', () => heard.length === 1, { timeoutMs: 20_000 });
      expect(heard[0]?.[0]).toBe(id);
      expect(heard[0]?.[1]).toBe(1);
      // Its lock had 30 s to run: without the takeover's requeue it would still be waiting.
      expect(Date.now() - started, 'ms from the new worker to the ack').toBeLessThan(15_000);
      await worker.close();
    } finally {
      await queue.close();
      acks.disconnect();
      conn.disconnect();
    }
  });
});
