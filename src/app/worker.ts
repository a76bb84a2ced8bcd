/** Composition root of a persist worker. */
import type { WorkerConfig } from '../config/index.js';
import { openDatabase } from '../db/client.js';
import { HttpServer } from '../http/server.js';
import { metricsRoute } from '../http/metrics.js';
import { setNodeName } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { scheduleRetention } from '../persist/retention.js';
import { startPersistWorker } from '../persist/worker.js';
import type { CachePolicy } from '../persist/fanout.js';
import { startRelay } from '../persist/relay.js';
import { checkRedisMode, closeRedis, connectRedis, keysOf } from './redis.js';
import { shutdownSteps } from './shutdown.js';
import { startWebhookConsumer } from '../webhooks/consumer.js';
import { NO_COMMIT_HOOK, PublicationWebhooks, type CommitHook } from '../webhooks/publications.js';
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';

/**
 * How often a worker looks for dead gateways' connections (src/webhooks/reaper.ts): a fifth
 * of the presence TTL, so with the registry's 7 s expiry their disconnects are queued within
 * the TTL (for a TTL of 10 s or more).
 */
function reapIntervalMs(presenceTtlS: number): number {
  return Math.max(1000, Math.floor((presenceTtlS * 1000) / 5));
}

export interface RunningWorker {
  close(): Promise<void>;
}

export async function startWorker(config: WorkerConfig, log: Logger): Promise<RunningWorker> {
  await checkRedisMode(config);
  setNodeName(config.nodeName);
  const database = openDatabase(config.databaseUrl, { applicationName: `tidings-worker-${config.nodeName}`, max: 4 });
  const redis = connectRedis(config, 'queue', log, 'worker');
  const keys = keysOf(config);
  const cache: CachePolicy = (channel) => {
    const ns = config.namespaces.of(channel) ?? config.namespaces.default;
    return { size: ns.history_size, ttlS: ns.history_ttl_s };
  };
  const hook = commitHook(config, redis, keys);
  const worker = startPersistWorker({
    database,
    redis,
    keys,
    partitions: config.ingest.partitions,
    cache,
    hook,
    lockMs: config.ingest.workerLockMs,
    log: log.child({ component: 'persist' }),
    name: config.nodeName,
  });
  await worker.ready();
  const relay = startRelay({
    databaseUrl: config.databaseUrl,
    database,
    commit: (job) => worker.commit(job),
    owned: () => worker.ownedPartitions(),
    partitions: config.ingest.partitions,
    log: log.child({ component: 'relay' }),
  });
  const webhooks = config.webhooks
    ? await startWebhookConsumer({
        redis,
        keys: keysOf(config),
        settings: config.webhooks,
        reapIntervalMs: reapIntervalMs(config.client.presenceTtlS),
        log: log.child({ component: 'webhooks' }),
      })
    : undefined;
  const http = config.metricsPort === undefined ? undefined : await serveWorkerMetrics(config.metricsPort, config.host, log);
  const { retentionIntervalS, partitionDays } = config.ingest;
  const stopRetention = scheduleRetention(database, config.namespaces, log.child({ component: 'retention' }), retentionIntervalS, partitionDays);
  const close = shutdownSteps(log, [
    ['stop retention', stopRetention],
    ['stop the outbox relay', () => relay.close()],
    ['close metrics endpoint', () => http?.close()],
    ['finish the current jobs', () => worker.close()],
    ['close the publication webhook queues', () => hook.close()],
    ['stop webhook delivery', () => webhooks?.close()],
    ['close redis', () => closeRedis(redis)],
    ['close database', () => database.close()],
  ]);
  return { close };
}

/** `publication` webhooks when they are selected (config refuses them without a namespace that opts in). */
function commitHook(config: WorkerConfig, redis: RedisClient, keys: Keys): CommitHook {
  if (!config.webhooks?.events.has('publication')) return NO_COMMIT_HOOK;
  const wanted = (channel: string) => (config.namespaces.of(channel) ?? config.namespaces.default).webhook_publications;
  return new PublicationWebhooks(redis, keys, config.webhooks, wanted);
}

/** Workers have no client port; this one serves /metrics and /health for Prometheus and probes. */
async function serveWorkerMetrics(port: number, host: string, log: Logger): Promise<HttpServer> {
  const http = new HttpServer({ ready: async () => true, upgrade: () => false, log: log.child({ component: 'http' }) });
  http.route('GET /metrics', metricsRoute);
  const listening = await http.listen(port, host);
  log.info({ port: listening }, 'worker metrics listening');
  return http;
}
