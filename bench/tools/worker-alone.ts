/**
 * One persist worker, alone, on queues filled beforehand: its CPU per BullMQ job, per batch
 * and per publication, with nothing else competing for the machine (no gateways, no load
 * generator). Private PostgreSQL and Redis servers, as the bench uses.
 *
 *   npx tsx bench/tools/worker-alone.ts [JOBS] [BATCHES_PER_JOB] [PUBLICATIONS_PER_BATCH] [JOBS_PER_SECOND]
 *
 * Defaults 3000 4 4: bundles as T1 makes them. `... 6000 1 4` gives single-batch jobs.
 * With JOBS_PER_SECOND the jobs are added at that pace while the worker runs, as at low
 * load (`... 900 1 1 90`: what L1 asks of its worker), so each one wakes it; the Redis
 * commands per job are printed too. WORKER_NODE_FLAGS passes V8 flags to the worker alone
 * (`--cpu-prof --cpu-prof-dir=DIR`, `--trace-opt`): NODE_OPTIONS refuses some of them.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { partitionOf, partitionQueueName } from '../../src/bus/keys.js';
import { runMigrations } from '../../src/db/migrate.js';
import { freePort, startPostgres, startRedis } from '../../src/devstack/index.js';
import { INGEST_BUNDLE_JOB_NAME, INGEST_JOB_NAME } from '../../src/ingest/job.js';
import { ROOT } from '../lib/stack.js';

const PARTITIONS = 8;
const CHANNELS_PER_PARTITION = 13;
const arg = (i: number, fallback: number) => Number(process.argv[2 + i] ?? fallback);
const [jobs, batchesPerJob, perBatch, pace] = [arg(0, 3000), arg(1, 4), arg(2, 4), arg(3, 0)];

const dir = mkdtempSync(join(tmpdir(), 'tidings-worker-alone-'));
const [postgres, redisServer] = await Promise.all([startPostgres({ dir: join(dir, 'pg') }), startRedis({ dir: join(dir, 'redis') })]);
try {
  await runMigrations(postgres.url);
  const total = jobs * batchesPerJob * perBatch;
  const redis = new Redis(redisServer.url);
  if (!pace) await fill(redis);
  const port = await freePort();
  const child = spawn(process.execPath, [...(process.env.WORKER_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'worker'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: postgres.url, REDIS_URL: redisServer.url, TIDINGS_QUEUE_PREFIX: 'alone', TIDINGS_METRICS_PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  let started = 0;
  let cpuAtStart = 0;
  let commandsAtStart = new Map<string, number>();
  if (pace) {
    await new Promise((resolve) => setTimeout(resolve, 3000)); // the worker takes its partitions
    [started, cpuAtStart, commandsAtStart] = [performance.now(), cpuSeconds(child.pid!), await commandCalls(redis)];
    await fill(redis, pace);
  }
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { rows } = await db.query<{ n: number }>('select count(*)::int as n from publications');
    if (!started && rows[0]!.n > 0) [started, cpuAtStart] = [performance.now(), cpuSeconds(child.pid!)];
    if (rows[0]!.n >= total) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(child.pid!) - cpuAtStart;
  const us = (n: number) => ((cpu * 1e6) / n).toFixed(0);
  console.log(
    `${jobs} jobs × ${batchesPerJob} batches × ${perBatch} publications${pace ? ` at ${pace} jobs/s` : ''}: ${(total / seconds).toFixed(0)} publications/s; ` +
      `worker CPU ${us(jobs)} µs per BullMQ job, ${us(jobs * batchesPerJob)} µs per batch, ${us(total)} µs per publication`,
  );
  if (pace) {
    const after = await commandCalls(redis);
    const perJob = [...after].map(([name, n]) => [name, (n - (commandsAtStart.get(name) ?? 0)) / jobs] as const).filter(([, n]) => n >= 0.05);
    console.log(`Redis commands per job (inside scripts too): ${perJob.map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ')}`);
  }
  redis.disconnect();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await db.end();
} finally {
  await Promise.all([postgres.stop(), redisServer.stop()]);
  rmSync(dir, { recursive: true, force: true });
}

/** Queues the jobs: all at once, or `perSecond` of them a second. */
async function fill(redis: Redis, perSecond = 0): Promise<void> {
  const queues = Array.from({ length: PARTITIONS }, (_, p) => new Queue(partitionQueueName(p), { connection: redis, prefix: 'alone' }));
  const channels: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let i = 0; channels.some((c) => c.length < CHANNELS_PER_PARTITION); i++) {
    const list = channels[partitionOf(`bench:${i}`, PARTITIONS)]!;
    if (list.length < CHANNELS_PER_PARTITION) list.push(`bench:${i}`);
  }
  const seqs = new Array<number>(PARTITIONS).fill(0);
  let n = 0;
  const publication = (q: number) => ({ id: randomUUID(), channel: channels[q]![n++ % CHANNELS_PER_PARTITION]!, data: `{"x":"${'y'.repeat(50)}"}`, user: 'u1', client: randomUUID() });
  const began = performance.now();
  for (let j = 0; j < jobs; j++) {
    const first = (j * batchesPerJob) % PARTITIONS;
    const parts = Array.from({ length: batchesPerJob }, (_, k) => {
      const q = (first + k) % PARTITIONS;
      return { q, s: ++seqs[q]!, p: Array.from({ length: perBatch }, () => publication(q)) };
    });
    if (batchesPerJob > 1) await queues[first]!.add(INGEST_BUNDLE_JOB_NAME, { g: 'gw-alone', b: parts });
    else await queues[first]!.add(INGEST_JOB_NAME, { g: 'gw-alone', p: parts[0]!.p, s: parts[0]!.s });
    if (perSecond) await new Promise((resolve) => setTimeout(resolve, Math.max(0, began + ((j + 1) * 1000) / perSecond - performance.now())));
  }
  await Promise.all(queues.map((q) => q.close()));
}

/** Calls per Redis command so far (INFO commandstats). */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
