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
import { auditFailures, auditRun, printAudit, Publisher, storedPublications } from '../helpers/audit.js';
import { connected, newClient, record, subscribed } from '../helpers/client.js';
import { TcpProxy } from '../helpers/proxy.js';
import { startPrivateRedis, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const NO_FAILURES = { offsetGaps: 0, duplicates: 0, outOfOrder: 0, missing: 0, unexpected: 0, fifoViolations: 0 };

describe('redis faults', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  async function privateStack(): Promise<{ redis: ServerHandle; stack: TestStack }> {
    const redis = await startPrivateRedis({ appendonly: false });
    cleanups.push(() => redis.kill());
    const stack = new TestStack({ redisUrl: redis.url });
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
    const publisher = await connected(wsUrl(gateway.port), await token('pub'));
    track(client, publisher);
    const pub = new Publisher(publisher, channel, 'p');

    await pub.run(10);
    await waitFor('the subscriber to get the first 10', () => away.received.length === 10);
    const before = await publisher.history(channel, {});

    proxy.block();
    await waitFor('the subscriber to notice it is disconnected', () => client.state !== 'connected');
    await pub.run(5000, 200);
    expect(pub.acked.size, 'all 5,000 acknowledged').toBe(5010);

    const admin = new Redis(redis.url);
    cleanups.push(() => admin.quit());
    await admin.flushall();
    expect(await admin.dbsize(), 'Redis is empty').toBe(0);

    proxy.unblock();
    await waitFor(`the subscriber to recover 5,000 (has ${away.received.length - 10})`, () => away.received.length >= 5010, {
      timeoutMs: 30_000,
    });
    const resubscribed = away.subscribedEvents.at(-1);
    expect(away.subscribedEvents).toHaveLength(2);
    expect(resubscribed).toMatchObject({ wasRecovering: true, recovered: true, publications: 1, offset: 10, epoch: before.epoch });

    const after = await publisher.history(channel, {});
    expect(after).toMatchObject({ epoch: before.epoch, offset: 5010 });

    // The stream goes on where it was: same epoch, next offsets.
    await pub.run(10);
    await waitFor('the subscriber to get 10 more after the flush', () => away.received.length >= 5020);
    expect(await publisher.history(channel, {})).toMatchObject({ epoch: before.epoch, offset: 5020 });

    const audit = auditRun('FLUSHALL, 5,000 recovered from PostgreSQL', {
      publishers: [pub],
      stored: await storedPublications(stack.databaseUrl, channel),
      subscribers: [{ name: 'away', received: away.received }],
    });
    printAudit(audit);
    expect(audit).toMatchObject({ acknowledged: 5020, stored: 5020 });
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });

  it('Redis restarted empty during traffic: no acked publish lost, subscribers whole, recovery still works', async () => {
    const { redis, stack } = await privateStack();
    const [gw1, gw2] = await Promise.all([stack.gateway(), stack.gateway()]);
    await Promise.all([stack.worker(), stack.worker()]);
    const channel = uniqueChannel('restart');

    // Two subscribers stay connected through the restart; a third is away across it.
    const subs = await Promise.all(
      [gw1, gw2, gw1].map(async (gw, i) => subscribed(wsUrl(gw.port), await token(`sub${i}`), channel)),
    );
    const [live0, live1, away] = subs as [(typeof subs)[0], (typeof subs)[0], (typeof subs)[0]];
    const pubClients = await Promise.all([gw1, gw2].map(async (gw, i) => connected(wsUrl(gw.port), await token(`pub${i}`))));
    track(...subs.map((s) => s.client), ...pubClients);
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));
    const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);

    const streams = Promise.all(publishers.map((p) => p.run(800, 16)));
    await waitFor('the stream to be under way', () => acked() >= 200);
    away.client.disconnect();
    await waitFor('the stream to go on without the away subscriber', () => acked() >= 300);
    await redis.kill();
    const atKill = acked();
    await new Promise((r) => setTimeout(r, 500));
    await redis.start();
    await streams;

    await waitFor('every queued publication to be committed', async () => (await stack.unfinishedJobs()) === 0, {
      timeoutMs: 30_000,
    });
    let stored = await storedPublications(stack.databaseUrl, channel);
    for (const [name, s] of [['live0', live0], ['live1', live1]] as const) {
      await waitFor(`${name} to get all ${stored.length} (has ${s.received.length})`, () => s.received.length >= stored.length);
    }

    // Recovery works afterwards: across the restart (what it missed is partly only in
    // PostgreSQL, partly in the new cache too) ...
    const awayHad = away.received.length;
    away.client.connect();
    await waitFor(`the away subscriber to recover ${stored.length - awayHad} (has ${away.received.length - awayHad})`, () =>
      away.received.length >= stored.length,
    );
    expect(away.subscribedEvents.at(-1), 'recovered across the restart').toMatchObject({ wasRecovering: true, recovered: true });

    // ... and for a gap that starts after it.
    live0.client.disconnect();
    const more = new Publisher(pubClients[1]!, channel, 'after');
    await more.run(100);
    live0.client.connect();
    await waitFor('the returning subscriber to recover the 100', () => live0.received.length >= stored.length + 100);
    expect(live0.subscribedEvents.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
    stored = await storedPublications(stack.databaseUrl, channel);
    for (const [name, s] of [['live1', live1], ['away', away]] as const) {
      await waitFor(`${name} to get all ${stored.length} (has ${s.received.length})`, () => s.received.length >= stored.length);
    }

    const audit = auditRun('Redis restarted empty during traffic', {
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
      `[audit]   Redis restarted empty during traffic / ${atKill} acked at the kill; away subscriber had ${awayHad}; ` +
        `error replies: ${[...errors].join('; ') || 'none'}`,
    );
    expect(more.acked.size).toBe(100);
    expect(audit.stored).toBeGreaterThanOrEqual(audit.acknowledged);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });
});
