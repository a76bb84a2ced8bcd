/**
 * A private Redis Cluster on this machine (issue 13): `masters` nodes holding the 16384 slots
 * and `replicasPerMaster` replicas of each, every node a private redis-server (./redis.ts) with
 * its own port, cluster bus port and data directory. Built the way operators build one:
 * `redis-cli --cluster create … --cluster-yes`, then waited on until every node reports
 * `cluster_state:ok`, knows every node, and every replica is in sync with its master, so a test
 * can fail a master over right away.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { findBinary } from './binaries.js';
import { freePort } from './ports.js';
import { startRedis } from './redis.js';
import type { ServerHandle } from './server.js';
import { waitUntil } from './wait.js';

const run = promisify(execFile);

export interface RedisClusterOptions {
  dir: string;
  masters?: number;
  replicasPerMaster?: number;
  logger?: Logger;
  /** How long the cluster may take to form. */
  timeoutMs?: number;
}

export interface RedisClusterHandle {
  /** Every node, masters first as `redis-cli --cluster create` was given them (roles change on failover). */
  readonly nodes: ServerHandle[];
  /** Seed URLs separated by commas: the REDIS_URL of cluster mode. */
  readonly url: string;
  /** Stops every node (idempotent); their data directories are left to the caller. */
  stop(): Promise<void>;
}

export async function startRedisCluster(opts: RedisClusterOptions): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 0;
  if (!Number.isInteger(masters) || masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const nodes: ServerHandle[] = [];
  const stop = () => Promise.all(nodes.map((n) => n.stop().catch(() => {}))).then(() => {});
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) nodes.push(await startNode(opts, i));
    await createCluster(nodes, replicas);
    await waitFormed(nodes, replicas > 0, opts.timeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, url: nodes.map((n) => n.url).join(','), stop };
}

async function startNode(opts: RedisClusterOptions, index: number): Promise<ServerHandle> {
  return startRedis({
    dir: join(opts.dir, `node-${index}`),
    appendonly: false,
    clusterBusPort: await freePort(),
    logger: opts.logger,
  });
}

async function createCluster(nodes: ServerHandle[], replicas: number): Promise<void> {
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  const args = ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'];
  try {
    await run(findBinary('redis-cli'), args, { timeout: 30_000 });
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`redis-cli --cluster create failed: ${(stderr || stdout).trim().split('\n').slice(-3).join(' / ')}`);
  }
}

/** Every node sees the whole cluster healthy, and (when there are replicas) every replica is linked. */
async function waitFormed(nodes: ServerHandle[], withReplicas: boolean, timeoutMs: number): Promise<void> {
  const clients = nodes.map((n) => new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    await waitUntil(() => allHealthy(clients, nodes.length, withReplicas), {
      what: `a Redis Cluster of ${nodes.length} nodes to report cluster_state:ok`,
      timeoutMs,
      intervalMs: 100,
    });
  } finally {
    clients.forEach((c) => c.disconnect());
  }
}

async function allHealthy(clients: Redis[], count: number, withReplicas: boolean): Promise<boolean> {
  const verdicts = await Promise.all(clients.map((c) => nodeHealthy(c, count, withReplicas).catch(() => false)));
  return verdicts.every(Boolean);
}

async function nodeHealthy(client: Redis, count: number, withReplicas: boolean): Promise<boolean> {
  const info = String(await client.call('CLUSTER', 'INFO'));
  if (!/^cluster_state:ok\r?$/m.test(info) || !new RegExp(`^cluster_known_nodes:${count}\r?$`, 'm').test(info)) return false;
  if (!withReplicas) return true;
  const replication = await client.info('replication');
  return /^role:master\r?$/m.test(replication) || /^master_link_status:up\r?$/m.test(replication);
}
