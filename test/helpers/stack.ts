/**
 * Runs Tidings gateways and workers for a test, either in this process (fast) or as child
 * processes of the real CLI (for kill -9). Each TestStack has its own queue/key prefix, so
 * test files sharing one Redis never see each other's queues, topics or caches.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Queue, type JobType } from 'bullmq';
import { inject } from 'vitest';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import { startWorker, type RunningWorker } from '../../src/app/worker.js';
import { closeRedis, connectRedis, keysOf } from '../../src/app/redis.js';
import { signToken } from '../../src/auth/jwt.js';
import { partitionQueueName } from '../../src/bus/keys.js';
import { loadConfig, type Role } from '../../src/config/index.js';
import { runMigrations } from '../../src/db/migrate.js';
import { startPostgres, startRedis, startRedisCluster, type RedisClusterHandle, type ServerHandle } from '../../src/devstack/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { waitFor } from './wait.js';

// 32+ bytes: the config refuses shorter token secrets (issue 9).
export const SECRET = 'test-secret-0123456789abcdef-0123456789';
const ROOT = join(import.meta.dirname, '..', '..');

export interface StackOptions {
  redisUrl?: string;
  databaseUrl?: string;
  env?: Record<string, string>;
}

export interface ChildNode {
  role: 'gateway' | 'worker';
  port: number;
  process: ChildProcess;
  exited: Promise<number | null>;
  /** Lines the child printed (JSON logs), for failure messages. */
  output: string[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export class TestStack {
  readonly prefix = `t${randomBytes(4).toString('hex')}`;
  readonly redisUrl: string;
  readonly databaseUrl: string;
  private readonly closers: (() => Promise<unknown>)[] = [];

  constructor(private readonly opts: StackOptions = {}) {
    this.redisUrl = opts.redisUrl ?? inject('redisUrl');
    this.databaseUrl = opts.databaseUrl ?? inject('databaseUrl');
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.redisUrl,
      TIDINGS_TOKEN_SECRET: SECRET,
      TIDINGS_QUEUE_PREFIX: this.prefix,
      TIDINGS_PARTITIONS: '4',
      TIDINGS_WORKER_LOCK_MS: '1500',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      ...this.opts.env,
      ...extra,
    };
  }

  config<R extends Role>(role: R, extra: Record<string, string> = {}) {
    return loadConfig(role, this.env(extra));
  }

  async gateway(extra: Record<string, string> = {}): Promise<RunningGateway> {
    const config = this.config('gateway', extra);
    const gateway = await startGateway(config, createLogger(config.logLevel, { test: 'gateway' }));
    this.closers.push(() => gateway.close());
    return gateway;
  }

  async worker(extra: Record<string, string> = {}): Promise<RunningWorker> {
    const config = this.config('worker', extra);
    const worker = await startWorker(config, createLogger(config.logLevel, { test: 'worker' }));
    this.closers.push(() => worker.close());
    return worker;
  }

  /** The real CLI in a child process (through tsx, so no build is needed). */
  async spawn(role: 'gateway' | 'worker', extra: Record<string, string> = {}): Promise<ChildNode> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), role], {
      cwd: ROOT,
      env: { ...process.env, ...this.env({ LOG_LEVEL: 'info', ...extra }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    let port = 0;
    let ready = false;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        if (line.includes('"gateway listening"')) {
          port = (JSON.parse(line) as { port: number }).port;
          ready = true;
        }
        if (line.includes('"persist worker consuming"')) ready = true;
      });
    }
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));
    await waitFor(`${role} child to start`, () => {
      if (exitCode !== undefined) throw new Error(`${role} exited ${exitCode}: ${output.slice(-5).join('\n')}`);
      return ready;
    }, { timeoutMs: 30_000 });
    const node: ChildNode = {
      role,
      port,
      process: child,
      exited,
      output,
      kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
        if (exitCode === undefined) child.kill(signal);
        return exited;
      },
    };
    this.closers.push(() => node.kill('SIGKILL'));
    return node;
  }

  /**
   * Jobs of this stack's partition queues that are not finished yet (waiting, active,
   * delayed…). Zero means every accepted publication has been committed or given up on,
   * so PostgreSQL will not change any more.
   */
  unfinishedJobs(): Promise<number> {
    return this.jobCount(['active', 'wait', 'delayed', 'prioritized', 'waiting-children']);
  }

  /** Jobs in these states over all of this stack's partition queues. */
  /** Per partition: its lease holder and its queue's job counts (a fault test's diagnosis). */
  async queueReport(): Promise<string[]> {
    const config = this.config('worker');
    const keys = keysOf(config);
    const connection = connectRedis(config, 'commands', createLogger('silent'), 'test-queue-report');
    const lines: string[] = [];
    try {
      for (let i = 0; i < config.ingest.partitions; i++) {
        const queue = new Queue(partitionQueueName(i), { connection, prefix: keys.queuePrefixOf(i) });
        try {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
          const concurrency = await queue.getGlobalConcurrency();
          lines.push(`partition ${i}: lease ${await connection.get(keys.lease(i))}, global concurrency ${concurrency}, ${JSON.stringify(counts)}`);
        } finally {
          await queue.close();
        }
      }
    } finally {
      connection.disconnect();
    }
    return lines;
  }

  async jobCount(states: JobType[]): Promise<number> {
    const config = this.config('worker');
    const keys = keysOf(config);
    const connection = connectRedis(config, 'commands', createLogger('silent'), 'test-job-count');
    let total = 0;
    try {
      for (let i = 0; i < config.ingest.partitions; i++) {
        const queue = new Queue(partitionQueueName(i), { connection, prefix: keys.queuePrefixOf(i) });
        try {
          const counts = await queue.getJobCounts(...states);
          total += Object.values(counts).reduce((a, b) => a + b, 0);
        } finally {
          await queue.close();
        }
      }
    } finally {
      await closeRedis(connection);
    }
    return total;
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => {});
    this.closers.length = 0;
  }
}

export function wsUrl(port: number): string {
  return `ws://127.0.0.1:${port}/connection/websocket`;
}

export function token(
  user = 'u1',
  opts: { ttlSeconds?: number; info?: unknown; channel?: string; channels?: string[] } = {},
): Promise<string> {
  return signToken({ user, secret: SECRET, ttlSeconds: opts.ttlSeconds ?? 3600, ...opts });
}

export function uniqueChannel(name = 'ch'): string {
  // No colon: a channel `ns:name` needs namespace `ns` to be configured (else 102).
  return `${name}-${randomBytes(6).toString('hex')}`;
}

/**
 * A private Redis alone, for tests that flush, kill or restart it (the shared PostgreSQL is
 * safe to keep using: each test has its own channels).
 */
export async function startPrivateRedis(opts: { appendonly?: boolean } = {}): Promise<ServerHandle> {
  const root = await mkdtemp(join(tmpdir(), 'tidings-private-redis-'));
  return startRedis({ dir: join(root, 'redis'), appendonly: opts.appendonly ?? false });
}

/** A private Redis Cluster (issue 13); `close` stops every node and removes their data. */
export async function startPrivateRedisCluster(opts: { masters?: number; replicasPerMaster?: number } = {}): Promise<RedisClusterHandle & { close(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'tidings-private-redis-cluster-'));
  const cluster = await startRedisCluster({ dir: root, ...opts });
  return { ...cluster, nodes: cluster.nodes, url: cluster.url, stop: cluster.stop, close: () => cluster.stop().then(() => rm(root, { recursive: true, force: true })) };
}

/** A private Redis and PostgreSQL for tests that kill or restart them. */
export async function startPrivateServers(opts: { redisAppendonly?: boolean } = {}): Promise<{
  redis: ServerHandle;
  pg: ServerHandle;
  close(): Promise<void>;
}> {
  const root = await mkdtemp(join(tmpdir(), 'tidings-private-'));
  const [pg, redis] = await Promise.all([
    startPostgres({ dir: join(root, 'postgres') }),
    startRedis({ dir: join(root, 'redis'), appendonly: opts.redisAppendonly ?? false }),
  ]);
  await runMigrations(pg.url);
  return {
    redis,
    pg,
    /** Kills both servers and removes their data. */
    close: async () => {
      await Promise.allSettled([redis.kill(), pg.kill()]);
      await rm(root, { recursive: true, force: true });
    },
  };
}
