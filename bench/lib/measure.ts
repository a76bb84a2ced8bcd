/**
 * The measured window of the issue 11 workloads: CPU per component (core-seconds and % of
 * one core, from /proc, as proc.ts reads it) and what the workers did meanwhile, read from
 * their own `tidings_worker_job_publications` histogram (GET /metrics on each worker's
 * TIDINGS_METRICS_PORT), so "publications per job" is the workers' count, not an estimate.
 *
 * The scrapes happen outside the CPU interval (before it starts, after it stops): rendering
 * /metrics costs the scraped process a little CPU that is not the workload's.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Deployment } from './context.js';
import { cpuMeter, NOT_COMPONENTS, rssBytes, type CpuUsage } from './proc.js';

/** One Prometheus text exposition: `name{labels}` (as printed) → value. */
export type Scrape = Map<string, number>;

/** GET a /metrics URL; an empty map when it does not answer (the figure is then missing, not wrong). */
export async function scrape(url: string): Promise<Scrape> {
  const out: Scrape = new Map();
  const res = await fetch(url).catch(() => undefined);
  if (!res?.ok) return out;
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** Sum of every series of `name` whose labels contain `labels` (e.g. `outcome="cache"`). */
export function total(scrapes: Scrape[], name: string, labels = ''): number {
  let sum = 0;
  for (const s of scrapes) {
    for (const [key, value] of s) {
      const bare = key.indexOf('{') < 0 ? key : key.slice(0, key.indexOf('{'));
      if (bare === name && key.includes(labels)) sum += value;
    }
  }
  return sum;
}

export interface Window {
  cpu: CpuUsage;
  /**
   * Partition batches the workers committed (an ingest job, or one part of a bundle), and the
   * publications they carried.
   */
  jobs: number;
  publications: number;
  publicationsPerJob: number;
  /** Batches per group commit (one transaction, one fan-out round), from the workers' histogram. */
  jobsPerCommit: number;
  /** Batches per BullMQ ingest job (more than 1 when gateways bundle them). */
  batchesPerBullmqJob: number;
  /** Redis commands per BullMQ ingest job (every client: gateways, workers, load generator), the busiest first. */
  redisCallsPerJob: { total: number; byCommand: Record<string, number> };
  /**
   * How late this process's event loop ran a 1 ms timer in the window, ms. The load generator
   * timestamps sends and receipts on that loop, so its lateness is in every latency it
   * reports: what of a figure is the instrument's, not the servers'.
   */
  loadgenDelayMs: { p50: number; p99: number; mean: number };
}

/** Opens a measured window now; `stop()` closes it. */
export async function openWindow(dep: Deployment): Promise<{ stop(): Promise<Window> }> {
  // Every node of a cluster (each URL of the seed list is one): commands are counted where they ran.
  const redis = dep.redisUrl.split(',').map((url) => new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 }));
  const redisBefore = await commandCalls(redis);
  const jobsBefore = await jobTotals(dep);
  const meter = cpuMeter(dep.cpu);
  const lag = monitorEventLoopDelay({ resolution: LAG_TIMER_MS });
  lag.enable();
  return {
    async stop() {
      const cpu = meter.usage();
      lag.disable();
      const after = await jobTotals(dep);
      const redisAfter = await commandCalls(redis);
      redis.forEach((r) => r.disconnect());
      const jobs = after.jobs - jobsBefore.jobs;
      const publications = after.publications - jobsBefore.publications;
      const commits = after.commits - jobsBefore.commits;
      const bullmqJobs = after.bullmqJobs - jobsBefore.bullmqJobs;
      return {
        cpu,
        jobs,
        publications,
        publicationsPerJob: jobs ? round1(publications / jobs) : 0,
        jobsPerCommit: commits ? round1((after.committedJobs - jobsBefore.committedJobs) / commits) : 0,
        batchesPerBullmqJob: bullmqJobs ? round1((after.bundledBatches - jobsBefore.bundledBatches) / bullmqJobs) : 0,
        redisCallsPerJob: perJob(redisBefore, redisAfter, bullmqJobs),
        loadgenDelayMs: lateness(lag),
      };
    },
  };
}

const LAG_TIMER_MS = 1;

/** The histogram holds each timer interval, the 1 ms it asked for included: only what is past it is lateness. */
function lateness(h: IntervalHistogram): Window['loadgenDelayMs'] {
  const ms = (ns: number) => round2(Math.max(0, ns / 1e6 - LAG_TIMER_MS));
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), mean: ms(h.mean) };
}

async function jobTotals(
  dep: Deployment,
): Promise<{ jobs: number; publications: number; commits: number; committedJobs: number; bullmqJobs: number; bundledBatches: number }> {
  const scrapes = await Promise.all(dep.workerMetricsUrls.map(scrape));
  return {
    jobs: total(scrapes, 'tidings_worker_job_publications_count'),
    publications: total(scrapes, 'tidings_worker_job_publications_sum'),
    commits: total(scrapes, 'tidings_worker_commit_jobs_count'),
    committedJobs: total(scrapes, 'tidings_worker_commit_jobs_sum'),
    bullmqJobs: total(scrapes, 'tidings_worker_bullmq_job_batches_count'),
    bundledBatches: total(scrapes, 'tidings_worker_bullmq_job_batches_sum'),
  };
}

/** Calls per Redis command so far (INFO commandstats), summed over the nodes; empty when Redis does not answer. */
async function commandCalls(nodes: Redis[]): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const info of await Promise.all(nodes.map((redis) => redis.info('commandstats').catch(() => '')))) {
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, (calls.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return calls;
}

function perJob(before: Map<string, number>, after: Map<string, number>, jobs: number): Window['redisCallsPerJob'] {
  const byCommand: Record<string, number> = {};
  let all = 0;
  const deltas = [...after].map(([cmd, n]) => [cmd, n - (before.get(cmd) ?? 0)] as const).filter(([, d]) => d > 0);
  for (const [cmd, delta] of deltas.sort((a, b) => b[1] - a[1])) {
    all += delta;
    if (jobs) byCommand[cmd] = round2(delta / jobs);
  }
  return { total: jobs ? round1(all / jobs) : 0, byCommand };
}

/**
 * CPU per committed publication: µs of every component of the stack (load generator
 * included, `others` not) per publication, in all and per component.
 */
export function costPerPublication(
  cpu: CpuUsage,
  publications: number,
): { allMicros: number; perComponentMicros: Record<string, number> } {
  const per: Record<string, number> = {};
  let all = 0;
  for (const [label, seconds] of Object.entries(cpu.seconds)) {
    if (NOT_COMPONENTS.has(label)) continue;
    all += seconds;
    per[label] = publications ? round1((seconds / publications) * 1e6) : 0;
  }
  return { allMicros: publications ? round1((all / publications) * 1e6) : 0, perComponentMicros: per };
}

/** Samples a process's RSS every `everyMs` until stopped; reports the peak. */
export function rssPeak(pid: number, everyMs = 10): { stop(): number } {
  let peak = rssBytes(pid) ?? 0;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid) ?? 0)), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid) ?? 0);
    },
  };
}

export function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

export interface Percentiles {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Percentiles of a sample (a typed-array sort: hundreds of thousands of deliveries are common). */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number) => round2(sorted[Math.min(n - 1, Math.floor(q * n))] ?? NaN);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    samples: n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: round2(sorted[n - 1] ?? NaN),
    mean: round2(n ? sum / n : NaN),
  };
}
