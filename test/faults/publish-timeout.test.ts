/**
 * Publishes while nothing commits (no worker consumes, as when PostgreSQL is away and the
 * one job in flight is stuck retrying): every publish is answered with error 100
 * (temporary) once it has waited TIDINGS_PUBLISH_TIMEOUT_MS, including those that never left
 * the gateway because they queued behind the stuck job, and those are then never sent: the
 * queue holds only the job that was already out.
 */
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionQueueName } from '../../src/bus/keys.js';
import type { IngestJob } from '../../src/ingest/job.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';

describe('publishes while nothing commits', () => {
  const stack = new TestStack({
    env: { TIDINGS_PARTITIONS: '1', TIDINGS_INFLIGHT_JOBS: '1', TIDINGS_PUBLISH_TIMEOUT_MS: '2000' },
  });
  afterAll(() => stack.close());

  it('answer error 100 after the publish timeout, and what timed out before its job was sent is never queued', async () => {
    const gateway = await stack.gateway(); // and no worker
    const client = await RawClient.open(wsUrl(gateway.port));
    try {
      await client.connect(await token('pub'));
      const channel = uniqueChannel('stuck');
      // The first goes out at once as a job of one; the others wait behind it.
      const ids = Array.from({ length: 6 }, (_, n) => client.command('publish', { channel, data: { n } }));
      const replies = await Promise.all(ids.map((id) => client.reply(id, 15_000)));
      expect(replies.map((r) => (r.error as { code?: number } | undefined)?.code)).toEqual(
        ids.map(() => 100),
      );

      const { hostname, port } = new URL(stack.redisUrl);
      const queue = new Queue(partitionQueueName(0), {
        connection: { host: hostname, port: Number(port), maxRetriesPerRequest: 1 },
        prefix: stack.prefix,
      });
      try {
        const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized']);
        const queued = jobs.flatMap((j) =>
          (j.data as IngestJob).p.map((p) => (JSON.parse(p.data) as { n: number }).n),
        );
        expect(queued, 'only the publication whose job was out before the timeout is queued').toEqual([0]);
      } finally {
        await queue.close();
      }
    } finally {
      client.close();
    }
  });
});
