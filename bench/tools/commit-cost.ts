/**
 * What one group-commit call costs, apart from everything else: wall time and the calling
 * process's CPU per `commitJobs` call, PostgreSQL's time in `tidings_commit_many` per call
 * (pg_stat_user_functions), and, for scale, a `select 1` through the same pool. Private
 * PostgreSQL server, as the bench uses.
 *
 *   npx tsx bench/tools/commit-cost.ts [JOBS_PER_CALL] [PUBLICATIONS_PER_JOB] [CALLS] [GAP_MS]
 *
 * Defaults 4 4 1000: a T1 round. `... 1 1` is an L1 round. With GAP_MS, each call waits that
 * long after the one before, as at low load, where every call finds both processes idle
 * (`... 1 1 300 10`); wall time is then counted per call without the gaps, and the CPU
 * figure includes each wake-up.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Database } from '../../src/db/client.js';
import { commitJobs } from '../../src/db/repos/commit-many.js';
import { runMigrations } from '../../src/db/migrate.js';
import { startPostgres } from '../../src/devstack/index.js';

const arg = (i: number, fallback: number) => Number(process.argv[2 + i] ?? fallback);
const [jobsPerCall, perJob, calls, gapMs] = [arg(0, 4), arg(1, 4), arg(2, 1000), arg(3, 0)];
const dir = mkdtempSync(join(tmpdir(), 'tidings-commit-cost-'));
const server = await startPostgres({ dir });
let database: Database | undefined;
try {
  await runMigrations(server.url);
  database = openDatabase(server.url, { max: 1 });
  await database.pool.query("alter system set track_functions = 'pl'");
  await database.pool.query('select pg_reload_conf()');
  const seqs = new Array<number>(jobsPerCall).fill(0);
  let n = 0;
  const db = database.pool;
  const commit = () =>
    commitJobs(
      db,
      Array.from({ length: jobsPerCall }, (_, j) => ({
        batch: Array.from({ length: perJob }, () => ({ id: randomUUID(), channel: `bench:${n++ % 100}`, data: '{"x":1}', user: 'u1' })),
        order: { stream: `gw-cost/ingest-${j}`, seq: ++seqs[j]!, skipGap: false },
      })),
    );
  const pool = database.pool;
  await measure('select 1 through the pool', () => pool.query('select 1'));
  await measure(`commitJobs, ${jobsPerCall} job(s) × ${perJob} publication(s)`, commit, true);
} finally {
  await database?.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

async function measure(label: string, call: () => Promise<unknown>, functionTime = false): Promise<void> {
  for (let i = 0; i < Math.min(200, calls); i++) await call();
  if (functionTime) await database!.pool.query('select pg_stat_reset()');
  const cpu = process.cpuUsage();
  let wall = 0;
  for (let i = 0; i < calls; i++) {
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    const t = performance.now();
    await call();
    wall += performance.now() - t;
  }
  const wallMs = wall / calls;
  const used = process.cpuUsage(cpu);
  let inFunction = '';
  if (functionTime) {
    await new Promise((resolve) => setTimeout(resolve, 700)); // statistics reach the view asynchronously
    const { rows } = await database!.pool.query<{ calls: number; total: number }>(
      "select calls::int, total_time as total from pg_stat_user_functions where funcname = 'tidings_commit_many'",
    );
    const row = rows[0];
    if (row && row.calls > 0) inFunction = `, ${(row.total / row.calls).toFixed(3)} ms in tidings_commit_many`;
  }
  console.log(`${label}: ${wallMs.toFixed(3)} ms wall, ${((used.user + used.system) / calls).toFixed(0)} µs CPU here${inFunction}`);
}
