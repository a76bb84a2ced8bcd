/**
 * The system under test: a private PostgreSQL and Redis under one temp directory (from
 * src/devstack), migrated, plus Tidings gateways and workers as child processes of the real
 * CLI (`node --import tsx src/cli.ts gateway|worker`), so the server never shares an event
 * loop with the load generator.
 *
 * Everything started here is ended by close(), which never throws and is safe to call twice
 * (normal end, error, signal or deadline). A child also ends itself if this process dies
 * without calling it (bench/lib/parent-watch.ts); the devstack SIGKILLs its servers on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { makeKeys, partitionQueueName } from '../../src/bus/keys.js';
import { runMigrations } from '../../src/db/migrate.js';
import { freePort, startPostgres, startRedis, startRedisCluster, type ServerHandle } from '../../src/devstack/index.js';

export const ROOT = join(import.meta.dirname, '..', '..');
// 32+ bytes: the config refuses shorter token secrets.
export const SECRET = 'bench-secret-0123456789abcdef-0123456789';
/** TIDINGS_API_KEY of every bench gateway (`X-API-Key` of the T2 and G1 workloads); 32+ characters. */
export const API_KEY = 'bench-api-key-0123456789abcdef-0123456789';
const STOP_GRACE_MS = 10_000;

/**
 * Server settings the bench changes from the defaults (and reports): the per-connection
 * command rate limit (1,000/s) and the per-IP connection limits exist to stop abusive
 * clients, and the load generator is exactly that: 20 connections from one IP publishing
 * as fast as they are acknowledged, thousands of sockets opened at once. `--set` overrides.
 */
export const BENCH_SERVER_DEFAULTS: Record<string, string> = {
  TIDINGS_CLIENT_RATE: '1000000',
  TIDINGS_CLIENT_BURST: '1000000',
  TIDINGS_MAX_CONNECTIONS_PER_IP: '0',
  TIDINGS_CONNECT_RATE_PER_IP: '0',
};
const START_TIMEOUT_MS = 30_000;

export interface StackOptions {
  redisAppendonly: boolean;
  /** Masters of a private Redis Cluster instead of one Redis (0: one Redis). */
  redisCluster: number;
  /** Extra environment for every gateway and worker (TIDINGS_* tuning). */
  serverEnv: Record<string, string>;
  /** Write a V8 CPU profile of every child into this directory (on graceful stop). */
  cpuProfDir: string | undefined;
  /**
   * Children write /tmp/perf-<pid>.map (`--perf-basic-prof`), so a system-wide `perf record`
   * names their JavaScript frames. perf counts what the CPU ran, where the V8 profile samples
   * wall time and charges a preempted system call to the call.
   */
  perfMap?: boolean;
  log(message: string): void;
}

export interface NodeProcess {
  role: 'gateway' | 'worker';
  pid: number;
  /**
   * On 127.0.0.1: a gateway's HTTP + WebSocket port (its /metrics too), a worker's /metrics
   * port (TIDINGS_METRICS_PORT).
   */
  port: number;
  /** Last lines the child printed (warnings and errors at LOG_LEVEL=warn). */
  output: string[];
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

export class BenchStack {
  private readonly nodes: { node: NodeProcess; child: ChildProcess }[] = [];
  private servers: ServerHandle[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    readonly root: string,
    private readonly opts: StackOptions,
  ) {}

  redisUrl = '';
  databaseUrl = '';

  static async start(opts: StackOptions): Promise<BenchStack> {
    const root = await mkdtemp(join(tmpdir(), 'tidings-bench-'));
    const stack = new BenchStack(root, opts);
    try {
      const [pg, redis] = await Promise.all([
        startPostgres({ dir: join(root, 'postgres') }).then((s) => (stack.servers.push(s), s)),
        stack.startRedis(),
      ]);
      stack.databaseUrl = pg.url;
      stack.redisUrl = redis;
      await runMigrations(pg.url);
      const aof = opts.redisAppendonly ? 'append-only file, fsync every second' : 'no append-only file';
      const what = opts.redisCluster ? `redis cluster of ${opts.redisCluster} masters ${redis}` : `redis ${redis} (${aof})`;
      opts.log(`postgres ${pg.url} (pid ${pg.pid}, fsync on), ${what}, data under ${root}`);
      return stack;
    } catch (err) {
      await stack.close();
      throw err;
    }
  }

  /** One Redis, or a cluster's nodes (the cluster's stop is each node's); resolves to REDIS_URL. */
  private async startRedis(): Promise<string> {
    if (this.opts.redisCluster > 0) {
      const cluster = await startRedisCluster({ dir: join(this.root, 'redis-cluster'), masters: this.opts.redisCluster });
      this.servers.push(...cluster.nodes);
      return cluster.url;
    }
    const redis = await startRedis({ dir: join(this.root, 'redis'), appendonly: this.opts.redisAppendonly });
    this.servers.push(redis);
    return redis.url;
  }

  /** Pids of PostgreSQL's postmaster and redis-server, for CPU accounting. */
  serverPids(): { kind: string; pid: number }[] {
    return this.servers.flatMap((s) => (s.pid === undefined ? [] : [{ kind: s.kind, pid: s.pid }]));
  }

  env(prefix: string, extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      ...process.env,
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.redisUrl,
      TIDINGS_REDIS_CLUSTER: this.opts.redisCluster > 0 ? '1' : '0',
      TIDINGS_TOKEN_SECRET: SECRET,
      TIDINGS_API_KEY: API_KEY,
      TIDINGS_QUEUE_PREFIX: prefix,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BENCH_PARENT_PID: String(process.pid),
      ...BENCH_SERVER_DEFAULTS,
      ...this.opts.serverEnv,
      ...extra,
    };
  }

  /** Starts one gateway or worker child; resolves once it answers /ready on its port. */
  async spawn(
    role: 'gateway' | 'worker',
    prefix: string,
    extra: Record<string, string> = {},
  ): Promise<NodeProcess> {
    if (this.closing) throw new Error('the bench is stopping');
    const port = await freePort();
    const env = this.env(prefix, {
      ...(role === 'gateway' ? { PORT: String(port) } : { TIDINGS_METRICS_PORT: String(port) }),
      TIDINGS_NODE_NAME: `bench-${role}-${randomBytes(3).toString('hex')}`,
      ...extra,
    });
    const nodeArgs = ['--import', 'tsx', '--import', join(ROOT, 'bench', 'lib', 'parent-watch.ts')];
    if (this.opts.perfMap) nodeArgs.push('--perf-basic-prof');
    if (this.opts.cpuProfDir) {
      mkdirSync(this.opts.cpuProfDir, { recursive: true });
      nodeArgs.push(
        '--cpu-prof',
        `--cpu-prof-dir=${this.opts.cpuProfDir}`,
        `--cpu-prof-name=${role}-${Date.now()}-${randomBytes(2).toString('hex')}.cpuprofile`,
      );
    }
    const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'src', 'cli.ts'), role], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const node: NodeProcess = {
      role,
      pid: child.pid ?? -1,
      port,
      output,
      exitCode: undefined,
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    };
    void node.exited.then((code) => (node.exitCode = code));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        if (output.length > 50) output.shift();
      });
    }
    this.nodes.push({ node, child });
    if (this.closing) {
      child.kill('SIGKILL'); // close() began while this one was starting
      throw new Error('the bench is stopping');
    }
    // A worker serves /metrics only once its BullMQ workers are running.
    await this.waitHttp(node);
    return node;
  }

  private async waitHttp(node: NodeProcess): Promise<void> {
    await until(`${node.role} pid ${node.pid} to answer /ready`, node, async () => {
      const res = await fetch(`http://127.0.0.1:${node.port}/ready`).catch(() => undefined);
      return res?.status === 200;
    });
  }

  /** Resolves once every partition queue has `count` workers connected (BullMQ names its connections). */
  async waitWorkers(
    prefix: string,
    partitions: number,
    count: number,
    workers: NodeProcess[],
  ): Promise<void> {
    if (this.opts.redisCluster > 0) return this.waitLeases(prefix, partitions, workers);
    const redis = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    const queues = Array.from(
      { length: partitions },
      (_, i) => new Queue(partitionQueueName(i), { connection: redis, prefix }),
    );
    try {
      await until(`${count} worker(s) on each of ${partitions} partitions`, workers, async () => {
        const counts = await Promise.all(queues.map((q) => q.getWorkersCount()));
        return counts.every((n) => n >= count);
      });
    } finally {
      await Promise.all(queues.map((q) => q.close().catch(() => {})));
      redis.disconnect();
    }
  }

  /**
   * Cluster mode: once every partition's lease is held, some worker consumes it. (BullMQ's
   * worker count reads CLIENT LIST of one node, while a worker's named connections are spread
   * over the masters.)
   */
  private async waitLeases(prefix: string, partitions: number, workers: NodeProcess[]): Promise<void> {
    const redis = benchCluster(this.redisUrl);
    const keys = makeKeys(prefix, { partitions });
    try {
      await until(`every one of ${partitions} partitions to be owned by a worker`, workers, async () => {
        const owners = await Promise.all(Array.from({ length: partitions }, (_, p) => redis.get(keys.lease(p))));
        return owners.every((owner) => owner !== null);
      });
    } finally {
      redis.disconnect();
    }
  }

  /** The last lines each running child printed, for failure reports. */
  recentOutput(lines = 5): string[] {
    return this.nodes.flatMap(({ node }) =>
      node.output.slice(-lines).map((l) => `${node.role} ${node.pid}: ${l}`),
    );
  }

  /** SIGTERM (graceful: CPU profiles get written), SIGKILL after a grace period. */
  async stopNodes(): Promise<void> {
    const nodes = this.nodes.splice(0);
    await Promise.all(
      nodes.map(async ({ node, child }) => {
        if (node.exitCode !== undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await node.exited;
        clearTimeout(timer);
      }),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stopNodes().catch(() => {});
      await Promise.allSettled(this.servers.map((s) => s.kill()));
      await rm(this.root, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    })();
    return this.closing;
  }
}

/** Polls `check` until true; fails early with the child's last output if a child exited. */
async function until(
  what: string,
  nodes: NodeProcess | NodeProcess[],
  check: () => Promise<boolean>,
): Promise<void> {
  const list = Array.isArray(nodes) ? nodes : [nodes];
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const dead = list.find((n) => n.exitCode !== undefined);
    if (dead)
      throw new Error(
        `${dead.role} pid ${dead.pid} exited ${dead.exitCode}: ${dead.output.slice(-5).join(' | ')}`,
      );
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A Cluster client of the comma-separated seed list (REDIS_URL in cluster mode). */
export function benchCluster(seeds: string): Cluster {
  const nodes = seeds.split(',').map((url) => new URL(url)).map((u) => ({ host: u.hostname, port: Number(u.port) }));
  return new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
}
