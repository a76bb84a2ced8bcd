/**
 * The private server helper against the real redis-server and postgres binaries: restarts on
 * the same port and data, durability across kill -9, and the one-line missing-binary error.
 */
import { mkdtemp, readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findBinary,
  MissingBinaryError,
  startPostgres,
  startRedis,
  startRedisCluster,
  type ServerHandle,
} from '../../src/devstack/index.js';

const SYSTEM_PORTS = [5432, 6379];

let root: string;
const handles: ServerHandle[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidings-devstack-test-'));
});

afterAll(async () => {
  for (const handle of handles) await handle.kill();
  await rm(root, { recursive: true, force: true });
});

async function track(started: Promise<ServerHandle>): Promise<ServerHandle> {
  const handle = await started;
  handles.push(handle);
  return handle;
}

/** Name of the process `pid` runs (first 15 bytes), from /proc. */
async function processName(pid: number | undefined): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
}

/** Running (not zombie) processes whose working directory is `dir`: a cluster's backends. */
async function processesIn(dir: string): Promise<number[]> {
  const target = await realpath(dir);
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (cwd === target && state !== 'Z') found.push(Number(pid));
  }
  return found;
}

async function withRedis<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

describe('redis', () => {
  it('keeps data across kill -9 with appendonly, on the same port, as a new process', async () => {
    const redis = await track(startRedis({ dir: join(root, 'redis-aof'), appendonly: true }));
    expect(SYSTEM_PORTS).not.toContain(redis.port);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await processName(redis.pid)).toBe('redis-server');
    await withRedis(redis.url, (c) => c.set('survivor', 'yes'));
    await sleep(1500); // appendfsync everysec: let one fsync pass before the kill

    const before = redis.pid;
    await redis.kill();
    expect(redis.pid).toBeUndefined();
    await redis.kill(); // idempotent
    await redis.start();

    expect(redis.pid).toBeDefined();
    expect(redis.pid).not.toBe(before);
    expect(await withRedis(redis.url, (c) => c.get('survivor'))).toBe('yes');
    await redis.stop();
    await redis.stop();
    expect(redis.pid).toBeUndefined();
  });

  it('loses everything across kill -9 without appendonly', async () => {
    const redis = await track(startRedis({ dir: join(root, 'redis-volatile'), appendonly: false }));
    await withRedis(redis.url, (c) => c.set('ephemeral', 'yes'));
    const port = redis.port;

    await redis.kill();
    await redis.start();

    expect(redis.port).toBe(port);
    expect(await withRedis(redis.url, (c) => c.get('ephemeral'))).toBeNull();
    await redis.stop();
  });
});

describe('redis cluster', () => {
  it('forms a 3-master cluster that serves every slot, and stop() ends every node', async () => {
    const cluster = await startRedisCluster({ dir: join(root, 'cluster'), masters: 3 });
    try {
      expect(cluster.nodes).toHaveLength(3);
      expect(cluster.url.split(',')).toEqual(cluster.nodes.map((n) => n.url));
      const client = new Cluster(cluster.nodes.slice(0, 1).map((n) => ({ host: '127.0.0.1', port: n.port })));
      // Keys spread over the slots reach every master.
      await Promise.all(Array.from({ length: 30 }, (_, i) => client.set(`k${i}`, String(i))));
      expect(await Promise.all(Array.from({ length: 30 }, (_, i) => client.get(`k${i}`)))).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
      const sizes = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
      expect(sizes.every((n) => n > 0)).toBe(true);
      client.disconnect();
    } finally {
      await cluster.stop();
    }
    for (const node of cluster.nodes) expect(node.pid).toBeUndefined();
  }, 60_000);
});

describe('postgres', () => {
  it('keeps committed rows across kill -9 with a backend connected, and stops gracefully', async () => {
    const db = await track(startPostgres({ dir: join(root, 'pg') }));
    expect(SYSTEM_PORTS).not.toContain(db.port);
    expect(db.url).toBe(`postgres://postgres@127.0.0.1:${db.port}/tidings`);
    expect(await processName(db.pid)).toBe('postgres'); // the postmaster itself, not a wrapper

    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => {}); // it loses its server on purpose
    await client.connect();
    await client.query('create table notes (id int primary key, body text)');
    await client.query(`insert into notes values (1, 'durable')`);

    const before = db.pid;
    const pgdata = join(db.dataDir, 'pgdata');
    expect((await processesIn(pgdata)).length).toBeGreaterThan(1); // postmaster, backends, helpers
    await db.kill(); // with the backend of `client` still running
    expect(db.pid).toBeUndefined();
    // Backends leave the postmaster's process group (setsid); kill() must get them too.
    expect(await processesIn(pgdata)).toEqual([]);
    await client.end().catch(() => undefined);
    await db.start();
    expect(db.pid).not.toBe(before);

    const again = new pg.Client({ connectionString: db.url });
    await again.connect();
    const { rows } = await again.query('select body from notes where id = 1');
    await again.end();
    expect(rows).toEqual([{ body: 'durable' }]);

    await db.stop();
    expect(db.pid).toBeUndefined();
    await db.stop(); // idempotent
    await db.start(); // and startable again after a clean stop
    expect(db.pid).toBeDefined();
    await db.stop();
  });

  it('creates the named database', async () => {
    const db = await track(startPostgres({ dir: join(root, 'pg-named'), database: 'other_db' }));
    expect(db.url.endsWith('/other_db')).toBe(true);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ db: string }>('select current_database() as db');
    await client.end();
    expect(rows[0]?.db).toBe('other_db');
    await db.stop();
  });
});

describe('findBinary', () => {
  it('throws a MissingBinaryError naming a package for an unknown binary', () => {
    expect(() => findBinary('tidings-no-such-binary')).toThrow(MissingBinaryError);
    expect(() => findBinary('tidings-no-such-binary')).toThrow(
      'tidings-no-such-binary not found: install it (Debian: apt-get install -y tidings-no-such-binary)',
    );
  });

  it('finds postgres outside PATH too', () => {
    expect(findBinary('postgres')).toMatch(/\/postgres$/);
    expect(new MissingBinaryError('postgres').message).toBe(
      'postgres not found: install it (Debian: apt-get install -y postgresql)',
    );
  });
});
