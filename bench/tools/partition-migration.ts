/**
 * How long migration 0006 (publications partitioned by time) holds the table: a private
 * PostgreSQL server migrated to 0005, ROWS publications over ROWS/100 channels (a tenth of
 * them with idempotency keys, commit times spread over 1,000 minutes), then 0006 timed.
 *
 *   npx tsx bench/tools/partition-migration.ts [ROWS]
 *
 * Default 1,000,000.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { migrationsFolder, runMigrations } from '../../src/db/migrate.js';
import { startPostgres } from '../../src/devstack/index.js';

const rows = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'tidings-partition-migration-'));
const server = await startPostgres({ dir: join(dir, 'pg') });
const client = new pg.Client({ connectionString: server.url });
try {
  const before0006 = join(dir, 'migrations');
  cpSync(migrationsFolder(), before0006, { recursive: true });
  const journalPath = join(before0006, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
  journal.entries = journal.entries.filter((e) => e.tag < '0006');
  writeFileSync(journalPath, JSON.stringify(journal));
  await client.connect();
  await migrate(drizzle(client), { migrationsFolder: before0006 });
  await client.query(`insert into channels (name, epoch, top_offset)
    select 'ch' || i, 'abcdefgh', 100 from generate_series(1, ${Math.ceil(rows / 100)}) i`);
  await client.query(`insert into publications (channel, "offset", id, data, idempotency_key, created_at)
    select 'ch' || (i / 100), i % 100 + 1, gen_random_uuid(), '{"hello":"world, sixty-four bytes of payload, more or less."}',
           case when i % 10 = 0 then 'k' || i end, now() - (i % 1000) * interval '1 minute'
      from generate_series(100, ${rows} + 99) i`);
  await client.query('vacuum analyze publications');
  const began = performance.now();
  const result = await runMigrations(server.url);
  console.log(`migration 0006 over ${rows} publications: ${(performance.now() - began).toFixed(0)} ms (applied ${result.applied})`);
} finally {
  await client.end();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
