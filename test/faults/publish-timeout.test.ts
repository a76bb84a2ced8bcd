/**
 * Publishes while nothing commits (no worker consumes, as when PostgreSQL is away and the
 * one job in flight is stuck retrying): every publish is answered with error 100
 * (temporary) once it has waited TIDINGS_PUBLISH_TIMEOUT_MS, including those that never left
 * the gateway because they queued behind the stuck job, and those are then never sent: the
 * queue holds only the job that was already out.
 *
 * And the error is definitive (issue 12): the job that was out was abandoned in PostgreSQL at
 * the timeout, so when a worker finally runs it, it is refused, and the publication is never
 * found in history afterwards.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { makeKeys, partitionQueueName } from '../../src/bus/keys.js';
import { decodeAcks, type Ack } from '../../src/ingest/acks.js';
import type { IngestJob } from '../../src/ingest/job.js';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('publishes while nothing commits', () => {
  const stack = new TestStack({
    env: { TIDINGS_PARTITIONS: '1', TIDINGS_INFLIGHT_JOBS: '1', TIDINGS_PUBLISH_TIMEOUT_MS: '2000' },
  });
  afterAll(() => stack.close());

  it('answer error 100 after the publish timeout, what timed out unsent is never queued, and nothing that timed out is ever committed', async () => {
    const gateway = await stack.gateway(); // and no worker
    const client = await RawClient.open(wsUrl(gateway.port));
    try {
      await client.connect(await token('pub'));
      const channel = uniqueChannel('stuck');
      // The first goes out at once as a job of one; the others wait behind it. All six in one
      // frame, so they are accepted together and time out in the same pass: sent one by one,
      // the last ones could be accepted a few ms later, and go out in a job of their own
      // when the first one's timeout frees the partition before theirs comes.
      const ids = Array.from({ length: 6 }, (_, n) => 1000 + n);
      client.send(ids.map((id, n) => JSON.stringify({ id, publish: { channel, data: { n } } })).join('\n'));
      const replies = await Promise.all(ids.map((id) => client.reply(id, 15_000)));
      expect(replies.map((r) => (r.error as { code?: number } | undefined)?.code)).toEqual(
        ids.map(() => 100),
      );

      const { hostname, port } = new URL(stack.redisUrl);
      const queue = new Queue(partitionQueueName(0), {
        connection: { host: hostname, port: Number(port), maxRetriesPerRequest: 1 },
        prefix: stack.prefix,
      });
      let job: IngestJob;
      try {
        const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized']);
        const queued = jobs.flatMap((j) =>
          (j.data as IngestJob).p.map((p) => (JSON.parse(p.data) as { n: number }).n),
        );
        expect(queued, 'only the publication whose job was out before the timeout is queued').toEqual([0]);
        job = jobs[0]!.data as IngestJob;
      } finally {
        await queue.close();
      }

      // The worker comes back: the job that timed out is refused, and nothing is stored.
      const heard = await listenToAcks(job.g);
      try {
        await stack.worker();
        await waitFor('the worker to answer the timed-out job', () => heard.acks.length > 0, { timeoutMs: 15_000 });
        expect(heard.acks, 'refused: its turn was taken by the gateway at the timeout').toEqual([[job.p[0]!.id, 0, '', 100]]);
      } finally {
        heard.close();
      }
      expect(await storedCount(channel), 'a publish that got an error is never committed').toBe(0);
      const history = await client.call('history', { channel, limit: -1 });
      expect((history.history as { publications?: unknown[] }).publications ?? []).toEqual([]);
    } finally {
      client.close();
    }
  });

  /** What workers answer on a gateway's ack topic, heard from the side. */
  async function listenToAcks(gatewayId: string): Promise<{ acks: Ack[]; close(): void }> {
    const redis = new Redis(stack.redisUrl);
    const acks: Ack[] = [];
    redis.on('message', (_topic, message: string) => acks.push(...decodeAcks(message)));
    await redis.subscribe(makeKeys(stack.prefix).acks(gatewayId));
    return { acks, close: () => redis.disconnect() };
  }

  async function storedCount(channel: string): Promise<number> {
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>('select count(*)::int as n from publications where channel = $1', [channel]);
      return rows[0]!.n;
    } finally {
      await db.end();
    }
  }
});
