/**
 * Issue 11, bundles: one BullMQ job carrying several partitions' batches (src/ingest/job.ts),
 * taken by real worker processes. Each part is committed as the job of its own partition
 * would be, whichever worker takes the bundle: a poison publication fails alone, a part
 * keeps its place in its own stream even against a job of that stream on another queue,
 * and a malformed bundle fails without holding up its queue.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys, partitionOf, partitionQueueName } from '../../src/bus/keys.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { decodeAcks, type Ack } from '../../src/ingest/acks.js';
import { INGEST_BUNDLE_JOB_NAME, INGEST_JOB_NAME, type IngestBundle, type IngestJob } from '../../src/ingest/job.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { metrics } from '../../src/observability/metrics.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PARTITIONS = 4;

async function bundledBatches(): Promise<{ count: number; sum: number }> {
  const { values } = await metrics.bullmqJobBatches.get();
  const of = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
  return { count: of('tidings_worker_bullmq_job_batches_count'), sum: of('tidings_worker_bullmq_job_batches_sum') };
}

function pub(channel: string, data: string, extra: Partial<NewPublication> = {}): NewPublication {
  return { id: randomUUID(), channel, data, ...extra };
}

/** A fresh channel on each partition, by partition. */
function channelPerPartition(name: string): string[] {
  const found: string[] = [];
  while (found.filter(Boolean).length < PARTITIONS) {
    const channel = uniqueChannel(name);
    found[partitionOf(channel, PARTITIONS)] ??= channel;
  }
  return found;
}

describe('bundles', () => {
  const stack = new TestStack();
  let database: Database;
  let redis: Redis;
  let acks: Redis;
  const queues: Queue[] = [];
  const gatewayId = `gw-test-${randomUUID()}`;
  const heard: Ack[] = [];

  beforeAll(async () => {
    // Two workers share the four partitions, so a bundle's parts belong to both.
    await Promise.all([stack.worker(), stack.worker()]);
    database = openDatabase(stack.databaseUrl);
    redis = new Redis(stack.redisUrl);
    acks = new Redis(stack.redisUrl);
    await acks.subscribe(makeKeys(stack.prefix).acks(gatewayId));
    acks.on('message', (_topic, message: string) => heard.push(...decodeAcks(message)));
    for (let p = 0; p < PARTITIONS; p++) queues.push(new Queue(partitionQueueName(p), { connection: redis, prefix: stack.prefix }));
  });
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    redis?.disconnect();
    acks?.disconnect();
    await database?.close();
    await stack.close();
  });

  const ackOf = (id: string) => heard.find((a) => a[0] === id);
  const stored = async (channel: string) =>
    (await database.pool.query<{ data: string }>('select data from publications where channel = $1 order by "offset"', [channel])).rows.map(
      (r) => r.data,
    );

  it('commits every part, each in its own stream; a poison publication fails alone', async () => {
    const channels = channelPerPartition('bundle');
    const parts = channels.map((channel, q) => ({ q, s: 1, p: [pub(channel, '"a"'), pub(channel, '"b"')] }));
    const poison = pub(channels[2]!, '"poison"', { idempotencyKey: 'a\u0000b' });
    parts[2]!.p.splice(1, 0, poison);
    const batchesBefore = await bundledBatches();
    await queues[0]!.add(INGEST_BUNDLE_JOB_NAME, { g: gatewayId, b: parts } satisfies IngestBundle);
    const ids = parts.flatMap((part) => part.p.map((p) => p.id));
    await waitFor('an ack for every publication of the bundle', () => ids.every((id) => ackOf(id)), { timeoutMs: 10_000 });
    expect(ackOf(poison.id)?.[3]).toBe(107);
    for (const channel of channels) expect(await stored(channel)).toEqual(['"a"', '"b"']);
    for (const part of parts) expect(part.p.filter((p) => p !== poison).map((p) => ackOf(p.id)?.[1])).toEqual([1, 2]);
    // tidings_worker_bullmq_job_batches: one BullMQ job that carried four batches (the workers run in this process).
    await waitFor('the bundle to be counted', async () => (await bundledBatches()).count === batchesBefore.count + 1);
    expect((await bundledBatches()).sum - batchesBefore.sum).toBe(4);

    // Job 3 of partition 1's stream, on its own queue, before the bundle holding its job 2
    // (on partition 3's queue, perhaps another worker's): it waits, and commits after.
    const third = pub(channels[1]!, '"third"');
    await queues[1]!.add(INGEST_JOB_NAME, { g: gatewayId, p: [third], s: 3 } satisfies IngestJob);
    const second = [pub(channels[1]!, '"second"'), pub(channels[3]!, '"second"')];
    await queues[3]!.add(INGEST_BUNDLE_JOB_NAME, {
      g: gatewayId,
      b: [
        { q: 1, s: 2, p: [second[0]!] },
        { q: 3, s: 2, p: [second[1]!] },
      ],
    } satisfies IngestBundle);
    await waitFor('both to be answered', () => [third, ...second].every((p) => ackOf(p.id)), { timeoutMs: 10_000 });
    expect(await stored(channels[1]!)).toEqual(['"a"', '"b"', '"second"', '"third"']);
    expect(await stored(channels[3]!)).toEqual(['"a"', '"b"', '"second"']);
  });

  it('a malformed bundle moves to failed, and its queue goes on', async () => {
    const channel = channelPerPartition('malformed')[0]!;
    const bad = [
      { g: gatewayId, b: [] },
      { g: gatewayId, b: [{ q: -1, s: 1, p: [pub(channel, '1')] }] },
      { g: gatewayId, b: [{ q: 0, s: 1, p: [] }] },
      { g: gatewayId, b: [{ q: 5000, s: 1, p: [pub(channel, '1')] }] },
      { g: gatewayId, b: 'x' },
    ];
    for (const data of bad) await queues[0]!.add(INGEST_BUNDLE_JOB_NAME, data);
    const good = pub(channel, '"good"');
    await queues[0]!.add(INGEST_BUNDLE_JOB_NAME, { g: `gw-${randomUUID()}`, b: [{ q: 0, s: 1, p: [good] }] } satisfies IngestBundle);
    await waitFor('the good bundle to commit', async () => (await stored(channel)).length === 1, { timeoutMs: 10_000 });
    expect(await queues[0]!.getFailedCount()).toBeGreaterThanOrEqual(bad.length);
  });
});
