/** What every scenario gets: options, the stack, a token, and a way to deploy fresh nodes. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import { cpuSeconds, cpuSecondsUnder, type CpuComponent } from './proc.js';
import type { BenchStack, NodeProcess } from './stack.js';

export interface Deployment {
  prefix: string;
  gateways: NodeProcess[];
  workers: NodeProcess[];
  /** WebSocket URL of each gateway. */
  urls: string[];
  /** http://127.0.0.1:port of each gateway (server API, /metrics). */
  httpUrls: string[];
  /** /metrics URL of each worker. */
  workerMetricsUrls: string[];
  partitions: number;
  /** The deployment's Redis (for INFO commandstats). */
  redisUrl: string;
  /** CPU readers: load generator, each gateway and worker, Redis, PostgreSQL. */
  cpu: CpuComponent[];
}

export interface ScenarioContext {
  opts: BenchOptions;
  stack: BenchStack;
  token: string;
  log(message: string): void;
  deploy(spec?: { gateways?: number; workers?: number }): Promise<Deployment>;
}

export interface TargetCheck {
  label: string;
  value: number;
  unit: string;
  /** ">= 20000" or "<= 10" */
  target: string;
  met: boolean;
}

export interface ScenarioResult {
  name: string;
  /** 1-based, with --repeat. */
  round: number;
  /** The machine's 1-minute load average when the scenario started (other work competes). */
  loadAverage1m: number;
  ok: boolean;
  error?: string;
  /** Seconds the scenario took, setup included. */
  elapsedS: number;
  setup: Record<string, unknown>;
  metrics: Record<string, unknown>;
  targets: TargetCheck[];
  /** % of one core per component during the measured window. */
  cpuPercent: Record<string, number>;
  /** Core-seconds per component during the same window (the issue 11 workloads report it). */
  cpuSeconds?: Record<string, number>;
  notes: string[];
}

export function atLeast(label: string, value: number, unit: string, min: number): TargetCheck {
  return { label, value, unit, target: `>= ${min}`, met: value >= min };
}

export function atMost(label: string, value: number, unit: string, max: number): TargetCheck {
  return { label, value, unit, target: `<= ${max}`, met: value <= max };
}

export function makeContext(
  opts: BenchOptions,
  stack: BenchStack,
  token: string,
  log: (m: string) => void,
): ScenarioContext {
  const partitions = Number(opts.serverEnv.TIDINGS_PARTITIONS ?? process.env.TIDINGS_PARTITIONS ?? 8);
  return {
    opts,
    stack,
    token,
    log,
    async deploy(spec = {}) {
      const prefix = `b${randomBytes(4).toString('hex')}`;
      const gatewayCount = spec.gateways ?? opts.gateways ?? 1;
      const workerCount = spec.workers ?? opts.workers ?? 1;
      const [gateways, workers] = await Promise.all([
        Promise.all(Array.from({ length: gatewayCount }, () => stack.spawn('gateway', prefix))),
        Promise.all(Array.from({ length: workerCount }, () => stack.spawn('worker', prefix))),
      ]);
      if (workerCount > 0) await stack.waitWorkers(prefix, partitions, workerCount, workers);
      const cpu: CpuComponent[] = [
        { label: 'loadgen', read: () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 },
        ...gateways.map((g, i) => ({ label: `gateway${i + 1}`, read: () => cpuSeconds(g.pid) })),
        ...workers.map((w, i) => ({ label: `worker${i + 1}`, read: () => cpuSeconds(w.pid) })),
        ...serverCpu(stack),
      ];
      return {
        prefix,
        gateways,
        workers,
        urls: gateways.map((g) => `ws://127.0.0.1:${g.port}/connection/websocket`),
        httpUrls: gateways.map((g) => `http://127.0.0.1:${g.port}`),
        workerMetricsUrls: workers.map((w) => `http://127.0.0.1:${w.port}/metrics`),
        partitions,
        redisUrl: stack.redisUrl,
        cpu,
      };
    },
  };
}

/** What a scenario function returns; the runner adds the rest. */
export type ScenarioOutcome = Omit<ScenarioResult, 'name' | 'round' | 'loadAverage1m' | 'elapsedS'>;

/** PostgreSQL's processes, and every redis-server (one, or a cluster's nodes) as one `redis` figure. */
function serverCpu(stack: BenchStack): CpuComponent[] {
  const pids = stack.serverPids();
  const redisPids = pids.filter((s) => s.kind === 'redis').map((s) => s.pid);
  const components: CpuComponent[] = [{ label: 'redis', read: () => redisPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) }];
  if (pids.some((s) => s.kind === 'postgres')) components.push({ label: 'postgres', read: cpuSecondsUnder('postgres', join(stack.root, 'postgres')) });
  return components;
}
