import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startGateway } from '../app/gateway.js';
import { shutdownSteps, type ShutdownStep } from '../app/shutdown.js';
import { startWorker } from '../app/worker.js';
import { signToken } from '../auth/jwt.js';
import { isLoopbackHost, loadConfig, secretProblem, type Config, type GatewayConfig } from '../config/index.js';
import { runMigrations } from '../db/migrate.js';
import { MissingBinaryError, startPostgres, startRedis, startRedisCluster } from '../devstack/index.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { FatalError, UsageError, type Command } from './command.js';
import { serveUntilSignal } from './serve.js';

/**
 * Where DATABASE_URL / REDIS_URL are unset, start private servers with data under devDir;
 * `clusterMasters`: a private Redis Cluster of that many masters instead of one Redis.
 */
async function privateStack(config: Config, log: Logger, steps: ShutdownStep[], clusterMasters?: number) {
  const dir = resolve(config.devDir);
  let { databaseUrl, redisUrl } = config;
  try {
    ensureTraversable(dir);
    if (!databaseUrl) {
      const pg = await startPostgres({ dir: join(dir, 'postgres'), logger: log });
      steps.push(['stop private PostgreSQL', () => pg.stop()]);
      databaseUrl = pg.url;
      log.info({ url: pg.url, dataDir: pg.dataDir }, 'DATABASE_URL unset: started a private PostgreSQL');
    }
    if (!redisUrl && clusterMasters !== undefined) {
      redisUrl = await privateCluster(dir, clusterMasters, log, steps);
    } else if (!redisUrl) {
      const redis = await startRedis({ dir: join(dir, 'redis'), appendonly: true, logger: log });
      steps.push(['stop private Redis', () => redis.stop()]);
      redisUrl = redis.url;
      log.info({ url: redis.url, dataDir: redis.dataDir }, 'REDIS_URL unset: started a private Redis (AOF on)');
    }
  } catch (err) {
    // Starting a server fails for reasons the operator fixes (a binary, a permission, a
    // port): one line, no stack.
    if (err instanceof MissingBinaryError || err instanceof Error) throw new FatalError(err.message.split('\n')[0]!);
    throw err;
  }
  return { databaseUrl, redisUrl, redisCluster: config.redisCluster || clusterMasters !== undefined };
}

/**
 * A fresh cluster each time: its nodes are started on new free ports, which the nodes.conf
 * of an earlier run would not match. Redis holds nothing PostgreSQL does not (guarantee 6),
 * so clients recover what they need from PostgreSQL after a restart.
 */
async function privateCluster(dir: string, masters: number, log: Logger, steps: ShutdownStep[]): Promise<string> {
  const clusterDir = join(dir, 'redis-cluster');
  rmSync(clusterDir, { recursive: true, force: true });
  const cluster = await startRedisCluster({ dir: clusterDir, masters, logger: log });
  steps.push(['stop private Redis Cluster', () => cluster.stop()]);
  log.info({ url: cluster.url, masters }, 'REDIS_URL unset: started a private Redis Cluster (cluster mode on)');
  return cluster.url;
}

/** --redis-cluster N (or TIDINGS_REDIS_CLUSTER=1 without REDIS_URL: 3 masters); undefined for one Redis. */
function clusterMastersOf(option: string | boolean | undefined, config: Config): number | undefined {
  if (option === undefined) return config.redisCluster && !config.redisUrl ? 3 : undefined;
  const masters = Number(option);
  if (!Number.isInteger(masters) || masters < 3 || masters > 16) throw new UsageError('--redis-cluster takes a number of masters from 3 to 16');
  if (config.redisUrl) throw new UsageError('--redis-cluster starts a private cluster, so REDIS_URL must be unset (or use TIDINGS_REDIS_CLUSTER=1 with it)');
  return masters;
}

/**
 * The dev dir is ours: let the postgres OS user (used when we run as root) pass through
 * it, without letting anyone list or read it.
 */
function ensureTraversable(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
}

/**
 * Dev secrets that survive restarts, so tokens printed yesterday still work today, and the
 * HTTP API works from the first minute (issue 16). Each passes the start-up check every
 * other role applies (TIDINGS_TOKEN_SECRET: 32 random bytes, 43 base64url characters;
 * TIDINGS_API_KEY: 48 hex characters); a kept file shortened by hand is refused the same way.
 */
const DEV_SECRETS = {
  token: { file: 'token-secret', what: 'token secret', make: () => randomBytes(32).toString('base64url'), check: (v: string) => secretProblem(v) },
  api: { file: 'api-key', what: 'API key', make: () => randomBytes(24).toString('hex'), check: (v: string) => secretProblem(v, 32, 'characters') },
} as const;

function devSecret(config: Config, kind: keyof typeof DEV_SECRETS): string {
  const spec = DEV_SECRETS[kind];
  const file = join(resolve(config.devDir), spec.file);
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    const problem = spec.check(kept);
    if (problem) throw new FatalError(`${file}: the kept ${spec.what} ${problem}; delete the file to get a new one`);
    return kept;
  }
  mkdirSync(resolve(config.devDir), { recursive: true });
  const secret = spec.make();
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** What `tidings dev` made up because the environment did not set it. */
interface Generated {
  tokenSecret: boolean;
  apiKey: boolean;
}

async function banner(config: GatewayConfig, port: number, generated: Generated): Promise<string> {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const secret = config.tokenSecret;
  const token = await signToken({ user: 'dev-user', ttlSeconds: 24 * 3600, secret });
  return [
    '',
    'Tidings is running (dev: gateway + worker in one process)',
    `  WebSocket  ws://${host}:${port}/connection/websocket`,
    config.demo ? `  Demo       http://${host}:${port}/` : '  Demo       off (TIDINGS_DEMO=false)',
    `  Health     http://${host}:${port}/health`,
    config.admin ? `  Admin      http://${host}:${port}/admin  (password: your TIDINGS_ADMIN_PASSWORD)` : '',
    `  HTTP API   http://${host}:${port}/api/<method>  (header X-API-Key: ${generated.apiKey ? config.apiKey : 'your TIDINGS_API_KEY'})`,
    `  Token      ${token}`,
    generated.tokenSecret ? `  Secret     ${secret}  (TIDINGS_TOKEN_SECRET, kept in ${config.devDir}/token-secret)` : '',
    generated.apiKey ? `  API key    ${config.apiKey}  (TIDINGS_API_KEY, kept in ${config.devDir}/api-key)` : '',
    '',
    '  new Centrifuge(url, { token }).connect()  — from the npm package "centrifuge"',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

export const devCommand: Command = {
  name: 'dev',
  summary: 'run everything in one process (private PostgreSQL/Redis when their URLs are unset)',
  usage: `Usage: tidings dev [--redis-cluster MASTERS]

Starts PostgreSQL and Redis from the binaries on this machine when DATABASE_URL / REDIS_URL are
unset (data under ./.tidings/, or TIDINGS_DEV_DIR), applies migrations, then runs a gateway and a
worker together. Prints the WebSocket URL, the demo page URL and a ready-to-use token.
Binds 127.0.0.1 unless HOST is set.

  --redis-cluster N   start a private Redis Cluster of N masters (3 or more) instead of one
                      Redis, and run in cluster mode (TIDINGS_REDIS_CLUSTER=1)`,
  options: { 'redis-cluster': { type: 'string' } },
  async run(values) {
    const base = loadConfig('dev');
    const clusterMasters = clusterMastersOf(values['redis-cluster'], base);
    const log = createLogger(base.logLevel, { node: base.nodeName, role: 'dev' });
    const steps: ShutdownStep[] = [];
    const close = shutdownSteps(log, steps);
    try {
      const urls = await privateStack(base, log, steps, clusterMasters);
      const generated = { tokenSecret: !base.tokenSecret, apiKey: !base.apiKey };
      const tokenSecret = base.tokenSecret ?? devSecret(base, 'token');
      const apiKey = base.apiKey ?? devSecret(base, 'api');
      // The demo page and its token endpoint are on by default here (see loadConfig), the
      // endpoint only while the port is this machine's alone.
      const config: GatewayConfig = { ...base, ...urls, tokenSecret, apiKey };
      if (config.demo && !config.demoTokens && !isLoopbackHost(config.host)) {
        log.warn(
          { host: config.host },
          'HOST is not loopback: demo tokens are off (GET /demo/token would hand them to anyone who can reach this port); open the demo page with /?token=…',
        );
      }
      const migrated = await runMigrations(urls.databaseUrl);
      log.info(migrated, 'schema up to date');
      const worker = await startWorker(config, log);
      steps.unshift(['stop worker', () => worker.close()]);
      const gateway = await startGateway(config, log);
      steps.unshift(['stop gateway', () => gateway.close()]);
      process.stdout.write(`${await banner(config, gateway.port, generated)}\n`);
    } catch (err) {
      await close();
      throw err;
    }
    return serveUntilSignal(log, close);
  },
};
