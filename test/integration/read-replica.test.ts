/**
 * Issue 13, read replicas: with DATABASE_READ_URL, history and recovery read publications
 * from a streaming standby, and whatever the standby cannot answer in full (it lags, or is
 * down) is read again from the primary, so the answer is always exact.
 *
 * The standby is real (pg_basebackup of the test's private primary, devstack `standbyOf`),
 * and its lag is made deterministic with pg_wal_replay_pause().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { persistBatch } from '../../src/db/repos/publications.js';
import { startPostgres, type ServerHandle } from '../../src/devstack/index.js';
import { HistoryReader } from '../../src/history/reader.js';
import { metrics } from '../../src/observability/metrics.js';
import { connected, newClient, record } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

async function replicaReads(outcome: string): Promise<number> {
  const { values } = await metrics.replicaReads.get();
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('read replica (DATABASE_READ_URL)', () => {
  const stack = new TestStack();
  const keys = makeKeys(stack.prefix);
  const dir = mkdtempSync(join(tmpdir(), 'tidings-standby-'));
  let standby: ServerHandle;
  let replicaUrl: string;
  let primary: Database;
  let replica: Database;
  let redis: Redis;
  let standbyAdmin: pg.Client;

  beforeAll(async () => {
    const url = new URL(stack.databaseUrl);
    standby = await startPostgres({ dir, standbyOf: { port: Number(url.port) } });
    const replicaAt = new URL(stack.databaseUrl);
    replicaAt.port = String(standby.port);
    replicaUrl = replicaAt.toString();
    primary = openDatabase(stack.databaseUrl);
    replica = openDatabase(replicaUrl);
    redis = new Redis(stack.redisUrl);
    standbyAdmin = new pg.Client({ connectionString: replicaUrl });
    standbyAdmin.on('error', () => {}); // the last test stops the standby under it
    await standbyAdmin.connect();
  }, 60_000);
  afterAll(async () => {
    await standbyAdmin?.end().catch(() => {});
    redis?.disconnect();
    await replica?.close();
    await primary?.close();
    await stack.close();
    await standby?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Until the standby has applied everything the primary committed so far. */
  async function caughtUp(): Promise<void> {
    const { rows } = await primary.pool.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    await waitFor('the standby to catch up', async () => {
      const res = await standbyAdmin.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [rows[0]!.lsn]);
      return res.rows[0]!.ok;
    });
  }

  async function publish(channel: string, n: number): Promise<void> {
    const batch = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), channel, data: `{"i":${i}}` }));
    await persistBatch(primary.db, batch);
  }

  it('reads from the replica when it has everything, from the primary when it lags or is gone; always exact', async () => {
    const reader = new HistoryReader(redis, primary.db, keys, 60, replica.db);
    const channel = uniqueChannel('replica');
    await publish(channel, 30);
    await caughtUp();
    const pos = await reader.position(channel);
    const served = await replicaReads('served');
    expect((await reader.range(channel, pos.epoch, 10, 30, 100)).map((p) => p.offset)).toEqual(range(11, 30));
    expect(await replicaReads('served')).toBe(served + 1);

    // The standby stops applying: the next 20 are on the primary only.
    await standbyAdmin.query('select pg_wal_replay_pause()');
    try {
      await publish(channel, 20);
      // The test commits without fanning out: drop the cached position a worker would have moved.
      await redis.del(keys.meta(channel));
      const behind = await replicaReads('behind');
      const now = await reader.position(channel);
      expect(now.top).toBe(50);
      expect((await reader.range(channel, now.epoch, 10, 50, 100)).map((p) => p.offset)).toEqual(range(11, 50));
      const newestFirst = await reader.page(channel, { limit: 5, reverse: true, maxBytes: 1 << 20 });
      expect(newestFirst.publications.map((p) => p.offset)).toEqual([50, 49, 48, 47, 46]);
      const forward = await reader.page(channel, { limit: 100, sinceOffset: 25, reverse: false, maxBytes: 1 << 20 });
      expect(forward.publications.map((p) => p.offset)).toEqual(range(26, 50));
      expect(await replicaReads('behind')).toBeGreaterThanOrEqual(behind + 3);
      // What the standby does hold in full it still answers.
      const before = await replicaReads('served');
      expect((await reader.range(channel, now.epoch, 0, 30, 100)).map((p) => p.offset)).toEqual(range(1, 30));
      expect(await replicaReads('served')).toBe(before + 1);
    } finally {
      await standbyAdmin.query('select pg_wal_replay_resume()');
    }
  });

  it('a client recovers exactly through a gateway whose replica lags, from PostgreSQL', async () => {
    const gateway = await stack.gateway({ DATABASE_READ_URL: replicaUrl });
    await stack.worker();
    const channel = uniqueChannel('replica-recover');
    const publisher = await connected(wsUrl(gateway.port), await token('pub'));
    const client = newClient(wsUrl(gateway.port), await token('away'));
    const away = record(client, channel);
    away.sub.subscribe();
    client.connect();
    await away.sub.ready(10_000);
    try {
      for (let i = 1; i <= 5; i++) await publisher.publish(channel, { i });
      await waitFor('the first 5', () => away.received.length === 5);
      client.disconnect();
      await standbyAdmin.query('select pg_wal_replay_pause()');
      for (let i = 6; i <= 40; i++) await publisher.publish(channel, { i });
      // Only PostgreSQL can answer now: the cache is gone and the standby is behind.
      await redis.del(keys.history(channel));
      const behind = await replicaReads('behind');
      client.connect();
      await waitFor(() => `the subscriber to recover 35 (has ${away.received.length - 5})`, () => away.received.length >= 40, {
        timeoutMs: 15_000,
      });
      expect(away.offsets()).toEqual(range(1, 40));
      expect(away.subscribedEvents.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
      expect(await replicaReads('behind')).toBeGreaterThan(behind);
    } finally {
      await standbyAdmin.query('select pg_wal_replay_resume()');
      client.disconnect();
      publisher.disconnect();
    }
  });

  it('a replica that is down costs a failed attempt per read, not a failed read', async () => {
    const reader = new HistoryReader(redis, primary.db, keys, 60, replica.db);
    const channel = uniqueChannel('replica-down');
    await publish(channel, 12);
    await standby.stop();
    const failed = await replicaReads('failed');
    const pos = await reader.position(channel);
    expect((await reader.range(channel, pos.epoch, 2, 12, 100)).map((p) => p.offset)).toEqual(range(3, 12));
    expect(await replicaReads('failed')).toBe(failed + 1);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
