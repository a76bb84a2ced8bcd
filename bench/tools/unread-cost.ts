/**
 * What `tidings.unread` / API `unread` costs for many channels (issue 15 target: 1,000
 * channels in one call ≤ 20 ms): a private PostgreSQL server, CHANNELS channels with
 * publications, the user's cursor on every one, then CALLS reads of all of them.
 *
 *   npx tsx bench/tools/unread-cost.ts [CHANNELS] [CALLS]
 *
 * Defaults 1000 200.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/db/client.js';
import { readStates } from '../../src/db/repos/cursors.js';
import { runMigrations } from '../../src/db/migrate.js';
import { startPostgres } from '../../src/devstack/index.js';

const [channelCount, calls] = [Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 200)];
const dir = mkdtempSync(join(tmpdir(), 'tidings-unread-cost-'));
const server = await startPostgres({ dir });
const database = openDatabase(server.url, { max: 1 });
try {
  await runMigrations(server.url);
  // Other users' cursors too, so the index is not the user's alone.
  await database.pool.query(`insert into channels (name, epoch, top_offset) select 'room:' || i, 'abcdefgh', i from generate_series(1, $1) i`, [channelCount]);
  await database.pool.query(
    `insert into read_cursors ("user", channel, "offset") select 'u' || u, 'room:' || i, i / 2 from generate_series(1, $1) i, generate_series(1, 50) u`,
    [channelCount],
  );
  await database.pool.query('vacuum analyze');
  const names = Array.from({ length: channelCount }, (_, i) => `room:${i + 1}`);
  for (let i = 0; i < 20; i++) await readStates(database.db, 'u7', names);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const began = performance.now();
    const states = await readStates(database.db, 'u7', names);
    times.push(performance.now() - began);
    if (states.length !== channelCount) throw new Error('short answer');
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
  console.log(`unread of ${channelCount} channels, ${calls} calls: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
} finally {
  await database.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
