/**
 * Failover (issue 12, part 1): a worker that dies or freezes loses its partitions within
 * about a lease (TIDINGS_WORKER_LOCK_MS, its default of 1.5 s here), the partition's pending
 * jobs run again at once on the worker that took it over, and a publisher that retries after
 * an error (as apps do) never gets a publication stored twice: an error reply is definitive.
 *
 * Each test: one gateway and two workers as child processes of the real CLI (so they can be
 * killed with SIGKILL or frozen with SIGSTOP), one client publishing one message at a time
 * through the gateway and retrying each publish up to 3 times after an error, one
 * subscriber. The worker that owns the channel's partition is found through its lease
 * (`${prefix}:lease:${partition}` holds the owner's id; each child's id is the one that
 * appeared in the live-workers ZSET when it started).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { makeKeys, partitionOf } from '../../src/bus/keys.js';
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
import { newClient, record, type RecordedSubscription } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl, type ChildNode } from '../helpers/stack.js';
import { waitFor, within } from '../helpers/wait.js';

const PARTITIONS = 4;
/** Retries after a first error: 4 attempts in all. */
const RETRIES = 3;
const RETRY_DELAY_MS = 100;

interface Timing {
  key: string;
  /** First attempt sent. */
  sentAt: number;
  /** Acknowledged (after however many attempts), if it was. */
  ackedAt?: number;
  attempts: number;
}

/**
 * One publish at a time, each retried up to RETRIES times after an error, the bookkeeping in
 * a `Publisher` (sent, acked, failed after every attempt, connection) so that `auditRun`
 * audits it. A retry carries the same key, so a publish stored twice is a duplicate.
 */
class RetryingPublisher {
  readonly book: Publisher;
  readonly timings: Timing[] = [];
  /** Every error an attempt got, e.g. "p-12#1: 100 internal server error". */
  readonly attemptErrors: string[] = [];
  private connection: number;

  constructor(
    readonly client: Centrifuge,
    channel: string,
    readonly name: string,
  ) {
    this.book = new Publisher(client, channel, name);
    this.connection = client.state === 'connected' ? 0 : -1;
    client.on('connected', () => void this.connection++);
  }

  get acked(): number {
    return this.book.acked.size;
  }

  /** Publishes up to `count` messages in order, stopping early when `signal` aborts. */
  async run(count: number, signal?: AbortSignal): Promise<void> {
    for (let seq = 0; seq < count && !signal?.aborted; seq++) {
      const key = `${this.name}-${seq}`;
      this.book.sent.push(key);
      this.book.connectionOf.set(
        key,
        this.client.state === 'connected' ? this.connection : this.connection + 1,
      );
      const timing: Timing = { key, sentAt: Date.now(), attempts: 0 };
      this.timings.push(timing);
      for (;;) {
        timing.attempts++;
        try {
          await this.client.publish(this.book.channel, { k: key });
          timing.ackedAt = Date.now();
          this.book.acked.add(key);
          break;
        } catch (err) {
          const e = err as { code?: number; message?: string };
          const why = `${e?.code ?? '?'} ${e?.message ?? ''}`;
          this.attemptErrors.push(`${key}#${timing.attempts}: ${why}`);
          if (timing.attempts > RETRIES) {
            this.book.failed.set(key, why);
            break;
          }
          await sleep(RETRY_DELAY_MS);
        }
      }
    }
  }

  /** Acknowledgement times, in order. */
  ackTimes(): number[] {
    return this.timings.flatMap((t) => (t.ackedAt === undefined ? [] : [t.ackedAt]));
  }
}

interface Cluster {
  stack: TestStack;
  redis: Redis;
  gateway: ChildNode;
  /** Worker id (as in the lease) → its child process. */
  workers: Map<string, ChildNode>;
  channel: string;
  partition: number;
  leaseKey: string;
  publisher: RetryingPublisher;
  sub: RecordedSubscription & { client: Centrifuge };
  clients: Centrifuge[];
}

const cleanups: (() => Promise<unknown>)[] = [];
const audits: Audit[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  cleanups.length = 0;
});

describe('worker failover with a retrying publisher', () => {
  /** Spawns a worker and learns its id: the member it added to the live-workers ZSET. */
  async function spawnWorker(c: Pick<Cluster, 'stack' | 'redis' | 'workers'>): Promise<[string, ChildNode]> {
    const keys = makeKeys(c.stack.prefix);
    const before = new Set(await c.redis.zrange(keys.workers, '0', '-1'));
    const node = await c.stack.spawn('worker');
    const id = await waitFor('the new worker to announce itself', async () =>
      (await c.redis.zrange(keys.workers, '0', '-1')).find((w) => !before.has(w) && !c.workers.has(w)),
    );
    c.workers.set(id, node);
    return [id, node];
  }

  async function startCluster(test: string): Promise<Cluster> {
    const stack = new TestStack({
      // TIDINGS_WORKER_LOCK_MS (lease and job lock) at its default.
      env: { TIDINGS_PARTITIONS: String(PARTITIONS), TIDINGS_WORKER_LOCK_MS: '1500' },
    });
    cleanups.push(() => stack.close());
    const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    cleanups.push(() => redis.quit());
    const workers = new Map<string, ChildNode>();
    const partial = { stack, redis, workers };
    const gateway = await stack.spawn('gateway');
    // One after the other, so that each one's id is the one new member of the ZSET.
    await spawnWorker(partial);
    await spawnWorker(partial);
    const keys = makeKeys(stack.prefix);
    // Balanced: every lease held, two each (the first worker hands two back to the second).
    await waitFor(
      'the two workers to own two partitions each',
      async () => {
        const owners = await Promise.all(
          Array.from({ length: PARTITIONS }, (_, p) => redis.get(keys.lease(p))),
        );
        return [...workers.keys()].every((id) => owners.filter((o) => o === id).length === PARTITIONS / 2);
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    onTestFailed(() => {
      for (const [id, node] of [['gateway', gateway] as const, ...workers]) {
        const tail = node.output.filter((l) => !l.includes('"level":30')).slice(-15);
        console.log(
          `[failover] ${test}: ${node.role} ${id} (pid ${node.process.pid}) last warnings:\n${tail.join('\n')}`,
        );
      }
    });

    const channel = uniqueChannel('failover');
    const partition = partitionOf(channel, PARTITIONS);
    const clients: Centrifuge[] = [];
    const subClient = newClient(wsUrl(gateway.port), await token('sub'));
    clients.push(subClient);
    const rec = record(subClient, channel);
    rec.sub.subscribe();
    subClient.connect();
    await rec.sub.ready(10_000);
    const pubClient = newClient(wsUrl(gateway.port), await token('pub'));
    clients.push(pubClient);
    pubClient.connect();
    await pubClient.ready(10_000);
    cleanups.push(async () => {
      for (const client of clients) client.disconnect();
    });
    return {
      stack,
      redis,
      gateway,
      workers,
      channel,
      partition,
      leaseKey: keys.lease(partition),
      publisher: new RetryingPublisher(pubClient, channel, 'p'),
      sub: { client: subClient, ...rec },
      clients,
    };
  }

  /**
   * Polls, from the kill on, when the partition's lease passed to another worker and when the
   * dead worker's heartbeat left the live-workers ZSET (each worker's share is ⌈P / live⌉).
   */
  function watchTakeover(c: Cluster, victim: string) {
    const workersKey = makeKeys(c.stack.prefix).workers;
    const seen: { takenOverAt?: number; takenOverBy?: string; prunedAt?: number } = {};
    const watching = waitFor(
      'the lease to pass to another worker and the dead worker to leave the live-workers set',
      async () => {
        const [lease, score] = await Promise.all([
          c.redis.get(c.leaseKey),
          c.redis.zscore(workersKey, victim),
        ]);
        if (seen.takenOverAt === undefined && lease && lease !== victim) {
          seen.takenOverAt = Date.now();
          seen.takenOverBy = lease;
        }
        if (seen.prunedAt === undefined && score === null) seen.prunedAt = Date.now();
        return seen.takenOverAt !== undefined && seen.prunedAt !== undefined;
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    ).catch(() => false);
    return { done: async () => (await watching, seen) };
  }

  async function owner(c: Cluster): Promise<{ id: string; node: ChildNode }> {
    const id = await c.redis.get(c.leaseKey);
    const node = id ? c.workers.get(id) : undefined;
    if (!id || !node)
      throw new Error(`lease ${c.leaseKey} is held by ${id ?? 'nobody'}, not one of our workers`);
    return { id, node };
  }

  /** Waits for the queues to drain and the subscriber to have everything, then audits. */
  async function audit(c: Cluster, test: string): Promise<Audit> {
    await waitFor('the ingest queues to drain', async () => (await c.stack.unfinishedJobs()) === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const stored = await storedPublications(c.stack.databaseUrl, c.channel);
    const distinct = () => new Set(c.sub.received.map((r) => r.offset)).size;
    await waitFor(
      () => `the subscriber to receive all ${stored.length} stored publications (has ${distinct()})`,
      () => distinct() >= stored.length,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    await settle(500);
    const result = auditRun(test, {
      publishers: [c.publisher.book],
      stored,
      subscribers: [{ name: 'sub', received: c.sub.received }],
    });
    audits.push(result);
    printAudit(result);
    console.log(`[failover] ${test}\n${auditTable([result])}`);
    const errors = c.publisher.attemptErrors;
    console.log(
      `[failover]   attempt errors: ${errors.length}${errors.length ? ` (${errors.slice(0, 10).join('; ')})` : ''}; ` +
        `failed after ${RETRIES + 1} attempts: ${c.publisher.book.failed.size}`,
    );
    return result;
  }

  it('kill -9 of the worker that owns the channel’s partition after message 1,000, restarted 2 s later', async () => {
    const test = 'worker kill -9 mid-stream, retrying publisher';
    const c = await startCluster(test);
    const TOTAL = 2000;
    const publishing = c.publisher.run(TOTAL);

    await waitFor(
      () => `1,000 publishes to be acknowledged (${c.publisher.acked})`,
      () => c.publisher.acked >= 1000,
      { timeoutMs: 40_000, intervalMs: 2 },
    );
    const victim = await owner(c);
    const killAt = Date.now();
    victim.node.process.kill('SIGKILL');
    const watch = watchTakeover(c, victim.id);
    expect(await victim.node.exited, 'the worker died of SIGKILL').toBeNull();
    c.workers.delete(victim.id);
    await sleep(Math.max(0, killAt + 2000 - Date.now()));
    const restartAt = Date.now();
    const [restartedId] = await spawnWorker(c);
    const restartedReadyAt = Date.now();

    await within(
      () => `the publisher to get replies to all ${TOTAL} publishes (acked ${c.publisher.acked})`,
      publishing,
      45_000,
    );
    const takeover = await owner(c).catch(() => undefined);
    const { takenOverAt, takenOverBy, prunedAt } = await watch.done();

    // Failover time: the longest gap between consecutive acknowledgements that ends after the kill.
    const acks = c.publisher.ackTimes();
    let gap = 0;
    let gapFrom = 0;
    for (let i = 1; i < acks.length; i++) {
      if (acks[i]! <= killAt) continue;
      if (acks[i]! - acks[i - 1]! > gap) {
        gap = acks[i]! - acks[i - 1]!;
        gapFrom = acks[i - 1]!;
      }
    }
    // Ack latency (first attempt → ack, retries included) of the publishes sent from the kill
    // until 2 s after the restarted worker was ready.
    const during = c.publisher.timings.filter(
      (t) => t.sentAt >= killAt - 100 && t.sentAt <= restartedReadyAt + 2000,
    );
    const latencies = during.map((t) => (t.ackedAt ?? Infinity) - t.sentAt).sort((a, b) => a - b);
    const p99 = latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.99) - 1)] ?? 0;
    const max = latencies.at(-1) ?? 0;
    console.log(
      `[failover] worker kill -9: killed ${victim.id} (owner of partition ${c.partition}) after ${1000} acks; ` +
        `failover time (longest gap between consecutive acks after the kill) ${gap} ms, ` +
        `starting ${gapFrom - killAt} ms after the kill; ` +
        `lease taken over at +${takenOverAt ? takenOverAt - killAt : '?'} ms by ${takenOverBy ?? '?'}` +
        `${takenOverBy === restartedId ? ' (the restarted worker)' : ''}; ` +
        `the dead worker's heartbeat pruned from the live-workers set at +${prunedAt ? prunedAt - killAt : '?'} ms; restart at +${restartAt - killAt} ms, ready at +${restartedReadyAt - killAt} ms; ` +
        `ack latency of the ${during.length} publishes sent during the kill: p99 ${p99} ms, max ${max} ms ` +
        `(targets: takeover ≤ 2000 ms, p99 ≤ 3000 ms, max ≤ 4000 ms); ` +
        `partition now owned by ${takeover?.id ?? '?'}${takeover?.id === restartedId ? ' (the restarted worker)' : ''}`,
    );

    const result = await audit(c, test);
    expect(auditFailures(result)).toEqual(NO_FAILURES);
    expect(result.ackedLost, 'acknowledged publishes lost').toBe(0);
    expect(result.duplicates, 'publications stored twice').toBe(0);
    expect(result.fifoViolations, 'publisher order broken').toBe(0);
    expect(c.publisher.book.failed.size, `publishes that failed all ${RETRIES + 1} attempts`).toBe(0);
    expect(result.stored, 'every publish stored exactly once').toBe(TOTAL);
    // A regression bound (the issue's bound on the slowest ack during a kill), not its 2 s
    // target, which the printed figure is compared with in docs/guarantees.md: takeover used to
    // take 30-60 s, then 2-4 s.
    expect(gap, 'failover time (longest gap between acks after the kill), ms').toBeLessThanOrEqual(4000);
  });

  it('SIGSTOP of the worker that owns the channel’s partition for 10 s, then SIGCONT', async () => {
    const test = 'worker SIGSTOP 10 s + SIGCONT, retrying publisher';
    const c = await startCluster(test);
    const stop = new AbortController();
    const publishing = c.publisher.run(20_000, stop.signal);
    try {
      await waitFor(
        () => `300 publishes to be acknowledged (${c.publisher.acked})`,
        () => c.publisher.acked >= 300,
        { timeoutMs: 20_000, intervalMs: 2 },
      );
      const frozen = await owner(c);
      const stopAt = Date.now();
      const ackedAtStop = c.publisher.acked;
      frozen.node.process.kill('SIGSTOP');
      let takenOverBy: string | null = null;
      let takenOverAt = 0;
      try {
        await waitFor(
          'another worker to take the frozen worker’s partition over',
          async () => {
            const id = await c.redis.get(c.leaseKey);
            if (id && id !== frozen.id) {
              takenOverBy = id;
              takenOverAt = Date.now();
            }
            return takenOverBy;
          },
          { timeoutMs: 9_000, intervalMs: 20 },
        );
        await sleep(Math.max(0, stopAt + 10_000 - Date.now()));
      } finally {
        frozen.node.process.kill('SIGCONT');
      }
      const contAt = Date.now();
      const ackedDuringFreeze = c.publisher.timings.filter(
        (t) => t.ackedAt !== undefined && t.ackedAt > stopAt && t.ackedAt < contAt,
      );
      const firstAckAfterTakeover = ackedDuringFreeze.find((t) => t.ackedAt! >= takenOverAt)?.ackedAt;
      const acks = c.publisher.ackTimes();
      let gap = 0;
      for (let i = 1; i < acks.length; i++)
        if (acks[i]! > stopAt && acks[i]! < contAt) gap = Math.max(gap, acks[i]! - acks[i - 1]!);
      console.log(
        `[failover] worker SIGSTOP: froze ${frozen.id} (owner of partition ${c.partition}) for ${contAt - stopAt} ms; ` +
          `lease taken over by ${String(takenOverBy)} at +${takenOverAt - stopAt} ms; ` +
          `first ack after the takeover at +${firstAckAfterTakeover === undefined ? '?' : firstAckAfterTakeover - stopAt} ms; ` +
          `longest gap between acks during the freeze ${gap} ms; ${ackedDuringFreeze.length} publishes acknowledged during the freeze ` +
          `(${c.publisher.acked - ackedAtStop} since the stop)`,
      );
      expect(ackedDuringFreeze.length, 'publishes acknowledged while the owner was frozen').toBeGreaterThan(
        0,
      );

      // The thawed worker finds its lease gone; the traffic goes on.
      const ackedAtCont = c.publisher.acked;
      await waitFor(
        () => `300 more publishes acknowledged after SIGCONT (${c.publisher.acked - ackedAtCont})`,
        () => c.publisher.acked >= ackedAtCont + 300,
        { timeoutMs: 20_000, intervalMs: 10 },
      );
    } finally {
      stop.abort();
    }
    await within('the publisher to stop', publishing, 30_000);

    const result = await audit(c, test);
    expect(auditFailures(result)).toEqual(NO_FAILURES);
    expect(result.ackedLost, 'acknowledged publishes lost').toBe(0);
    expect(result.duplicates, 'publications stored twice').toBe(0);
    expect(result.fifoViolations, 'publisher order broken').toBe(0);
    expect(c.publisher.book.failed.size, `publishes that failed all ${RETRIES + 1} attempts`).toBe(0);
  });
});
