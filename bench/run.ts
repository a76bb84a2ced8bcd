/**
 * `npm run bench`: the Tidings benchmark. Starts its own PostgreSQL and Redis under a temp
 * directory, then for each scenario fresh gateway/worker child processes (own queue prefix),
 * runs the load from this process, and stops them. Writes the results as JSON and prints a
 * table. See docs/benchmarks.md for what each scenario measures and the latest figures.
 *
 * Bounded: a hard deadline (--timeout) kills everything and fails the run; SIGINT/SIGTERM
 * and errors clean up too. All traffic stays on 127.0.0.1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { signToken } from '../src/auth/jwt.js';
import {
  makeContext,
  type ScenarioContext,
  type ScenarioOutcome,
  type ScenarioResult,
} from './lib/context.js';
import { parseOptions, USAGE, type BenchOptions, type ScenarioName } from './lib/options.js';
import { loadAverage } from './lib/proc.js';
import { summarize, table } from './lib/report.js';
import { BENCH_SERVER_DEFAULTS, BenchStack, ROOT, SECRET } from './lib/stack.js';
import { L1, L2 } from './scenarios/deliver-latency.js';
import { fanout } from './scenarios/fanout.js';
import { F1 } from './scenarios/fanout-cost.js';
import { latency } from './scenarios/latency.js';
import { G1 } from './scenarios/long-recovery.js';
import { T1, T2 } from './scenarios/publish-load.js';
import { R1 } from './scenarios/reconnect-storm.js';
import { rss } from './scenarios/rss.js';
import { throughput } from './scenarios/throughput.js';

type Scenario = (ctx: ScenarioContext) => Promise<ScenarioOutcome>;
const RUNNERS: Record<ScenarioName, Scenario> = {
  throughput,
  latency,
  fanout,
  rss,
  T1,
  T2,
  L1,
  L2,
  R1,
  G1,
  F1,
};

const log = (message: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const options = opts;

  let stack: BenchStack | undefined;
  const cleanup = async () => {
    await stack?.close();
  };
  let aborting = false;
  const abort = (why: string, code: number) => {
    if (aborting) return;
    aborting = true;
    log(`${why}: stopping everything`);
    setTimeout(() => process.exit(code), 15_000).unref(); // even if cleanup hangs
    void cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => abort('SIGINT', 130));
  process.once('SIGTERM', () => abort('SIGTERM', 143));
  // A client of a server that is being killed may emit errors nobody listens to: clean up, never leak.
  process.on('uncaughtException', (err) => {
    log(`uncaught: ${err.stack ?? String(err)}`);
    abort('uncaught exception', 1);
  });
  process.on('unhandledRejection', (err) => {
    log(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`);
    abort('unhandled rejection', 1);
  });
  setTimeout(() => abort(`deadline of ${options.timeout} s reached`, 124), options.timeout * 1000).unref();

  const startedAt = new Date();
  const results: ScenarioResult[] = [];
  try {
    log(`load average ${loadAverage()} on ${cpus().length} cores before the run`);
    stack = await BenchStack.start({
      redisAppendonly: options.redisAof,
      redisCluster: options.redisCluster,
      serverEnv: options.serverEnv,
      cpuProfDir: options.cpuProf ? join(ROOT, 'bench', 'results', 'prof') : undefined,
      perfMap: options.perfMap,
      log,
    });
    const token = await signToken({ user: 'bench', secret: SECRET, ttlSeconds: 3600 });
    const ctx = makeContext(options, stack, token, log);
    for (let round = 1; round <= options.repeat; round++) {
      for (const name of options.scenarios) {
        log(`scenario ${name}${options.repeat > 1 ? ` (round ${round} of ${options.repeat})` : ''}`);
        const began = performance.now();
        const loadAverage1m = loadAverage();
        try {
          const result = await RUNNERS[name](ctx);
          results.push({ name, round, loadAverage1m, elapsedS: secondsSince(began), ...result });
          log(`scenario ${name} ${result.ok ? 'passed its checks' : 'FAILED its checks'}`);
          for (const note of result.notes) log(`  ${note}`);
        } catch (err) {
          log(`scenario ${name} failed: ${(err as Error)?.stack ?? JSON.stringify(err)}`);
          for (const line of stack.recentOutput()) log(line);
          results.push({
            name,
            round,
            loadAverage1m,
            ok: false,
            error: (err as Error)?.message ?? JSON.stringify(err),
            elapsedS: secondsSince(began),
            setup: {},
            metrics: {},
            targets: [],
            cpuPercent: {},
            notes: [],
          });
        } finally {
          await stack.stopNodes();
        }
      }
    }
  } finally {
    await cleanup();
  }

  const report = {
    date: startedAt.toISOString(),
    machine: {
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      loadAverageAfter: loadAverage(),
    },
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options,
    serverSettings: { ...BENCH_SERVER_DEFAULTS, ...options.serverEnv },
    summary: summarize(results),
    results,
  };
  const out = resolve(ROOT, options.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(table(results, report.summary));
  log(`results written to ${out}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

function secondsSince(began: number): number {
  return Math.round((performance.now() - began) / 100) / 10;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
