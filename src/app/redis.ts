/** Redis connections for each role, with the options each use needs. */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisClient } from '../bus/client.js';
import { makeKeys, type Keys } from '../bus/keys.js';
import { ConfigError, redisSeeds } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

export type RedisUse = 'commands' | 'pubsub' | 'queue';

/** Where Redis is: REDIS_URL, and whether it names the seed nodes of a Redis Cluster. */
export interface RedisTarget {
  redisUrl: string;
  redisCluster: boolean;
}

// Full jitter, capped at 2 s: many gateways reconnecting after a Redis restart spread out.
const retryStrategy = (times: number) => Math.round(Math.random() * Math.min(2000, 50 * 2 ** Math.min(times, 10)));

/**
 * - commands: gateway reads; fail a request after one retry instead of queueing it for long
 *   while Redis is away (the client gets a temporary error and retries).
 * - pubsub: subscriber mode; ioredis resubscribes on reconnect (in a cluster, after a
 *   failover or reshard too: `shardedSubscribers`, one subscriber connection per master).
 * - queue: BullMQ requires maxRetriesPerRequest null (its blocking reads must not time out).
 */
export function connectRedis(target: RedisTarget, use: RedisUse, log: Logger, name: string): RedisClient {
  const redis = target.redisCluster ? clusterOf(target.redisUrl, use, name) : singleOf(target.redisUrl, use, name);
  reportErrors(redis, log, name);
  return redis;
}

/** The key layout: today's names on a single Redis, hash-tagged per partition on a cluster. */
export function keysOf(config: { redisCluster: boolean; ingest: { queuePrefix: string; partitions: number } }): Keys {
  return makeKeys(config.ingest.queuePrefix, config.redisCluster ? { partitions: config.ingest.partitions } : undefined);
}

function singleOf(url: string, use: RedisUse, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: use === 'commands' ? 1 : null,
    enableAutoPipelining: use === 'commands',
    autoResubscribe: true,
    retryStrategy,
    lazyConnect: false,
  });
}

/**
 * Seeds are only where ioredis first asks for the slot map (CLUSTER SLOTS); it then talks to
 * every master it names. Credentials and TLS come from the first seed URL, as one cluster has
 * one set of them.
 */
function clusterOf(urls: string, use: RedisUse, name: string): Cluster {
  const seeds = redisSeeds(urls).map((entry) => new URL(entry));
  const first = seeds[0]!;
  const redisOptions: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: use === 'commands' ? 1 : null,
    username: first.username ? decodeURIComponent(first.username) : undefined,
    password: first.password ? decodeURIComponent(first.password) : undefined,
    tls: first.protocol === 'rediss:' ? {} : undefined,
  };
  const options: ClusterOptions = {
    redisOptions,
    enableAutoPipelining: use === 'commands',
    shardedSubscribers: use === 'pubsub',
    clusterRetryStrategy: retryStrategy,
    // A master that failed over is noticed through MOVED or a refused connection; the
    // periodic refresh also catches a reshard on a connection that sends no commands.
    slotsRefreshInterval: 2000,
    // With TLS, connect to the names the cluster announces, not to addresses resolved from
    // them, so certificates match (ioredis README, "AWS ElastiCache Clusters with TLS").
    ...(first.protocol === 'rediss:' ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
  };
  return new Cluster(
    seeds.map((seed) => ({ host: seed.hostname, port: Number(seed.port || 6379) })),
    options,
  );
}

/**
 * Refuses, in one line, a REDIS_URL whose server is not in the mode TIDINGS_REDIS_CLUSTER
 * says: otherwise a cluster seed used as one Redis answers MOVED to most commands, and a
 * single Redis used as a cluster makes ioredis retry its slot map forever. A server that does
 * not answer within 2 s (or hides INFO) gives no verdict: the connections then retry as usual.
 */
export async function checkRedisMode(target: RedisTarget): Promise<void> {
  const seed = new URL(redisSeeds(target.redisUrl)[0]!);
  const probe = new Redis(seed.href, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, commandTimeout: 2000 });
  probe.on('error', () => {});
  let info: string;
  try {
    await probe.connect();
    info = await probe.info('cluster');
  } catch {
    return;
  } finally {
    probe.disconnect();
  }
  const enabled = /^cluster_enabled:1\r?$/m.test(info);
  if (enabled === target.redisCluster) return;
  const where = `${seed.hostname}:${seed.port || 6379}`;
  throw new ConfigError(
    'TIDINGS_REDIS_CLUSTER',
    enabled
      ? `unset, but ${where} is a Redis Cluster node: set TIDINGS_REDIS_CLUSTER=1 (REDIS_URL may list several seed nodes)`
      : `is on, but ${where} is not a Redis Cluster node (cluster_enabled:0): unset it to use one Redis`,
  );
}

function reportErrors(redis: RedisClient, log: Logger, name: string): void {
  let lastError = '';
  redis.on('error', (err: Error) => {
    metrics.storeErrors.inc({ store: 'redis' });
    // ioredis emits the same error on every retry; log each distinct one once.
    if (err.message === lastError) return;
    lastError = err.message;
    log.warn({ err, connection: name }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (lastError) log.info({ connection: name }, 'redis connection restored');
    lastError = '';
  });
}

export async function closeRedis(redis: RedisClient): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
