/**
 * Redis losing everything again and again under full load (guarantees 3 and 6, with 1, 2
 * and 4). "One job at a time per partition" is BullMQ's global concurrency, a setting kept
 * in Redis: a Redis that restarts empty, or a FLUSHALL, forgets it, and two workers could
 * then run two consecutive jobs of one gateway at once and commit one publisher's
 * publications out of order. Gateways here keep two jobs per partition in flight (the case
 * that setting exists for) and three workers compete for them while Redis is wiped.
 *
 * Each test runs on a Redis of its own (the shared PostgreSQL is safe: its channels are its
 * own), and ends with the same audit as the cluster suite, subscribers included.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import {
  auditFailures,
  auditRun,
  auditTable,
  NO_FAILURES,
  printAudit,
  Publisher,
  settle,
  storedPublications,
  type Audit,
} from '../helpers/audit.js';
import { connected, subscribed } from '../helpers/client.js';
import { startPrivateRedis, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PER_PUBLISHER = 3000;

describe('Redis losing everything, again and again, under full load', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  const audits: Audit[] = [];
  afterAll(async () => {
    if (audits.length > 0) console.log(`[faults] Redis data loss under load\n${auditTable(audits)}`);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  /**
   * Two gateways, three workers, four publishers streaming as fast as they can, two
   * subscribers (one per gateway); `wipe` runs while they stream. Then the audit.
   */
  async function underLoad(
    test: string,
    wipe: (redis: Awaited<ReturnType<typeof startPrivateRedis>>) => Promise<void>,
  ) {
    const redis = await startPrivateRedis({ appendonly: false });
    cleanups.push(() => redis.kill());
    const stack = new TestStack({
      redisUrl: redis.url,
      // Redis goes away on purpose: keep the expected connection errors out of the log.
      env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal', TIDINGS_INFLIGHT_JOBS: '2' },
    });
    cleanups.push(() => stack.close());
    const gateways = await Promise.all([stack.gateway(), stack.gateway()]);
    await Promise.all([stack.worker(), stack.worker(), stack.worker()]);
    const channel = uniqueChannel('wiped');
    const subs = await Promise.all(
      gateways.map(async (gw, i) => subscribed(wsUrl(gw.port), await token(`sub${i}`), channel)),
    );
    const pubClients: Centrifuge[] = await Promise.all(
      [0, 1, 2, 3].map(async (i) => connected(wsUrl(gateways[i % 2]!.port), await token(`pub${i}`))),
    );
    for (const c of [...subs.map((s) => s.client), ...pubClients]) cleanups.push(async () => c.disconnect());
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));

    const streams = Promise.all(publishers.map((p) => p.run(PER_PUBLISHER, 16, 150_000)));
    await waitFor('the stream to be under way', () => publishers.every((p) => p.acked.size >= 100));
    await wipe(redis);
    await streams;

    await waitFor(
      'the ingest queues to drain (every accepted publication committed or given up)',
      async () => (await stack.unfinishedJobs()) === 0,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const stored = await storedPublications(stack.databaseUrl, channel);
    for (const [i, s] of subs.entries()) {
      await waitFor(
        () =>
          `subscriber ${i} to receive all ${stored.length} stored publications (has ${new Set(s.offsets()).size})`,
        () => new Set(s.offsets()).size >= stored.length,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    }
    await settle(500);
    const audit = auditRun(test, {
      publishers,
      stored,
      subscribers: subs.map((s, i) => ({ name: `sub${i}`, received: s.received })),
    });
    audits.push(audit);
    printAudit(audit);
    console.log(`[faults] ${test}\n${auditTable([audit])}`);
    expect(audit.stored, 'PostgreSQL holds at least every acknowledged publish').toBeGreaterThanOrEqual(
      audit.acknowledged,
    );
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  }

  it('Redis killed with -9 and restarted empty 8 times: publisher order, offsets and deliveries intact', async () => {
    await underLoad('Redis restarted empty ×8 under load', async (redis) => {
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 1200));
        await redis.kill();
        await redis.start();
      }
    });
  });

  it('FLUSHALL 20 times: publisher order, offsets and deliveries intact', async () => {
    await underLoad('FLUSHALL ×20 under load', async (redis) => {
      const admin = new Redis(redis.url);
      try {
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 250));
          await admin.flushall();
        }
      } finally {
        await admin.quit();
      }
    });
  });
});
