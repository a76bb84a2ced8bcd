/**
 * Partition ownership: workers split the partitions between them through leases, a worker
 * that joins gets its fair share, and a worker that stops (or dies: its leases simply
 * expire) leaves its partitions to the others within about TIDINGS_WORKER_LOCK_MS.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { TestStack } from '../helpers/stack.js';
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
});
