/**
 * Every Prometheus metric Tidings exports, defined in one place (STYLE.md habit 11):
 * `tidings_<area>_<name>_<unit>`, and never a channel name as a label (unbounded
 * cardinality). Modules import the metric they update; gauges that mirror some state are
 * filled at scrape time through `collect` callbacks registered by the composition root.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'tidings_' });

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const metrics = {
  connections: new Gauge({ name: 'tidings_gateway_connections', help: 'Open client connections', registers: [registry] }),
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
  commands: new Counter({
    name: 'tidings_gateway_commands_total',
    help: 'Client commands by method and result',
    labelNames: ['method', 'result'] as const,
    registers: [registry],
  }),
  disconnects: new Counter({
    name: 'tidings_gateway_disconnects_total',
    help: 'Connections closed by the server, by close code (3008 = slow client)',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  publishToCommit: new Histogram({
    name: 'tidings_ingest_publish_to_commit_seconds',
    help: 'From a publish accepted by a gateway to its commit acknowledgement',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  publishOutcomes: new Counter({
    name: 'tidings_ingest_publishes_total',
    help: 'Publishes by outcome (committed, error, timeout, rejected)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  commitToDeliver: new Histogram({
    name: 'tidings_hub_commit_to_deliver_seconds',
    help: 'From commit (worker clock) to the publication reaching a gateway hub (gateway clock)',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  deliveries: new Counter({
    name: 'tidings_hub_deliveries_total',
    help: 'Publications written to subscriber connections',
    registers: [registry],
  }),
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
    help: 'Publications per ingest job (batching)',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [registry],
  }),
  apiCommands: new Counter({
    name: 'tidings_api_commands_total',
    help: 'Server HTTP API method calls by method and result (ok, or the error code)',
    labelNames: ['method', 'result'] as const,
    registers: [registry],
  }),
  storeErrors: new Counter({
    name: 'tidings_store_errors_total',
    help: 'Errors talking to Redis or PostgreSQL, by store',
    labelNames: ['store'] as const,
    registers: [registry],
  }),
};

const scrapeHooks = new Set<() => void | Promise<void>>();

/** Gauges mirroring live state are computed when Prometheus scrapes. Returns the undo. */
export function onScrape(fn: () => void | Promise<void>): () => void {
  scrapeHooks.add(fn);
  return () => scrapeHooks.delete(fn);
}

export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  await Promise.all([...scrapeHooks].map((fn) => Promise.resolve(fn()).catch(() => {})));
  return { contentType: registry.contentType, body: await registry.metrics() };
}
