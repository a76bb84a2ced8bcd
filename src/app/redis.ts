/** Redis connections for each role, with the options each use needs. */
import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

export type RedisUse = 'commands' | 'pubsub' | 'queue';

/**
 * - commands: gateway reads; fail a request after one retry instead of queueing it for long
 *   while Redis is away (the client gets a temporary error and retries).
 * - pubsub: subscriber mode; ioredis resubscribes on reconnect.
 * - queue: BullMQ requires maxRetriesPerRequest null (its blocking reads must not time out).
 */
export function connectRedis(url: string, use: RedisUse, log: Logger, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: use === 'commands' ? 1 : null,
    enableAutoPipelining: use === 'commands',
    autoResubscribe: true,
    // Full jitter, capped at 2 s: many gateways reconnecting after a Redis restart spread out.
    retryStrategy: (times) => Math.round(Math.random() * Math.min(2000, 50 * 2 ** Math.min(times, 10))),
    lazyConnect: false,
  });
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
  return redis;
}

export async function closeRedis(redis: Redis): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
