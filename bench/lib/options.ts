/**
 * Bench options: every flag also reads from an environment variable (BENCH_ + the flag in
 * upper snake case, e.g. --fanout-rate ↔ BENCH_FANOUT_RATE); a flag wins over the variable.
 * The defaults make the whole run take about fifteen minutes on two cores (the first four
 * scenarios alone about three).
 */
import { parseArgs } from 'node:util';

/**
 * The bench's own scenarios, then the workloads of issue 11 (T1…F1), each measured in the
 * deployed topology (2 gateways + 2 workers unless --gateways/--workers say otherwise).
 */
export const SCENARIOS = [
  'throughput',
  'latency',
  'fanout',
  'rss',
  'T1',
  'T2',
  'L1',
  'L2',
  'R1',
  'G1',
  'F1',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
const PEER_TOPOLOGY = { gateways: 2, workers: 2 };

export interface BenchOptions {
  scenarios: ScenarioName[];
  /** Measured window of the throughput, latency and fanout scenarios (and T1, T2, L1, L2, F1), seconds. */
  duration: number;
  /** Load before the measured window (not counted), seconds. */
  warmup: number;
  /** Given with --gateways/--workers; undefined: each scenario's own topology. */
  gateways: number | undefined;
  workers: number | undefined;
  /** Throughput: publisher connections, in-flight publishes per connection, channels. */
  connections: number;
  window: number;
  channels: number;
  /** Latency: publishes per second. */
  rate: number;
  fanoutSubscribers: number;
  fanoutRate: number;
  idleConnections: number;
  /** R1: clients that drop and recover at once. G1: publications the client misses. */
  r1Clients: number;
  g1Missed: number;
  /** F1: subscribers of the one channel, and publications per second to it. */
  f1Subscribers: number;
  f1Rate: number;
  /** TIDINGS_* settings for every gateway and worker, from repeated --set KEY=VALUE. */
  serverEnv: Record<string, string>;
  redisAof: boolean;
  /** Masters of a private Redis Cluster to run on (cluster mode, issue 13); 0: one Redis. */
  redisCluster: number;
  cpuProf: boolean;
  perfMap: boolean;
  out: string;
  /** Runs of the whole scenario list; the table shows each target's median. */
  repeat: number;
  /** Hard deadline of the whole run, seconds: past it everything is killed and the run fails. */
  timeout: number;
}

const SPEC = {
  scenarios: { type: 'string', default: SCENARIOS.join(',') },
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  gateways: { type: 'string', default: '' },
  workers: { type: 'string', default: '' },
  connections: { type: 'string', default: '20' },
  window: { type: 'string', default: '500' },
  channels: { type: 'string', default: '20' },
  rate: { type: 'string', default: '1000' },
  'fanout-subscribers': { type: 'string', default: '1000' },
  'fanout-rate': { type: 'string', default: '500' },
  'idle-connections': { type: 'string', default: '2000' },
  'r1-clients': { type: 'string', default: '5000' },
  'g1-missed': { type: 'string', default: '50000' },
  'f1-subscribers': { type: 'string', default: '5000' },
  'f1-rate': { type: 'string', default: '20' },
  set: { type: 'string', multiple: true },
  'redis-aof': { type: 'boolean', default: false },
  'redis-cluster': { type: 'string', default: '0' },
  'cpu-prof': { type: 'boolean', default: false },
  'perf-map': { type: 'boolean', default: false },
  out: { type: 'string', default: 'bench/results/latest.json' },
  repeat: { type: 'string', default: '1' },
  timeout: { type: 'string', default: '' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const USAGE = `Usage: npm run bench -- [options]

Starts a private PostgreSQL and Redis, Tidings gateway(s) and worker(s) as child processes,
runs the scenarios and writes bench/results/latest.json plus a table on stdout.

  --scenarios LIST          ${SCENARIOS.join(',')} (default: all)
                            T1…F1 are the workloads of issue 11 (docs/benchmarks.md)
  --duration S              measured seconds per scenario (10)
  --warmup S                unmeasured load before each window (2)
  --gateways N --workers N  processes per scenario (default 1, 1; T1…F1: 2, 2;
                            rss always 1, 0)
  --connections N           throughput: publisher connections (20)
  --window N                throughput: publishes in flight per connection (500)
  --channels N              throughput: channels published to (20)
  --rate N                  latency: publishes per second (1000)
  --fanout-subscribers N    fanout: subscribers of the one channel (1000)
  --fanout-rate N           fanout: publishes per second (500)
  --idle-connections N      rss: idle connections opened (2000)
  --r1-clients N            R1: clients that drop and all recover at once (5000)
  --g1-missed N             G1: publications the one client misses (50000)
  --f1-subscribers N        F1: subscribers of the one channel (5000)
  --f1-rate N               F1: publishes per second to it (20)
  --set KEY=VALUE           server setting for every gateway/worker, repeatable
                            (e.g. --set TIDINGS_PARTITIONS=8)
  --redis-aof               run Redis with its append-only file (fsync every second)
  --redis-cluster N         run on a private Redis Cluster of N masters (3 or more) in cluster mode
  --cpu-prof                V8 CPU profiles of the children in bench/results/prof/
  --perf-map                children write /tmp/perf-PID.map for Linux perf (docs/benchmarks.md)
  --out FILE                JSON results (bench/results/latest.json)
  --repeat N                run the scenario list N times; the table shows medians (1)
  --timeout S               hard deadline of the whole run (default 60 s + per scenario
                            and round 90 s + 3 x (duration + warmup))

Every option can also be set as BENCH_<NAME> (e.g. BENCH_FANOUT_RATE=400).`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  const { values } = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  const pick = (name: keyof typeof SPEC): string => {
    const fromEnv = env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    const given = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    return given || fromEnv === undefined ? String(values[name]) : fromEnv;
  };
  const num = (name: keyof typeof SPEC, min: number): number => {
    const value = Number(pick(name));
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name}: must be a number >= ${min}`);
    return value;
  };
  const flag = (name: 'redis-aof' | 'cpu-prof' | 'perf-map'): boolean => {
    const fromEnv = env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    return values[name] || fromEnv === '1' || fromEnv === 'true';
  };
  const scenarios = pick('scenarios')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`--scenarios: unknown scenario "${s}"`);
  }
  const serverEnv: Record<string, string> = {};
  for (const pair of [...(env.BENCH_SET?.split(' ').filter(Boolean) ?? []), ...(values.set ?? [])]) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || !/^(TIDINGS_|LOG_LEVEL)/.test(pair))
      throw new Error(`--set: expected TIDINGS_NAME=VALUE, got "${pair}"`);
    serverEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const optionalNum = (name: 'gateways' | 'workers', min: number): number | undefined =>
    pick(name) === '' ? undefined : num(name, min);
  const perScenarioS = 90 + 3 * (num('duration', 1) + num('warmup', 0));
  return {
    scenarios: scenarios as ScenarioName[],
    duration: num('duration', 1),
    warmup: num('warmup', 0),
    gateways: optionalNum('gateways', 1),
    workers: optionalNum('workers', 1),
    connections: num('connections', 1),
    window: num('window', 1),
    channels: num('channels', 1),
    rate: num('rate', 1),
    fanoutSubscribers: num('fanout-subscribers', 1),
    fanoutRate: num('fanout-rate', 1),
    idleConnections: num('idle-connections', 1),
    r1Clients: num('r1-clients', 1),
    g1Missed: num('g1-missed', 1),
    f1Subscribers: num('f1-subscribers', 1),
    f1Rate: num('f1-rate', 1),
    serverEnv,
    redisAof: flag('redis-aof'),
    redisCluster: clusterMasters(num('redis-cluster', 0)),
    cpuProf: flag('cpu-prof'),
    perfMap: flag('perf-map'),
    out: pick('out'),
    repeat: num('repeat', 1),
    // Default: a generous bound per scenario (the longest, R1, takes about a minute on a busy box).
    timeout:
      pick('timeout') === '' ? 60 + num('repeat', 1) * scenarios.length * perScenarioS : num('timeout', 10),
  };
}

/** The topology of the issue 11 workloads: 2 gateways + 2 workers unless the options say otherwise. */
export function peerTopology(opts: BenchOptions): { gateways: number; workers: number } {
  return {
    gateways: opts.gateways ?? PEER_TOPOLOGY.gateways,
    workers: opts.workers ?? PEER_TOPOLOGY.workers,
  };
}

function clusterMasters(masters: number): number {
  if (masters !== 0 && (masters < 3 || !Number.isInteger(masters))) throw new Error('--redis-cluster: a cluster needs 3 or more masters (0: one Redis)');
  return masters;
}
