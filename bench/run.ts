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
import { makeContext, type ScenarioContext, type ScenarioResult } from './lib/context.js';
import { parseOptions, USAGE, type BenchOptions, type ScenarioName } from './lib/options.js';
import { loadAverage } from './lib/proc.js';
import { BENCH_SERVER_DEFAULTS, BenchStack, ROOT, SECRET } from './lib/stack.js';
import { fanout } from './scenarios/fanout.js';
import { latency } from './scenarios/latency.js';
import { rss } from './scenarios/rss.js';
import { throughput } from './scenarios/throughput.js';

type Scenario = (ctx: ScenarioContext) => Promise<Omit<ScenarioResult, 'name' | 'elapsedS'>>;
const RUNNERS: Record<ScenarioName, Scenario> = { throughput, latency, fanout, rss };

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

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
  const abort = (why: string, code: number) => {
    log(`${why}: stopping everything`);
    setTimeout(() => process.exit(code), 15_000).unref(); // even if cleanup hangs
    void cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => abort('SIGINT', 130));
  process.once('SIGTERM', () => abort('SIGTERM', 143));
  setTimeout(() => abort(`deadline of ${options.timeout} s reached`, 124), options.timeout * 1000).unref();

  const startedAt = new Date();
  const results: ScenarioResult[] = [];
  try {
    log(`load average ${loadAverage()} on ${cpus().length} cores before the run`);
    stack = await BenchStack.start({
      redisAppendonly: options.redisAof,
      serverEnv: options.serverEnv,
      cpuProfDir: options.cpuProf ? join(ROOT, 'bench', 'results', 'prof') : undefined,
      log,
    });
    const token = await signToken({ user: 'bench', secret: SECRET, ttlSeconds: 3600 });
    const ctx = makeContext(options, stack, token, log);
    for (const name of options.scenarios) {
      log(`scenario ${name}`);
      const began = performance.now();
      try {
        const result = await RUNNERS[name](ctx);
        results.push({ name, elapsedS: secondsSince(began), ...result });
      } catch (err) {
        log(`scenario ${name} failed: ${(err as Error)?.stack ?? JSON.stringify(err)}`);
        for (const line of stack.recentOutput()) log(line);
        results.push({
          name,
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
    results,
  };
  const out = resolve(ROOT, options.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(table(results));
  log(`results written to ${out}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

function secondsSince(began: number): number {
  return Math.round((performance.now() - began) / 100) / 10;
}

/** One row per target, then the other headline figures and CPU use per component. */
function table(results: ScenarioResult[]): string {
  const rows: string[][] = [['scenario', 'metric', 'value', 'target', 'met']];
  for (const r of results) {
    if (r.error) rows.push([r.name, 'error', r.error.slice(0, 60), '', 'no']);
    for (const t of r.targets) rows.push([r.name, t.label, `${t.value} ${t.unit}`, t.target, t.met ? 'yes' : 'NO']);
    for (const [key, value] of Object.entries(headline(r))) rows.push([r.name, key, value, '', '']);
    const cpu = Object.entries(r.cpuPercent)
      .map(([k, v]) => `${k} ${v}%`)
      .join(', ');
    if (cpu) rows.push([r.name, 'cpu (% of a core)', cpu, '', '']);
    if (!r.ok && !r.error) rows.push([r.name, 'checks', 'FAILED (see JSON)', '', '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return `\n${[line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n')}\n\n`;
}

function headline(r: ScenarioResult): Record<string, string> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- shapes are the scenarios' own
  const m = r.metrics as Record<string, any>;
  switch (r.name) {
    case 'throughput':
      return m.committedPerS === undefined ? {} : { 'errors / unanswered': `${m.errorsTotal} / ${m.unanswered}`, 'offsets gapless': String(m.integrity.ok) };
    case 'latency': {
      if (!m.deliverMs) return {};
      const d = m.deliverMs;
      const a = m.publishAckMs;
      return {
        'deliver p90 / p99.9 / max': `${d.p90} / ${d.p999} / ${d.max} ms`,
        'publish ack p50 / p99': `${a.p50} / ${a.p99} ms`,
        'exactly once, in order': String(m.exactlyOnceInOrder),
      };
    }
    case 'fanout':
      return m.deliveriesPerS === undefined
        ? {}
        : {
            'subscribers complete': `${m.subscribersComplete} / ${(r.setup as { subscribers: number }).subscribers}`,
            'drain after last publish': `${m.secondsToDrain} s`,
          };
    case 'rss':
      return m.perIdleConnectionKiB === undefined
        ? {}
        : {
            'RSS per idle connection': `${m.perIdleConnectionKiB} KiB`,
            'RSS per idle subscribed conn.': `${m.perSubscribedConnectionKiB} KiB`,
            'gateway RSS before / after': `${m.rssBeforeMiB} / ${m.rssSubscribedMiB} MiB`,
          };
    default:
      return {};
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
