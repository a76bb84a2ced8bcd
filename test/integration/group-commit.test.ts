/**
 * Issue 11, group commit: the jobs a worker holds are committed in one PostgreSQL call and
 * fanned out in one Redis round, and nothing about a job's outcome depends on which jobs
 * shared its round:
 *  - `tidings_commit_many` decides each job as `tidings_commit` would (its stream's turn,
 *    contiguous offsets per channel, ids already stored), and a job waiting for an earlier
 *    one of its stream answers a gap without holding the others back;
 *  - `GroupCommit` (in process, real PostgreSQL and Redis): jobs submitted while a round
 *    runs share the next one; a publication PostgreSQL refuses fails alone; a job whose
 *    predecessor arrives later waits for it; every gateway hears its own acks.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { withScripts } from '../../src/bus/scripts.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { commitJobs } from '../../src/db/repos/commit-many.js';
import type { PersistOutcome } from '../../src/db/repos/publications.js';
import { OrderGap, type JobOrder } from '../../src/db/repos/streams.js';
import { decodeAcks, type Ack } from '../../src/ingest/acks.js';
import { createLogger } from '../../src/observability/logger.js';
import { metrics } from '../../src/observability/metrics.js';
import { GroupCommit, type GroupJob } from '../../src/persist/group.js';
import { NO_COMMIT_HOOK, type CommitHook } from '../../src/webhooks/publications.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

function pub(channel: string, extra: Partial<NewPublication> = {}): NewPublication {
  return { id: randomUUID(), channel, data: '{"n":1}', ...extra };
}

function order(stream: string, seq: number, skipGap = false): JobOrder {
  return { stream, seq, skipGap };
}

function offsets(outcome: PersistOutcome | OrderGap | undefined): number[] {
  if (!outcome || outcome instanceof OrderGap) throw new Error(`expected an outcome, got ${String(outcome)}`);
  return outcome.results.map((r) => r.offset);
}

async function stored(database: Database, channel: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ id: string }>('select id from publications where channel = $1 order by "offset"', [channel]);
  return rows.map((r) => r.id);
}

describe('group commit', () => {
  const stack = new TestStack();
  let database: Database;

  beforeAll(() => {
    database = openDatabase(stack.databaseUrl);
  });
  afterAll(async () => {
    await database?.close();
    await stack.close();
  });

  describe('tidings_commit_many', () => {
    it('numbers each job in the order given, per channel, and a gap holds back only its own stream', async () => {
      const [a, b] = [uniqueChannel('many-a'), uniqueChannel('many-b')];
      const [s1, s2] = [`s-${randomUUID()}`, `s-${randomUUID()}`];
      const jobs = [
        { batch: [pub(a), pub(b)], order: order(s1, 1) },
        { batch: [pub(a)], order: order(s2, 1) },
        { batch: [pub(a), pub(a)], order: order(s1, 2) },
        { batch: [pub(b)], order: order(s2, 3) }, // job 2 of s2 is missing
        { batch: [pub(b)], order: undefined }, // a gateway from before streams
      ];
      const results = await commitJobs(database.pool, jobs);
      expect(offsets(results[0])).toEqual([1, 1]);
      expect(offsets(results[1])).toEqual([2]);
      expect(offsets(results[2])).toEqual([3, 4]);
      expect(results[3]).toBeInstanceOf(OrderGap);
      expect(offsets(results[4])).toEqual([2]);
      expect(await stored(database, a)).toEqual([jobs[0]!, jobs[1]!, jobs[2]!].flatMap((j) => j.batch.filter((p) => p.channel === a).map((p) => p.id)));

      // The same group again (a worker died before acking it): nothing is stored twice, and
      // every publication is answered with the offset it got the first time.
      const again = await commitJobs(database.pool, jobs.slice(0, 3));
      expect(again.map(offsets)).toEqual([
        [1, 1],
        [2],
        [3, 4],
      ]);
      expect(again.flatMap((r) => (r as PersistOutcome).results.map((x) => x.fresh))).toEqual([false, false, false, false, false]);
      expect(await stored(database, a)).toHaveLength(4);
    });

    it('a call that creates channels gives each its own epoch, and a channel keeps it after', async () => {
      const [a, b, c] = [uniqueChannel('epoch-a'), uniqueChannel('epoch-b'), uniqueChannel('epoch-c')];
      const stream = `s-${randomUUID()}`;
      const epochsOf = (result: PersistOutcome | OrderGap | undefined) => {
        if (!result || result instanceof OrderGap) throw new Error('expected an outcome');
        return new Map(result.results.map((r) => [r.channel, r.epoch]));
      };
      const first = epochsOf((await commitJobs(database.pool, [{ batch: [pub(a), pub(b), pub(a), pub(c)], order: order(stream, 1) }]))[0]);
      expect([...first.keys()].sort()).toEqual([a, b, c].sort());
      for (const epoch of first.values()) expect(epoch).toMatch(/^[a-z]{8}$/);
      expect(new Set(first.values()).size).toBe(3);
      const later = epochsOf((await commitJobs(database.pool, [{ batch: [pub(c), pub(a)], order: order(stream, 2) }]))[0]);
      expect(later.get(a)).toBe(first.get(a));
      expect(later.get(c)).toBe(first.get(c));
    });

    it('a publication PostgreSQL refuses fails the call: nothing of the group is committed', async () => {
      const channel = uniqueChannel('many-bad');
      const jobs = [
        { batch: [pub(channel)], order: order(`s-${randomUUID()}`, 1) },
        { batch: [pub(channel, { idempotencyKey: randomBytes(6000).toString('base64') })], order: order(`s-${randomUUID()}`, 1) },
      ];
      await expect(commitJobs(database.pool, jobs)).rejects.toThrow();
      expect(await stored(database, channel)).toEqual([]);
    });
  });

  describe('GroupCommit', () => {
    let redis: Redis;
    let acks: Redis;
    const heard = new Map<string, Ack[]>();
    let group: GroupCommit;
    const stopping = new AbortController();

    beforeAll(async () => {
      redis = new Redis(stack.redisUrl);
      acks = new Redis(stack.redisUrl);
      const keys = makeKeys(stack.prefix);
      await acks.psubscribe(keys.acks('*'));
      acks.on('pmessage', (_pattern, topic: string, message: string) => {
        const list = heard.get(topic) ?? [];
        list.push(...decodeAcks(message));
        heard.set(topic, list);
      });
      const log = createLogger('warn');
      group = new GroupCommit({ database, redis: withScripts(redis), keys, cache: () => ({ size: 100, ttlS: 60 }), hook: NO_COMMIT_HOOK, log, signal: stopping.signal });
    });
    afterAll(() => {
      stopping.abort();
      redis.disconnect();
      acks.disconnect();
    });

    function job(batch: NewPublication[], stream: string | undefined, seq: number, gatewayId = 'gw-a'): GroupJob {
      return { batch, refused: [], order: stream ? order(stream, seq) : undefined, gatewayId };
    }

    function acksOf(gatewayId: string): Ack[] {
      return heard.get(makeKeys(stack.prefix).acks(gatewayId)) ?? [];
    }

    it('jobs submitted while a round runs share the next round, one transaction and one fan-out', async () => {
      const channel = uniqueChannel('rounds');
      const streams = [`s-${randomUUID()}`, `s-${randomUUID()}`, `s-${randomUUID()}`];
      const before = (await metrics.commitJobs.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
      const jobs = [job([pub(channel)], streams[0], 1)];
      for (let i = 0; i < 6; i++) jobs.push(job([pub(channel), pub(channel)], streams[i % 3], Math.floor(i / 3) + (i % 3 === 0 ? 2 : 1)));
      const outcomes = await Promise.all(jobs.map((j) => group.submit(j)));
      const after = (await metrics.commitJobs.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
      // The first job starts a round at once; the six submitted meanwhile share the second.
      expect(after - before).toBe(2);
      expect(outcomes.flatMap((o) => o.results.map((r) => r.offset)).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 13 }, (_, i) => i + 1),
      );
      // Each stream's jobs hold increasing offsets, in their seq order.
      for (const stream of streams) {
        const mine = jobs.map((j, i) => ({ j, o: outcomes[i]! })).filter(({ j }) => j.order?.stream === stream);
        mine.sort((x, y) => x.j.order!.seq - y.j.order!.seq);
        const seen = mine.flatMap(({ o }) => o.results.map((r) => r.offset));
        expect(seen).toEqual([...seen].sort((x, y) => x - y));
      }
      expect(await stored(database, channel)).toHaveLength(13);
    });

    it('a commit hook that fails (publication webhooks) holds the jobs back and is run again with the same publications', async () => {
      const calls: string[][] = [];
      let failures = 1;
      const hook: CommitHook = {
        committed: async (stored) => {
          calls.push(stored.map((p) => `${p.id}@${p.offset}`));
          if (failures-- > 0) throw new Error('Redis away while queueing the events');
        },
        close: async () => {},
      };
      const own = new AbortController();
      const hooked = new GroupCommit({ database, redis: withScripts(redis), keys: makeKeys(stack.prefix), cache: () => ({ size: 100, ttlS: 60 }), hook, log: createLogger('silent'), signal: own.signal });
      const channel = uniqueChannel('hooked');
      const outcome = await hooked.submit(job([pub(channel), pub(channel)], `s-${randomUUID()}`, 1));
      own.abort();
      expect(offsets(outcome)).toEqual([1, 2]);
      expect(calls).toHaveLength(2);
      expect(calls[1]).toEqual(calls[0]);
      expect(await stored(database, channel)).toHaveLength(2);
    });

    it('a publication PostgreSQL refuses fails alone; the other jobs of its round commit', async () => {
      const channel = uniqueChannel('round-bad');
      const bad = pub(channel, { idempotencyKey: randomBytes(6000).toString('base64') });
      const first = group.submit(job([pub(channel)], `s-${randomUUID()}`, 1));
      const round = [
        job([pub(channel), bad, pub(channel)], `s-${randomUUID()}`, 1, 'gw-bad'),
        job([pub(channel)], `s-${randomUUID()}`, 1),
      ];
      const outcomes = await Promise.all([first, ...round.map((j) => group.submit(j))]);
      expect(outcomes[1]!.rejected).toEqual([{ id: bad.id, why: 'refused' }]);
      expect(outcomes.flatMap((o) => o.results.map((r) => r.offset)).sort((x, y) => x - y)).toEqual([1, 2, 3, 4]);
      await waitFor('the refusal to reach its gateway', () => acksOf('gw-bad').some((a) => a[0] === bad.id && a[3] === 107));
    });

    it('a job that arrives before its predecessor waits for it, and both are acknowledged to their gateway', async () => {
      const channel = uniqueChannel('round-gap');
      const stream = `s-${randomUUID()}`;
      const [early, late] = [pub(channel), pub(channel)];
      const second = group.submit(job([late], stream, 2, 'gw-gap'));
      await new Promise((r) => setTimeout(r, 60));
      const first = group.submit(job([early], stream, 1, 'gw-gap'));
      expect(offsets(await first)).toEqual([1]);
      expect(offsets(await second)).toEqual([2]);
      await waitFor('both acks', () => acksOf('gw-gap').length === 2);
      expect(acksOf('gw-gap').map((a) => [a[0], a[1]])).toEqual([
        [early.id, 1],
        [late.id, 2],
      ]);
    });

    it('stopping fails a job still waiting for its turn with ShuttingDown, so its processor puts it back', async () => {
      const own = new AbortController();
      const log = createLogger('warn');
      const local = new GroupCommit({ database, redis: withScripts(redis), keys: makeKeys(stack.prefix), cache: () => ({ size: 100, ttlS: 60 }), hook: NO_COMMIT_HOOK, log, signal: own.signal });
      const waiting = local.submit(job([pub(uniqueChannel('stop'))], `s-${randomUUID()}`, 5));
      await new Promise((r) => setTimeout(r, 50));
      own.abort();
      await expect(waiting).rejects.toMatchObject({ name: 'ShuttingDown' });
    });
  });
});
