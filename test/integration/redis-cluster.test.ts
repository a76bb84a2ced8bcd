/**
 * Redis Cluster mode (issue 13) against a private 3-master cluster with one replica each:
 * the acceptance checks (order across two gateways, durable acks, recovery after a
 * reconnect, the HTTP API), then publishing through a failover of a master and through a
 * reshard of a partition's slot, audited as the fault suite does: 0 lost, 0 duplicated, 0
 * reordered. Gateways and workers run in this process, with TIDINGS_REDIS_CLUSTER=1 and
 * REDIS_URL listing every node as a seed.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkRedisMode, closeRedis, connectRedis } from '../../src/app/redis.js';
import { makeKeys, partitionOf } from '../../src/bus/keys.js';
import { PubSub } from '../../src/bus/pubsub.js';
import { createLogger } from '../../src/observability/logger.js';
import { slotOf } from '../../src/bus/slots.js';
import { API_KEY, call } from '../helpers/api.js';
import { auditFailures, auditRun, NO_FAILURES, printAudit, Publisher, settle, storedPublications } from '../helpers/audit.js';
import { connected, expectContiguous, newClient, record, subscribed, waitForCount, type RecordedSubscription } from '../helpers/client.js';
import { startPrivateRedisCluster, TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PARTITIONS = 6;

interface NodeView {
  id: string;
  port: number;
  master: boolean;
  masterId: string;
  slots: [number, number][];
}

/** CLUSTER NODES as seen by one node. */
async function clusterNodes(port: number): Promise<NodeView[]> {
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const text = String(await admin.call('CLUSTER', 'NODES'));
    return text.trim().split('\n').map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split(':')[1]!.split('@')[0]),
        master: flags!.includes('master'),
        masterId: masterId!,
        slots: slots.filter((s) => !s.startsWith('[')).map((s) => {
          const [lo, hi] = s.split('-').map(Number);
          return [lo!, hi ?? lo!];
        }),
      };
    });
  } finally {
    admin.disconnect();
  }
}

function ownerOf(nodes: NodeView[], slot: number): NodeView {
  const owner = nodes.find((n) => n.master && n.slots.some(([lo, hi]) => slot >= lo && slot <= hi));
  if (!owner) throw new Error(`no master owns slot ${slot}`);
  return owner;
}

describe('Redis Cluster mode', () => {
  let cluster: Awaited<ReturnType<typeof startPrivateRedisCluster>>;
  let stack: TestStack;
  let ports: number[] = [];
  let apiPort = 0;
  const keys = makeKeys('unused', { partitions: PARTITIONS });

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster({ masters: 3, replicasPerMaster: 1 });
    stack = new TestStack({ redisUrl: cluster.url, env: { TIDINGS_REDIS_CLUSTER: '1', TIDINGS_PARTITIONS: String(PARTITIONS) } });
    const gateways = await Promise.all([stack.gateway({ TIDINGS_API_KEY: API_KEY }), stack.gateway({ TIDINGS_API_KEY: API_KEY })]);
    await Promise.all([stack.worker(), stack.worker()]);
    ports = gateways.map((g) => g.port);
    apiPort = ports[0]!;
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await cluster?.close();
  });

  it('refuses, in one line, a REDIS_URL whose server is not in the configured mode', async () => {
    const single = inject('redisUrl');
    await expect(checkRedisMode({ redisUrl: cluster.url, redisCluster: true })).resolves.toBeUndefined();
    await expect(checkRedisMode({ redisUrl: single, redisCluster: false })).resolves.toBeUndefined();
    await expect(checkRedisMode({ redisUrl: cluster.nodes[1]!.url, redisCluster: false })).rejects.toThrow(
      /^TIDINGS_REDIS_CLUSTER: unset, but 127\.0\.0\.1:\d+ is a Redis Cluster node: set TIDINGS_REDIS_CLUSTER=1/,
    );
    await expect(checkRedisMode({ redisUrl: single, redisCluster: true })).rejects.toThrow(
      /^TIDINGS_REDIS_CLUSTER: is on, but 127\.0\.0\.1:\d+ is not a Redis Cluster node \(cluster_enabled:0\)/,
    );
    // Nothing listening: no verdict (the connections retry as they always have).
    await expect(checkRedisMode({ redisUrl: 'redis://127.0.0.1:1', redisCluster: true })).resolves.toBeUndefined();
  });

  it('spreads the partitions over every master', async () => {
    const nodes = await clusterNodes(cluster.nodes[0]!.port);
    const owners = new Set(Array.from({ length: PARTITIONS }, (_, p) => ownerOf(nodes, slotOf(keys.lease(p))).id));
    expect(owners.size).toBe(3);
  });

  it('delivers 3 × 200 publications through 2 gateways and 2 workers exactly once, in order', async () => {
    const total = 600;
    const channel = uniqueChannel('cluster');
    const subscribers = await Promise.all([0, 1, 0, 1].map(async (g, i) => subscribed(wsUrl(ports[g]!), await token(`sub${i}`), channel)));
    const publishers = await Promise.all([0, 1, 2].map(async (p) => connected(wsUrl(ports[p % 2]!), await token(`pub${p}`))));
    await Promise.all(publishers.map((client, p) => Promise.all(Array.from({ length: total / 3 }, (_, seq) => client.publish(channel, { p, seq })))));

    for (const [i, s] of subscribers.entries()) {
      await waitForCount(s, total, `subscriber ${i}`);
      expect(expectContiguous(s.offsets(), total)).toBeUndefined();
      for (let p = 0; p < 3; p++) {
        const seqs = s.received.map((r) => r.data as { p: number; seq: number }).filter((d) => d.p === p).map((d) => d.seq);
        expect(seqs).toEqual(Array.from({ length: total / 3 }, (_, k) => k));
      }
    }
    // Durable acks: every publish that resolved is in PostgreSQL.
    expect((await storedPublications(stack.databaseUrl, channel)).length).toBe(total);
    for (const c of [...subscribers.map((s) => s.client), ...publishers]) c.disconnect();
  });

  it('recovers what a subscriber missed while it was away, from the cluster cache', async () => {
    const channel = uniqueChannel('recover');
    const publisher = await connected(wsUrl(ports[0]!), await token('pub'));
    const client = newClient(wsUrl(ports[1]!), await token('away'));
    const rec = record(client, channel, { recoverable: true });
    rec.sub.subscribe();
    client.connect();
    await waitFor('the subscription', () => rec.subscribedEvents.length === 1);
    for (let i = 0; i < 10; i++) await publisher.publish(channel, { i });
    await waitForCount(rec, 10, 'live publications');
    client.disconnect();
    for (let i = 10; i < 40; i++) await publisher.publish(channel, { i });
    client.connect();
    await waitForCount(rec, 40, 'recovered publications');
    expect(rec.offsets()).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(rec.subscribedEvents.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
    client.disconnect();
    publisher.disconnect();
  });

  it('publishes and answers history and presence through the HTTP API', async () => {
    const channel = uniqueChannel('api');
    const sub = await subscribed(wsUrl(ports[1]!), await token('watcher'), channel);
    for (let i = 1; i <= 5; i++) expect(await call(apiPort, 'publish', { channel, data: { i } })).toMatchObject({ offset: i });
    await waitForCount(sub, 5, 'API publications');
    const history = await call<{ publications: { offset: number }[]; offset: number }>(apiPort, 'history', { channel, limit: -1 });
    expect(history.publications.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(history.offset).toBe(5);
    const presence = await call<{ presence: Record<string, { user: string }> }>(apiPort, 'presence', { channel });
    expect(Object.values(presence.presence).map((c) => c.user)).toEqual(['watcher']);
    const info = await call<{ nodes: unknown[] }>(apiPort, 'info', {});
    expect(info.nodes).toHaveLength(2);
    // history_remove: its ack comes back over the channel's partition's ack topic.
    expect(await call(apiPort, 'history_remove', { channel })).toEqual({});
    const emptied = await call<{ publications: unknown[]; offset: number }>(apiPort, 'history', { channel, limit: -1 });
    expect(emptied).toMatchObject({ publications: [], offset: 5 });
    expect(await call(apiPort, 'publish', { channel, data: { i: 6 } })).toMatchObject({ offset: 6 });
    sub.client.disconnect();
  });

  it('carries an API disconnect to a user on the other gateway (the control topic)', async () => {
    const elsewhere = await connected(wsUrl(ports[1]!), await token('kicked'));
    expect(await call(ports[0]!, 'disconnect', { user: 'kicked' })).toEqual({});
    await waitFor('the user on the other gateway to be disconnected', () => elsewhere.state === 'disconnected');
  });

  it.each(['failover', 'reshard'] as const)('hears a topic again after a %s of its slot, and reports a reconnect (the gateway then checks positions)', async (fault) => {
    const config = stack.config('gateway');
    const log = createLogger('silent');
    const subscriber = connectRedis(config, 'pubsub', log, 'test-pubsub');
    const publisher = connectRedis(config, 'commands', log, 'test-publisher');
    const pubsub = new PubSub(subscriber, log, true);
    let reconnects = 0;
    pubsub.onReconnect(() => reconnects++);
    const topic = keys.topic(uniqueChannel(fault));
    const heard = new Set<string>();
    await pubsub.listen(topic, (message) => heard.add(message));
    /** SPUBLISHes until heard: the report comes when ioredis resubscribes, maybe just before Redis confirms it. */
    const reaches = (message: string) =>
      waitFor(`"${message}" to reach the subscriber`, async () => (await publisher.spublish(topic, message), heard.has(message)), { timeoutMs: 20_000 });
    try {
      await reaches('before');
      const base = reconnects;
      await (fault === 'failover' ? failOver(slotOf(topic)) : moveSlot(slotOf(topic)));
      await waitFor('a reconnect report after the topology change', () => reconnects > base, { timeoutMs: 20_000 });
      await reaches('after');
    } finally {
      await Promise.all([closeRedis(subscriber), closeRedis(publisher)]);
    }
  }, 60_000);

  describe('faults while publishing', () => {
    /** Runs 2 publishers and 4 subscribers on a channel while `fault` runs, then audits. */
    async function underTraffic(name: string, channel: string, fault: () => Promise<void>) {
      const subscribers: RecordedSubscription[] = [];
      for (let i = 0; i < 4; i++) {
        const client = newClient(wsUrl(ports[i % 2]!), await token(`s${i}`));
        const rec = record(client, channel, { recoverable: true, positioned: true });
        rec.sub.subscribe();
        subscribers.push(rec);
        client.connect();
      }
      await waitFor('every subscription', () => subscribers.every((s) => s.subscribedEvents.length > 0));
      const publishers = await Promise.all([0, 1].map(async (p) => new Publisher(await connected(wsUrl(ports[p]!), await token(`p${p}`)), channel, `p${p}`)));
      const stop = new AbortController();
      const traffic = publishers.map((p) => p.stream({ signal: stop.signal, max: 5000, intervalMs: 10 }));
      // Counted, not timed: on a slow machine a second of traffic was under 50 acks, and the
      // fault must land in the middle of a stream, not near its start.
      await waitFor('traffic before the fault', () => publishers.every((p) => p.acked.size >= 50), { timeoutMs: 30_000 });
      await fault();
      // Go on until each publisher has had acks again after the fault.
      const acked = publishers.map((p) => p.acked.size);
      await waitFor('acks after the fault', () => publishers.every((p, i) => p.acked.size > acked[i]! + 20), { timeoutMs: 30_000 });
      stop.abort();
      await Promise.all(traffic);
      await waitFor('the queues to drain', async () => (await stack.unfinishedJobs()) === 0, { timeoutMs: 30_000 });
      const stored = await storedPublications(stack.databaseUrl, channel);
      await waitFor('every subscriber to have every stored publication', () => subscribers.every((s) => new Set(s.offsets()).size >= stored.length), {
        timeoutMs: 60_000,
      });
      await settle(500);
      const audit = auditRun(name, {
        publishers,
        stored,
        subscribers: subscribers.map((s, i) => ({ name: `s${i}`, received: s.received })),
      });
      printAudit(audit);
      for (const s of subscribers) s.sub.unsubscribe();
      for (const p of publishers) p.client.disconnect();
      return audit;
    }

    it('CLUSTER FAILOVER of the master that holds the channel: 0 lost, 0 duplicated, 0 reordered', async () => {
      const channel = uniqueChannel('failover');
      const slot = slotOf(keys.topic(channel));
      const audit = await underTraffic('failover', channel, async () => {
        await failOver(slot);
      });
      expect(audit.acknowledged).toBeGreaterThan(100);
      expect(auditFailures(audit)).toEqual(NO_FAILURES);
      expect(audit.ackedLost).toBe(0);
    }, 180_000);

    it('kill -9 of the master that holds the channel: no acknowledged publication lost, 0 duplicated, 0 reordered', async () => {
      const channel = uniqueChannel('killed');
      const audit = await underTraffic('kill', channel, () => killMaster(slotOf(keys.topic(channel))));
      expect(audit.acknowledged).toBeGreaterThan(100);
      // Replication is asynchronous: jobs the dead master had not passed on may be answered
      // with an error (never committed), but nothing acknowledged may be lost.
      expect(auditFailures(audit)).toEqual(NO_FAILURES);
      expect(audit.ackedLost).toBe(0);
    }, 180_000);

    it('moving the channel’s partition slot to another master: 0 lost, 0 duplicated, 0 reordered', async () => {
      const channel = uniqueChannel('reshard');
      const slot = slotOf(keys.topic(channel));
      expect(slot).toBe(slotOf(keys.lease(partitionOf(channel, PARTITIONS))));
      const before = ownerOf(await clusterNodes(cluster.nodes[0]!.port), slot).id;
      const audit = await underTraffic('reshard', channel, () => moveSlot(slot));
      expect(audit.acknowledged).toBeGreaterThan(100);
      expect(auditFailures(audit)).toEqual(NO_FAILURES);
      expect(ownerOf(await clusterNodes(cluster.nodes[0]!.port), slot).id).not.toBe(before);
    }, 180_000);
  });

  /** kill -9 of the master that owns the slot: its replica takes over after the node timeout (2 s here). */
  async function killMaster(slot: number): Promise<void> {
    const nodes = await clusterNodes(cluster.nodes[0]!.port);
    const master = ownerOf(nodes, slot);
    const replica = nodes.find((n) => !n.master && n.masterId === master.id)!;
    const killed = cluster.nodes.find((n) => n.port === master.port)!;
    await killed.kill();
    await waitFor('the replica to be elected master', async () => ownerOf(await clusterNodes(replica.port), slot).id === replica.id, { timeoutMs: 30_000 });
    // Back with its nodes.conf, it rejoins as the new master's replica (the later tests need every node).
    await killed.start();
    await waitFor('the old master to rejoin as a replica', async () => {
      const view = await clusterNodes(killed.port).catch(() => []);
      return view.some((n) => n.port === killed.port && !n.master) && ownerOf(view, slot).id === replica.id;
    }, { timeoutMs: 30_000 });
  }

  /** A manual failover (CLUSTER FAILOVER on the replica) of the master that owns the slot. */
  async function failOver(slot: number): Promise<void> {
    const nodes = await clusterNodes(cluster.nodes[0]!.port);
    const master = ownerOf(nodes, slot);
    const replica = nodes.find((n) => !n.master && n.masterId === master.id)!;
    const admin = new Redis(replica.port, '127.0.0.1');
    try {
      await admin.call('CLUSTER', 'FAILOVER');
    } finally {
      admin.disconnect();
    }
    // Settled once every node sees the replica owning the slot and the old master demoted: a
    // later step that picks masters from any node's view must not pick the old one.
    await waitFor('every node to see the replica as the slot’s master, and the old master as a replica', async () => {
      for (const node of cluster.nodes) {
        const view = await clusterNodes(node.port);
        if (ownerOf(view, slot).id !== replica.id || view.find((n) => n.id === master.id)?.master) return false;
      }
      return true;
    }, { timeoutMs: 20_000 });
  }

  /** The resharding steps of the cluster spec: IMPORTING, MIGRATING, MIGRATE every key, SETSLOT NODE everywhere. */
  async function moveSlot(slot: number): Promise<void> {
    const nodes = await clusterNodes(cluster.nodes[0]!.port);
    const source = ownerOf(nodes, slot);
    const target = nodes.find((n) => n.master && n.slots.length > 0 && n.id !== source.id)!;
    const [from, to] = [new Redis(source.port, '127.0.0.1'), new Redis(target.port, '127.0.0.1')];
    try {
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
      for (;;) {
        const batch = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (batch.length === 0) break;
        await from.call('MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'REPLACE', 'KEYS', ...batch);
      }
      await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      for (const n of nodes.filter((n) => n.master && n.id !== source.id && n.id !== target.id)) {
        const other = new Redis(n.port, '127.0.0.1');
        await other.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
        other.disconnect();
      }
    } finally {
      from.disconnect();
      to.disconnect();
    }
    await waitFor('every node to agree on the slot’s new owner', async () => {
      for (const node of cluster.nodes) if (ownerOf(await clusterNodes(node.port), slot).id !== target.id) return false;
      return true;
    }, { timeoutMs: 20_000 });
  }
});
