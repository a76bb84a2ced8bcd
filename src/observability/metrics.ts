/**
 * Every Prometheus metric Tidings exports, defined in one place (STYLE.md habit 11):
 * `tidings_<area>_<name>_<unit>`, and never a channel name as a label (unbounded
 * cardinality). Modules import the metric they update; gauges that mirror some state are
 * filled at scrape time through `collect` callbacks registered by the composition root.
 *
 * The process and Node.js metrics keep prom-client's standard names (`process_…`,
 * `nodejs_…`, no prefix), so stock Node.js dashboards work on them (issue 16). Every series
 * carries `node` (TIDINGS_NODE_NAME), set once by the process at start (`setNodeName`).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** One process, one node: its name labels every series it exports. */
export function setNodeName(node: string): void {
  registry.setDefaultLabels({ node });
}

const scrapeHooks = new Set<() => void | Promise<void>>();

/**
 * For counters on the per-publication and per-delivery paths: prom-client validates and
 * hashes the label set on every `inc` (about 1 µs, several per publish at tens of thousands
 * a second). A tallied counter only adds to plain numbers, and folds them into the real
 * counter when metrics are rendered, so what Prometheus scrapes is exact.
 */
function tallied<T extends string>(counter: Counter<T>, labelNames: readonly T[] = []): Counter<T> {
  const direct = counter.inc.bind(counter) as (labels: LabelValues<T> | number, value?: number) => void;
  const slots = new Map<string, { labels: LabelValues<T>; n: number }>();
  let plain = 0;
  const inc = (labels?: LabelValues<T> | number, value = 1): void => {
    if (labels === undefined || typeof labels === 'number') {
      plain += labels ?? 1;
      return;
    }
    let key = '';
    for (const name of labelNames) key += `${labels[name]}\u0000`;
    const slot = slots.get(key);
    if (slot) slot.n += value;
    else slots.set(key, { labels: { ...labels }, n: value });
  };
  counter.inc = inc as Counter<T>['inc'];
  scrapeHooks.add(() => {
    if (plain > 0) direct(plain);
    plain = 0;
    for (const slot of slots.values()) {
      if (slot.n === 0) continue;
      const n = slot.n;
      slot.n = 0;
      try {
        direct(slot.labels, n);
      } catch {
        // A label the counter does not declare: a bug at the call site; never break /metrics.
      }
    }
  });
  return counter;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const metrics = {
  connections: new Gauge({ name: 'tidings_gateway_connections', help: 'Open client connections', registers: [registry] }),
  connectionsAccepted: new Counter({
    name: 'tidings_gateway_connections_accepted_total',
    help: 'WebSocket connections accepted, by client protocol (json, protobuf)',
    labelNames: ['protocol'] as const,
    registers: [registry],
  }),
  subscriptions: new Gauge({
    name: 'tidings_gateway_subscriptions',
    help: 'Client subscriptions on this gateway',
    registers: [registry],
  }),
  channels: new Gauge({
    name: 'tidings_gateway_channels',
    help: 'Channels with at least one subscriber on this gateway',
    registers: [registry],
  }),
  commands: tallied(
    new Counter({
      name: 'tidings_gateway_commands_total',
      help: 'Client commands by method and result',
      labelNames: ['method', 'result'] as const,
      registers: [registry],
    }),
    ['method', 'result'],
  ),
  disconnects: new Counter({
    name: 'tidings_gateway_disconnects_total',
    help: 'Connections closed by the server, by close code (3008 = slow client)',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  proxyCalls: new Counter({
    name: 'tidings_proxy_requests_total',
    help: 'Calls to the app backend proxies by kind and outcome (ok, error, disconnect: the backend said so; failed: no usable answer)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  }),
  proxyDuration: new Histogram({
    name: 'tidings_proxy_duration_seconds',
    help: 'Time of a call to an app backend proxy, by kind',
    labelNames: ['kind'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  publishToCommit: new Histogram({
    name: 'tidings_ingest_publish_to_commit_seconds',
    help: 'From a publish accepted by a gateway to its commit acknowledgement',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  publishOutcomes: tallied(
    new Counter({
      name: 'tidings_ingest_publishes_total',
      help: 'Publishes by outcome (committed, error, timeout, rejected)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    ['outcome'],
  ),
  publishTimeouts: new Counter({
    name: 'tidings_ingest_publish_timeouts_total',
    help:
      'Publishes not acknowledged within TIDINGS_PUBLISH_TIMEOUT_MS, by outcome (unsent: dropped before its job was ' +
      'sent; committed: found committed, answered success; cancelled: its job abandoned; not_committed: its job had ' +
      'been decided without it)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  commitToDeliver: new Histogram({
    name: 'tidings_hub_commit_to_deliver_seconds',
    help: 'From commit (worker clock) to the publication reaching a gateway hub (gateway clock)',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  deliveries: tallied(
    new Counter({
      name: 'tidings_hub_deliveries_total',
      help: 'Publications written to subscriber connections',
      registers: [registry],
    }),
  ),
  gapFills: new Counter({
    name: 'tidings_hub_gap_fills_total',
    help: 'Gaps in a subscriber stream, by outcome (filled, failed)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  recoveries: new Counter({
    name: 'tidings_recovery_total',
    help: 'Subscribe recoveries by outcome (cache, postgres, not_recovered)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  replicaReads: new Counter({
    name: 'tidings_history_replica_reads_total',
    help: 'History and recovery reads sent to DATABASE_READ_URL, by outcome (served; behind or failed: read again from the primary)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  queueDepth: new Gauge({
    name: 'tidings_queue_waiting_jobs',
    help: 'Jobs waiting in each partition queue',
    labelNames: ['partition'] as const,
    registers: [registry],
  }),
  jobDuration: new Histogram({
    name: 'tidings_worker_job_duration_seconds',
    help: 'Time to commit and fan out one ingest job, per partition',
    labelNames: ['partition'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  jobPublications: new Histogram({
    name: 'tidings_worker_job_publications',
    help: "Publications per partition batch (an ingest job, or one part of a bundle): the gateways' batching",
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [registry],
  }),
  commitJobs: new Histogram({
    name: 'tidings_worker_commit_jobs',
    help: 'Partition batches per group commit (one PostgreSQL transaction and one Redis round)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  }),
  bullmqJobBatches: new Histogram({
    name: 'tidings_worker_bullmq_job_batches',
    help: "Partition batches per BullMQ ingest job (above 1 when a gateway bundles one worker's partitions)",
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  }),
  rejectedPublications: new Counter({
    name: 'tidings_worker_rejected_publications_total',
    help: 'Publications a worker will never commit: refused by PostgreSQL or the edge checks (refused), or whose job lost its turn (turn_passed)',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  orderGapSkips: new Counter({
    name: 'tidings_worker_order_gap_skips_total',
    help: 'Jobs committed past a missing earlier job of their gateway stream (the missing one will never commit)',
    registers: [registry],
  }),
  apiCommands: new Counter({
    name: 'tidings_api_commands_total',
    help: 'Server HTTP API method calls by method and result (ok, or the error code)',
    labelNames: ['method', 'result'] as const,
    registers: [registry],
  }),
  apiRequests: new Gauge({
    name: 'tidings_api_requests',
    help: 'Server HTTP API requests running and waiting for a slot (state: running, queued)',
    labelNames: ['state'] as const,
    registers: [registry],
  }),
  apiOverloaded: new Counter({
    name: 'tidings_api_overloaded_total',
    help: 'Server HTTP API requests answered 503 without running, by reason (queue_full, queue_timeout)',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  pausedConnections: new Gauge({
    name: 'tidings_gateway_paused_connections',
    help: 'Client connections whose socket is not being read (flow control: too many commands waiting or publishes in flight)',
    registers: [registry],
  }),
  consumerRestarts: new Counter({
    name: 'tidings_worker_consumer_restarts_total',
    help: 'Partition consumers replaced because they took no job while jobs waited and none was active (src/persist/watch.ts)',
    registers: [registry],
  }),
  storeErrors: new Counter({
    name: 'tidings_store_errors_total',
    help: 'Errors talking to Redis or PostgreSQL, by store',
    labelNames: ['store'] as const,
    registers: [registry],
  }),
  webhookDropped: new Counter({
    name: 'tidings_webhook_dropped_total',
    help: 'Webhook events a gateway dropped because Redis stayed away until its buffer was full',
    registers: [registry],
  }),
  webhookAttempts: new Counter({
    name: 'tidings_webhook_attempts_total',
    help: 'Webhook POSTs by outcome (ok, failed)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  webhookDeadLettered: new Counter({
    name: 'tidings_webhook_dead_letters_total',
    help: 'Webhook events given up on (max attempts or age) and moved to the dead-letter list',
    registers: [registry],
  }),
  webhookDeadLetters: new Gauge({
    name: 'tidings_webhook_dead_letter_list',
    help: 'Webhook events in the dead-letter list (API webhook_dead_letters), as of the last scrape',
    registers: [registry],
  }),
  webhookReaped: new Counter({
    name: 'tidings_webhook_reaped_connections_total',
    help: 'Connections of dead gateways whose disconnect events a worker sent',
    registers: [registry],
  }),
};

/**
 * `fn`'s answer, reused for `ms`: a gauge that costs store round trips (queue depths: one
 * Redis call per partition) must not cost them on every scrape, however often, or by however
 * many scrapers, /metrics is read (issue 16). A failed answer is not kept.
 */
export function reusedFor<T>(ms: number, fn: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let at = -Infinity;
  let last: Promise<T> | undefined;
  return () => {
    if (last === undefined || now() - at >= ms) {
      at = now();
      last = fn();
      last.catch(() => {
        last = undefined;
      });
    }
    return last;
  };
}

/** Gauges mirroring live state are computed when Prometheus scrapes. Returns the undo. */
export function onScrape(fn: () => void | Promise<void>): () => void {
  scrapeHooks.add(fn);
  return () => scrapeHooks.delete(fn);
}

export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  await Promise.all([...scrapeHooks].map((fn) => Promise.resolve(fn()).catch(() => {})));
  return { contentType: registry.contentType, body: await registry.metrics() };
}
