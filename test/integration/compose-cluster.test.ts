/**
 * The Redis Cluster of docker-compose.cluster.yml, formed without Docker: six local
 * redis-server processes started from the very redis.conf the compose nodes mount, and the
 * very init script the redis-cluster-init service runs (only addresses differ: 127.0.0.1 and
 * free ports here, fixed IPs on port 6379 there). Then Tidings' own Redis connections in
 * cluster mode, with every node as a seed as the compose file gives them, reach what the
 * nodes announce and follow MOVED.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../deploy/compose.js';
import { checkRedisMode, closeRedis, connectRedis } from '../../src/app/redis.js';
import { freePort, startRedis, type ServerHandle } from '../../src/devstack/index.js';
import { createLogger } from '../../src/observability/logger.js';

const run = promisify(execFile);
const CONF = join(ROOT, 'deploy', 'redis-cluster', 'redis.conf');
const INIT = join(ROOT, 'deploy', 'redis-cluster', 'init.sh');

let root: string;
const nodes: ServerHandle[] = [];
let extra: ServerHandle | undefined;
const address = (n: ServerHandle) => `127.0.0.1:${n.port}`;

/** The init script, as the init container runs it; resolves with its exit code and output. */
async function init(addresses: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('sh', [INIT, ...addresses], { env: { ...process.env, CLUSTER_TIMEOUT_S: '30' }, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const { code, stdout = '', stderr = '' } = err as { code?: number; stdout?: string; stderr?: string };
    return { code: code ?? -1, out: stdout + stderr };
  }
}

async function ask<T>(node: ServerHandle, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

const start = async (name: string) =>
  startRedis({ dir: join(root, name), configFile: CONF, clusterBusPort: await freePort() });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidings-compose-cluster-'));
  for (let i = 1; i <= 6; i++) nodes.push(await start(`redis-node-${i}`));
});

afterAll(async () => {
  for (const n of [...nodes, ...(extra ? [extra] : [])]) await n.stop().catch(() => {});
  await rm(root, { recursive: true, force: true });
});

describe('deploy/redis-cluster: redis.conf and init.sh', () => {
  let ids: string[] = [];

  it('forms a cluster of 3 masters with a replica each, every node healthy', async () => {
    const { code, out } = await init(nodes.map(address));
    expect(code, out).toBe(0);
    expect(out).toMatch(/creating a cluster of 6 nodes/);
    expect(out).toMatch(/cluster ok/);
    const views = await Promise.all(nodes.map((n) => ask(n, async (r) => String(await r.call('CLUSTER', 'NODES')))));
    for (const view of views) {
      const lines = view.trim().split('\n');
      expect(lines).toHaveLength(6);
      const masters = lines.filter((l) => l.split(' ')[2]!.includes('master'));
      const replicas = lines.filter((l) => l.split(' ')[2]!.includes('slave'));
      expect(masters).toHaveLength(3);
      // Each master has exactly one replica.
      expect(new Set(replicas.map((l) => l.split(' ')[3])).size).toBe(3);
    }
    ids = await Promise.all(nodes.map((n) => ask(n, async (r) => String(await r.call('CLUSTER', 'MYID')))));
  });

  it('runs every node with the settings of the file', async () => {
    for (const node of nodes) {
      const config = await ask(node, async (r) => {
        const pairs = (await r.call('CONFIG', 'GET', '*')) as string[];
        return new Map(pairs.flatMap((v, i) => (i % 2 === 0 ? [[v, pairs[i + 1]!] as const] : [])));
      });
      expect(config.get('cluster-enabled')).toBe('yes');
      expect(config.get('cluster-node-timeout')).toBe('5000');
      expect(config.get('cluster-require-full-coverage')).toBe('no');
      expect(config.get('appendonly')).toBe('yes');
      expect(config.get('maxmemory-policy')).toBe('noeviction');
    }
  });

  it('does nothing when run again on a formed cluster (a restart of the compose project)', async () => {
    const { code, out } = await init(nodes.map(address));
    expect(code, out).toBe(0);
    expect(out).toMatch(/already form a cluster/);
    const again = await Promise.all(nodes.map((n) => ask(n, async (r) => String(await r.call('CLUSTER', 'MYID')))));
    expect(again).toEqual(ids);
  });

  it('refuses, touching nothing, when the nodes are partly joined', async () => {
    extra = await start('stray');
    const { code, out } = await init([...nodes.map(address), address(extra)]);
    expect(code).toBe(1);
    expect(out).toMatch(/partly joined \(1 alone, 0 knowing all 7\)/);
    expect(await ask(extra, async (r) => String(await r.call('CLUSTER', 'INFO')))).toMatch(/cluster_known_nodes:1\r?\n/);
  });

  it('serves Tidings in cluster mode with every node as a seed, following MOVED to the announced addresses', async () => {
    const target = { redisUrl: nodes.map((n) => `redis://${address(n)}`).join(','), redisCluster: true };
    await expect(checkRedisMode(target)).resolves.toBeUndefined();
    const redis = connectRedis(target, 'commands', createLogger('silent'), 'compose-cluster-test');
    try {
      // Keys in many slots, so that most commands go to a master other than the first seed.
      const keys = Array.from({ length: 30 }, (_, i) => `compose-cluster:${i}`);
      for (const key of keys) await redis.set(key, key);
      expect(await Promise.all(keys.map((k) => redis.get(k)))).toEqual(keys);
    } finally {
      await closeRedis(redis);
    }
  });
});
