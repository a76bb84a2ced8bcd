/**
 * The fault suite (`npm run test:faults`): a whole cluster under steady publish traffic, hit
 * by one fault per test, then audited against guarantees 1–6.
 *
 * The cluster: a private PostgreSQL and a private Redis (destructive faults never touch the
 * servers other test files share), each reached through a TCP proxy that can make it
 * unreachable while it keeps running; two gateways and two persist workers as child
 * processes of the real CLI, pointed at the proxies; every client connected through a
 * round-robin TCP proxy in front of the two gateways (the load balancer), so subscribers
 * and publishers sit on both gateways and move to the other one when theirs goes away.
 *
 * Each test starts its own traffic on a channel of its own (three publishers, four
 * subscribers), injects its fault while the traffic runs, lets the traffic go on until it
 * is acknowledged again, then stops it, waits for the queues to drain and the subscribers
 * to settle, and audits what was acknowledged against what PostgreSQL holds and what every
 * subscriber received (the SDK's own reconnect and recovery bring subscribers back). Every
 * count of the audit table must be zero but the last: a publish that got an error reply
 * (only ever a temporary one) must never be stored (issue 12), and only publishes that got no
 * reply at all may commit after what their client sent on a later connection.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import { freePort } from '../../src/devstack/index.js';
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
import { TcpProxy } from '../helpers/proxy.js';
import {
  startPrivateServers,
  TestStack,
  token,
  uniqueChannel,
  wsUrl,
  type ChildNode,
} from '../helpers/stack.js';
import { waitFor, within } from '../helpers/wait.js';

/** How long PostgreSQL or Redis stays unreachable, and a gateway stays frozen. */
const OUTAGE_MS = 10_000;
/** Server pings every 3 s; a client that hears none for 3 + 4 s reconnects (a frozen gateway). */
const PING_INTERVAL_S = 3;
const CLIENT_PING_GRACE_MS = 4000;
/** Error codes of a publish that waited or failed temporarily: 100 internal (temporary) from
 * the server, and the SDK's own 1 (timeout), 2 (transport closed), 11 (connection closed). */
const TEMPORARY_ERRORS = new Set(['100', '1', '2', '11']);
const PUBLISHERS = 3;
const SUBSCRIBERS = 4;
/** Per publisher: one publish every 20 ms (about 150/s in all), never more than this many. */
const PUBLISH_INTERVAL_MS = 20;
const MAX_PER_PUBLISHER = 6000;

interface Sub extends RecordedSubscription {
  name: string;
  client: Centrifuge;
}

describe('fault suite: 2 gateways, 2 workers, private PostgreSQL and Redis behind proxies', () => {
  let servers: Awaited<ReturnType<typeof startPrivateServers>>;
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let lb: TcpProxy;
  let stack: TestStack;
  const gatewayPorts: number[] = [];
  const gateways: ChildNode[] = [];
  const workers: ChildNode[] = [];
  const audits: Audit[] = [];
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    servers = await startPrivateServers({ redisAppendonly: true });
    cleanups.push(() => servers.close());
    pgProxy = new TcpProxy([servers.pg.port]);
    redisProxy = new TcpProxy([servers.redis.port]);
    await Promise.all([pgProxy.listen(), redisProxy.listen()]);
    cleanups.push(
      () => pgProxy.close(),
      () => redisProxy.close(),
    );
    stack = new TestStack({
      databaseUrl: withPort(servers.pg.url, pgProxy.port),
      redisUrl: withPort(servers.redis.url, redisProxy.port),
      env: { TIDINGS_PING_INTERVAL_S: String(PING_INTERVAL_S), TIDINGS_PONG_TIMEOUT_S: '2' },
    });
    cleanups.push(() => stack.close());
    gatewayPorts.push(await freePort(), await freePort());
    gateways.push(...(await Promise.all(gatewayPorts.map((port) => startGateway(port)))));
    workers.push(...(await Promise.all([stack.spawn('worker'), stack.spawn('worker')])));
    lb = new TcpProxy([...gatewayPorts], { balance: 'round-robin' });
    await lb.listen();
    cleanups.push(() => lb.close());
  }, 180_000);

  afterAll(async () => {
    if (audits.length > 0) console.log(`[faults] all audits\n${auditTable(audits)}`);
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  });

  beforeEach(async () => {
    // Whatever the previous test did, each starts on a whole, healthy cluster.
    for (const [i, port] of gatewayPorts.entries()) {
      await waitFor(
        `gateway ${i} (port ${port}) to be ready (Redis and PostgreSQL answering)`,
        () => isReady(port),
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      );
    }
    onTestFailed(async () => {
      const report = await stack.queueReport().catch((err: unknown) => [`queue report failed: ${String(err)}`]);
      console.log(`[faults] queues:\n${report.join('\n')}`);
      for (const [i, node] of [...gateways, ...workers].entries()) {
        // Warnings, and the partition moves (info) that explain who consumed what.
        const tail = node.output.filter((l) => !l.includes('"level":30') || l.includes('partition')).slice(-25);
        console.log(
          `[faults] ${node.role} ${i} (pid ${node.process.pid}) last warnings:\n${tail.join('\n')}`,
        );
      }
    });
  });

  function startGateway(port: number): Promise<ChildNode> {
    return stack.spawn('gateway', { PORT: String(port) });
  }

  /** A client through the load balancer that notices a silent (frozen) gateway. */
  async function lbClient(user: string): Promise<Centrifuge> {
    return newClient(wsUrl(lb.port), await token(user), { maxServerPingDelay: CLIENT_PING_GRACE_MS });
  }

  /**
   * Three publishers and four subscribers on a fresh channel, through the load balancer (so
   * on both gateways), the publishers streaming until finish().
   */
  class Traffic {
    readonly channel: string;
    readonly subs: Sub[] = [];
    readonly publishers: Publisher[] = [];
    private readonly clients: Centrifuge[] = [];
    private readonly stop = new AbortController();
    private streams: Promise<unknown> = Promise.resolve();

    constructor(readonly test: string) {
      this.channel = uniqueChannel('faults');
    }

    async start(): Promise<this> {
      // One at a time, so that the round-robin balancer alternates them between gateways.
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const client = await lbClient(`sub${i}`);
        this.clients.push(client);
        const rec = record(client, this.channel);
        rec.sub.subscribe();
        client.connect();
        await rec.sub.ready(10_000);
        this.subs.push({ name: `sub${i}`, client, ...rec });
      }
      for (let i = 0; i < PUBLISHERS; i++) {
        const client = await lbClient(`pub${i}`);
        this.clients.push(client);
        client.connect();
        await client.ready(10_000);
        this.publishers.push(new Publisher(client, this.channel, `p${i}`));
      }
      this.streams = Promise.all(
        this.publishers.map((p) =>
          p.stream({ signal: this.stop.signal, max: MAX_PER_PUBLISHER, intervalMs: PUBLISH_INTERVAL_MS }),
        ),
      );
      return this;
    }

    acked(): number {
      return this.publishers.reduce((n, p) => n + p.acked.size, 0);
    }

    failures(): number {
      return this.publishers.reduce((n, p) => n + p.failed.size, 0);
    }

    /** Waits until `more` publishes beyond what is acknowledged now are acknowledged. */
    async flowing(more: number, what: string, timeoutMs = 60_000): Promise<void> {
      const from = this.acked();
      await waitFor(
        () =>
          `${what}: ${more} more publishes acknowledged (${this.acked() - from} so far; errors: ${this.errorSummary()})`,
        () => this.acked() >= from + more,
        { timeoutMs, intervalMs: 50 },
      );
    }

    /** Error replies by code and message, e.g. "100 internal server error ×12". */
    errorSummary(): string {
      const counts = new Map<string, number>();
      for (const p of this.publishers)
        for (const why of p.failed.values()) counts.set(why, (counts.get(why) ?? 0) + 1);
      return [...counts].map(([why, n]) => `${why.trim()} ×${n}`).join('; ') || 'none';
    }

    /** How each subscriber came back, e.g. "sub0 resubscribed 1× (recovered 1)". */
    resubscribeSummary(): string {
      return this.subs
        .map((s) => {
          const again = s.subscribedEvents.filter((e) => e.wasRecovering);
          return `${s.name} resubscribed ${again.length}× (recovered ${again.filter((e) => e.recovered).length})`;
        })
        .join('; ');
    }

    /** Resubscriptions whose recovery failed (the SDK then starts over at the top). */
    unrecovered(): string[] {
      return this.subs.flatMap((s) =>
        s.subscribedEvents.filter((e) => e.wasRecovering && !e.recovered).map(() => s.name),
      );
    }

    /** Error codes that are not temporary ones. */
    nonTemporaryErrors(): string[] {
      return this.publishers.flatMap((p) =>
        [...p.failed.values()].filter((why) => !TEMPORARY_ERRORS.has(why.split(' ')[0]!)),
      );
    }

    /**
     * Stops the traffic, waits until every queued publication is committed and every
     * subscriber has every stored one, then audits, prints and returns the audit.
     */
    async finish(): Promise<Audit> {
      this.stop.abort();
      await within('every publish of the stopped traffic to get its reply', this.streams, 30_000);
      await waitFor(
        'the ingest queues to drain (every accepted publication committed or given up)',
        async () => (await stack.unfinishedJobs()) === 0,
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      const stored = await storedPublications(servers.pg.url, this.channel);
      for (const s of this.subs) {
        await waitFor(
          () =>
            `${s.name} (client ${s.client.state}, subscription ${s.sub.state}) to receive all ${stored.length} stored publications ` +
            `(has ${distinct(s)} distinct, last offset ${s.received.at(-1)?.offset ?? 0})`,
          () => distinct(s) >= stored.length,
          { timeoutMs: 60_000, intervalMs: 100 },
        );
      }
      await settle(500);
      const audit = auditRun(this.test, {
        publishers: this.publishers,
        stored,
        subscribers: this.subs.map((s) => ({ name: s.name, received: s.received })),
      });
      audits.push(audit);
      printAudit(audit);
      console.log(
        `[faults] ${this.test}\n${auditTable([audit])}\n[faults]   error replies: ${this.errorSummary()}\n` +
          `[faults]   subscribers: ${this.resubscribeSummary()}`,
      );
      return audit;
    }

    close(): void {
      this.stop.abort();
      for (const c of this.clients) c.disconnect();
    }
  }

  /** Runs `body` on fresh traffic, then audits: every failure count must be zero. */
  async function underTraffic(test: string, body: (t: Traffic) => Promise<void>): Promise<Audit> {
    const traffic = new Traffic(test);
    try {
      await traffic.start();
      await traffic.flowing(300, 'the traffic to be under way');
      await body(traffic);
      const audit = await traffic.finish();
      expect(audit.stored, 'PostgreSQL holds at least every acknowledged publish').toBeGreaterThanOrEqual(
        audit.acknowledged,
      );
      expect(traffic.nonTemporaryErrors(), 'publishes fail only with temporary errors').toEqual([]);
      expect(traffic.unrecovered(), 'every resubscription recovered the gap').toEqual([]);
      expect(auditFailures(audit)).toEqual(NO_FAILURES);
      return audit;
    } finally {
      traffic.close();
    }
  }

  it('kill -9 of a worker, then a restart', async () => {
    await underTraffic('worker kill -9 + restart', async (t) => {
      await waitFor('a job to be active', async () => (await stack.jobCount(['active'])) > 0, {
        intervalMs: 10,
      });
      expect(await workers[0]!.kill('SIGKILL'), 'the worker died of SIGKILL').toBeNull();
      await t.flowing(300, 'the other worker to go on alone');
      workers[0] = await stack.spawn('worker');
      await t.flowing(300, 'the traffic to go on with the restarted worker');
    });
  });

  it('kill -9 of a gateway, then a restart', async () => {
    await underTraffic('gateway kill -9 + restart', async (t) => {
      const clients = [...t.subs.map((s) => s.client), ...t.publishers.map((p) => p.client)];
      // When each client of the killed gateway lost its connection, and when it was back.
      const lost = new Map<Centrifuge, number>();
      const back = new Map<Centrifuge, number>();
      for (const c of clients) {
        c.on('connecting', () => void (lost.has(c) || lost.set(c, Date.now())));
        c.on('connected', () => void (lost.has(c) && !back.has(c) && back.set(c, Date.now())));
      }
      const killAt = Date.now();
      expect(await gateways[0]!.kill('SIGKILL'), 'the gateway died of SIGKILL').toBeNull();
      await waitFor(
        'the killed gateway’s clients to be connected again (to the other gateway)',
        () => lost.size > 0 && [...lost.keys()].every((c) => back.has(c)) && clients.every((c) => c.state === 'connected'),
        { timeoutMs: 30_000 },
      );
      await t.flowing(300, 'the traffic to go on through the other gateway');
      // Measured, not bounded here (issue 12 asks to keep it measured): the SDK's reconnect
      // backoff; the subscribers' recovery is what the audit below checks complete.
      console.log(
        `[faults] gateway kill -9: ${lost.size} of ${clients.length} clients lost their connection; all back ` +
          `(on the other gateway) ${Math.max(...back.values()) - killAt} ms after the kill; ` +
          `300 more publishes acknowledged ${Date.now() - killAt} ms after it`,
      );
      gateways[0] = await startGateway(gatewayPorts[0]!);
      await t.flowing(300, 'the traffic to go on with the restarted gateway');
    });
  });

  it('kill -9 of Redis, restarted empty (its append-only file deleted)', async () => {
    await underTraffic('Redis kill -9, restarted empty', async (t) => {
      await servers.redis.kill();
      await sleep(1000);
      await rm(join(servers.redis.dataDir, 'appendonlydir'), { recursive: true, force: true });
      await servers.redis.start();
      await t.flowing(300, 'the traffic to go on with an empty Redis');
    });
  });

  it('kill -9 of Redis, restarted from its append-only file', async () => {
    await underTraffic('Redis kill -9, restarted from AOF', async (t) => {
      await servers.redis.kill();
      await sleep(1000);
      await servers.redis.start();
      await t.flowing(300, 'the traffic to go on with the restarted Redis');
    });
  });

  it('kill -9 of PostgreSQL, then a restart (crash recovery)', async () => {
    await underTraffic('PostgreSQL kill -9 + restart', async (t) => {
      await servers.pg.kill();
      await sleep(1000);
      await servers.pg.start();
      await t.flowing(300, 'the traffic to go on with the restarted PostgreSQL');
    });
  });

  it('PostgreSQL unreachable for 10 s: publishes wait or fail temporarily, none is acknowledged without a commit', async () => {
    await underTraffic('PostgreSQL unreachable 10 s', async (t) => {
      pgProxy.block();
      try {
        // What was committed before the block may still be acknowledged for a moment; after
        // that nothing can be, since nothing can commit.
        await sleep(3000);
        const acked = t.acked();
        await sleep(OUTAGE_MS - 3000);
        expect(t.acked(), 'no publish is acknowledged while PostgreSQL is unreachable').toBe(acked);
        expect(t.failures(), 'publishes made meanwhile failed (temporarily)').toBeGreaterThan(0);
      } finally {
        pgProxy.unblock();
      }
      await t.flowing(300, 'the traffic to go on once PostgreSQL is reachable again');
    });
  });

  it('Redis unreachable for 10 s: publishes wait or fail temporarily, nothing acknowledged is lost', async () => {
    await underTraffic('Redis unreachable 10 s', async (t) => {
      redisProxy.block();
      const sentBefore = new Set(t.publishers.flatMap((p) => p.sent));
      const ackedBefore = t.acked();
      try {
        await sleep(OUTAGE_MS);
        // A publish sent while Redis is away can reach no queue, so none is acknowledged. One
        // whose job committed just before the cut, its ack lost, is acknowledged at its
        // timeout all the same: its gateway finds the commit in PostgreSQL (issue 12).
        const ackedSince = t.publishers.flatMap((p) => [...p.acked].filter((key) => !sentBefore.has(key)));
        expect(ackedSince, 'no publish sent while Redis is unreachable is acknowledged').toEqual([]);
        expect(t.failures(), 'publishes made meanwhile failed (temporarily)').toBeGreaterThan(0);
        console.log(`[faults] acknowledged during the outage (committed before it): ${t.acked() - ackedBefore}`);
      } finally {
        redisProxy.unblock();
      }
      await t.flowing(300, 'the traffic to go on once Redis is reachable again');
    });
  });

  it('a gateway frozen for 10 s (SIGSTOP, then SIGCONT)', async () => {
    await underTraffic('gateway frozen 10 s', async (t) => {
      const frozen = gateways[1]!.process;
      frozen.kill('SIGSTOP');
      try {
        await sleep(OUTAGE_MS);
      } finally {
        frozen.kill('SIGCONT');
      }
      await t.flowing(300, 'the traffic to go on after the gateway thawed');
    });
  });
});

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

function distinct(s: Sub): number {
  return new Set(s.received.map((r) => r.offset)).size;
}

async function isReady(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) });
  return res.status === 200;
}
