/**
 * Guarantee 6 (Redis is a cache and a transport, never the only copy), with 1 and 4: after
 * Redis loses everything (FLUSHALL, or a restart without persistence during traffic) the
 * epoch and offsets stay those of PostgreSQL, nothing acknowledged is lost, and clients
 * recover from PostgreSQL. Each test runs on a Redis of its own: these faults would hit
 * every other test file sharing the suite's Redis.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import type { ServerHandle } from '../../src/devstack/index.js';
import {
  auditFailures,
  auditRun,
  NO_FAILURES,
  printAudit,
  Publisher,
  settle,
  storedPublications,
} from '../helpers/audit.js';
import { connected, newClient, record, subscribed } from '../helpers/client.js';
import { TcpProxy } from '../helpers/proxy.js';
import { startPrivateRedis, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('redis faults', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  async function privateStack(): Promise<{ redis: ServerHandle; stack: TestStack }> {
    const redis = await startPrivateRedis({ appendonly: false });
    cleanups.push(() => redis.kill());
    // Redis goes away on purpose here: keep the expected connection errors out of the log.
    const stack = new TestStack({
      redisUrl: redis.url,
      env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error' },
    });
    cleanups.push(() => stack.close());
    return { redis, stack };
  }

  function track(...clients: Centrifuge[]): void {
    for (const c of clients) cleanups.push(async () => c.disconnect());
  }

  it('recovers a 5,000-publication gap from PostgreSQL after FLUSHALL, with the same epoch', async () => {
    const { redis, stack } = await privateStack();
    const gateway = await stack.gateway();
    await stack.worker();
    const proxy = new TcpProxy([gateway.port]);
    cleanups.push(() => proxy.close());
    await proxy.listen();
    const channel = uniqueChannel('flush');

    const client = newClient(wsUrl(proxy.port), await token('away'));
    const away = record(client, channel);
    away.sub.subscribe();
    client.connect();
    await away.sub.ready(10_000);
    // Five publishers of 1,000 each: one connection alone would meet its command rate limit.
    const pubClients = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => connected(wsUrl(gateway.port), await token(`pub${i}`))),
    );
    track(client, ...pubClients);
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));
    const first = publishers[0]!;
    const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);

    await first.run(10);
    await waitFor('the subscriber to get the first 10', () => away.received.length === 10);
    const before = await pubClients[0]!.history(channel, {});

    proxy.block();
    await waitFor('the subscriber to notice it is disconnected', () => client.state !== 'connected');
    await Promise.all(publishers.map((p) => p.run(1000, 64)));
    expect(acked(), 'all 5,000 acknowledged').toBe(5010);
    expect(away.received.length, 'nothing reached the subscriber while it was away').toBe(10);

    const admin = new Redis(redis.url);
    cleanups.push(() => admin.quit());
    await admin.flushall();
    // Not dbsize: the servers' own heartbeats and leases come back within a few hundred ms.
    expect(await admin.keys(`*${channel}*`), 'the channel is gone from Redis').toEqual([]);

    proxy.unblock();
    await waitFor(
      () => `the subscriber to recover 5,000 (has ${away.received.length - 10})`,
      () => away.received.length >= 5010,
      { timeoutMs: 30_000 },
    );
    const resubscribed = away.subscribedEvents.at(-1);
    expect(away.subscribedEvents).toHaveLength(2);
    expect(resubscribed).toMatchObject({
      wasRecovering: true,
      recovered: true,
      publications: 1,
      offset: 10,
      epoch: before.epoch,
    });
    expect(await pubClients[1]!.history(channel, {})).toMatchObject({ epoch: before.epoch, offset: 5010 });

    // The stream goes on where it was: same epoch, next offsets.
    await first.run(10);
    await waitFor(
      () => `the subscriber to get 10 more after the flush (has ${away.received.length})`,
      () => away.received.length >= 5020,
    );
    expect(await pubClients[2]!.history(channel, {})).toMatchObject({ epoch: before.epoch, offset: 5020 });

    await settle();
    const audit = auditRun('FLUSHALL, 5,000 recovered from PostgreSQL', {
      publishers,
      stored: await storedPublications(stack.databaseUrl, channel),
      subscribers: [{ name: 'away', received: away.received }],
    });
    printAudit(audit);
    expect(audit).toMatchObject({ acknowledged: 5020, stored: 5020 });
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });

  it('Redis restarted empty (twice) during traffic: no acked publish lost, subscribers whole, recovery still works', async () => {
    const { redis, stack } = await privateStack();
    const [gw1, gw2] = await Promise.all([stack.gateway(), stack.gateway()]);
    // Three workers: after Redis forgot the queues' global concurrency, two of them could
    // take jobs of one partition at once, which would break publisher order (guarantee 3).
    await Promise.all([stack.worker(), stack.worker(), stack.worker()]);
    const channel = uniqueChannel('restart');

    // Two subscribers stay connected through the restart; a third is away across it.
    const subs = await Promise.all(
      [gw1, gw2, gw1].map(async (gw, i) => subscribed(wsUrl(gw.port), await token(`sub${i}`), channel)),
    );
    const [live0, live1, away] = subs as [(typeof subs)[0], (typeof subs)[0], (typeof subs)[0]];
    const pubClients = await Promise.all(
      [gw1, gw2].map(async (gw, i) => connected(wsUrl(gw.port), await token(`pub${i}`))),
    );
    track(...subs.map((s) => s.client), ...pubClients);
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));
    const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);

    const streams = Promise.all(publishers.map((p) => p.run(600, 16)));
    await waitFor('the stream to be under way', () => acked() >= 200);
    away.client.disconnect();
    await waitFor('the stream to go on without the away subscriber', () => acked() >= 300);
    const atKill = acked();
    // Twice: Redis is killed (no persistence) and comes back empty, while the stream goes on.
    for (const next of [600, 900]) {
      await redis.kill();
      await new Promise((r) => setTimeout(r, 500));
      await redis.start();
      await waitFor(
        () => `acks after the restart (have ${acked()} of ${next})`,
        () => acked() >= next,
      );
    }
    await streams;

    await waitFor(
      'every queued publication to be committed',
      async () => (await stack.unfinishedJobs()) === 0,
      {
        timeoutMs: 30_000,
      },
    );
    let stored = await storedPublications(stack.databaseUrl, channel);
    for (const [name, s] of [
      ['live0', live0],
      ['live1', live1],
    ] as const) {
      await waitFor(
        () => `${name} to get all ${stored.length} (has ${s.received.length})`,
        () => s.received.length >= stored.length,
      );
    }

    // Recovery works afterwards: across the restart (what it missed is partly only in
    // PostgreSQL, partly in the new cache too) ...
    const awayHad = away.received.length;
    away.client.connect();
    await waitFor(
      () =>
        `the away subscriber to recover ${stored.length - awayHad} (has ${away.received.length - awayHad})`,
      () => away.received.length >= stored.length,
    );
    expect(away.subscribedEvents.at(-1), 'recovered across the restart').toMatchObject({
      wasRecovering: true,
      recovered: true,
    });

    // ... and for a gap that starts after it.
    live0.client.disconnect();
    const more = new Publisher(pubClients[1]!, channel, 'after');
    await more.run(100);
    live0.client.connect();
    await waitFor(
      'the returning subscriber to recover the 100',
      () => live0.received.length >= stored.length + 100,
    );
    expect(live0.subscribedEvents.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
    stored = await storedPublications(stack.databaseUrl, channel);
    for (const [name, s] of [
      ['live1', live1],
      ['away', away],
    ] as const) {
      await waitFor(
        () => `${name} to get all ${stored.length} (has ${s.received.length})`,
        () => s.received.length >= stored.length,
      );
    }

    await settle();
    const audit = auditRun('Redis restarted empty twice during traffic', {
      publishers: [...publishers, more],
      stored,
      subscribers: [
        { name: 'live0', received: live0.received },
        { name: 'live1', received: live1.received },
        { name: 'away', received: away.received },
      ],
    });
    printAudit(audit);
    const errors = new Set(publishers.flatMap((p) => [...p.failed.values()]));
    console.log(
      `[audit]   Redis restarted empty twice during traffic / ${atKill} acked at the first kill; away subscriber had ${awayHad}; ` +
        `error replies: ${[...errors].join('; ') || 'none'}`,
    );
    expect(more.acked.size).toBe(100);
    expect(audit.stored).toBeGreaterThanOrEqual(audit.acknowledged);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });
});
