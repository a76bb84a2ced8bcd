/**
 * `tidings.publish` from an app's transaction to a subscriber (issue 15 target: p99 ≤ 50 ms
 * from COMMIT to delivery): private PostgreSQL and Redis, a gateway and a worker (in this one
 * process, with the load generator: fewer cores than the deployed topology, so it flatters
 * nothing), one SDK subscriber, then COUNT transactions one after another, each publishing
 * one message, PACE ms apart. Measured from the return of COMMIT to the `publication` event.
 *
 *   npx tsx bench/tools/sql-publish-latency.ts [COUNT] [PACE_MS]
 *
 * Defaults 500 10.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Centrifuge } from 'centrifuge';
import pg from 'pg';
import WebSocket from 'ws';
import { startGateway } from '../../src/app/gateway.js';
import { startWorker } from '../../src/app/worker.js';
import { signToken } from '../../src/auth/jwt.js';
import { loadConfig } from '../../src/config/index.js';
import { runMigrations } from '../../src/db/migrate.js';
import { startPostgres, startRedis } from '../../src/devstack/index.js';
import { createLogger } from '../../src/observability/logger.js';

const [count, paceMs] = [Number(process.argv[2] ?? 500), Number(process.argv[3] ?? 10)];
const secret = 'bench-secret-0123456789abcdef-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'tidings-sql-latency-'));
const postgres = await startPostgres({ dir: join(dir, 'pg') });
const redis = await startRedis({ dir: join(dir, 'redis') });
const env = { DATABASE_URL: postgres.url, REDIS_URL: redis.url, TIDINGS_TOKEN_SECRET: secret, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
const log = createLogger('warn');
await runMigrations(postgres.url);
const worker = await startWorker(loadConfig('worker', env), log);
const gateway = await startGateway(loadConfig('gateway', env), log);
const app = new pg.Client({ connectionString: postgres.url });
await app.connect();
const client = new Centrifuge(`ws://127.0.0.1:${gateway.port}/connection/websocket`, {
  token: await signToken({ user: 'bench', secret, ttlSeconds: 3600 }),
  websocket: WebSocket,
});
const committedAt = new Map<number, number>();
const latencies: number[] = [];
const sub = client.newSubscription('sql-latency');
sub.on('publication', (ctx) => {
  const at = committedAt.get((ctx.data as { n: number }).n);
  if (at !== undefined) latencies.push(performance.now() - at);
});
sub.subscribe();
client.connect();
await sub.ready(10_000);
try {
  for (let n = 0; n < count; n++) {
    await app.query('begin');
    await app.query('select tidings.publish($1, $2)', ['sql-latency', { n }]);
    await app.query('commit');
    committedAt.set(n, performance.now());
    await new Promise((r) => setTimeout(r, paceMs));
  }
  const deadline = Date.now() + 10_000;
  while (latencies.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
  console.log(`tidings.publish → subscriber, ${latencies.length}/${count} delivered, one every ${paceMs} ms: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
} finally {
  client.disconnect();
  await app.end();
  await gateway.close();
  await worker.close();
  await Promise.all([postgres.stop(), redis.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
