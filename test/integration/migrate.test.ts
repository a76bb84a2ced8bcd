/**
 * `tidings migrate`: idempotent, and safe when several processes run it at once (advisory
 * lock). Each test gets a fresh database on the shared private PostgreSQL.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runMigrations } from '../../src/db/migrate.js';
import { freshDatabase } from '../helpers/database.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

async function migrationCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
  await client.end();
  return rows[0]!.n;
}

describe('migrations', () => {
  it('applies once; a second run is a no-op', async () => {
    const url = await freshDatabase('mig');
    const first = await runMigrations(url);
    expect(first.applied).toBeGreaterThan(0);
    const second = await runMigrations(url);
    expect(second).toEqual({ applied: 0, total: first.total });
  });

  it('three `tidings migrate` processes at once apply it once, without error', async () => {
    const url = await freshDatabase('mig');
    const cli = join(ROOT, 'src', 'cli.ts');
    const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'info' };
    const results = await Promise.all(
      [1, 2, 3].map(() => run(process.execPath, ['--import', 'tsx', cli, 'migrate'], { cwd: ROOT, env })),
    );
    const applied = results.map((r) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as { applied: number }).applied);
    expect(applied.filter((n) => n > 0)).toHaveLength(1);
    const { total } = await runMigrations(url);
    expect(await migrationCount(url)).toBe(total);
  });

  it('exits non-zero with one line naming DATABASE_URL when it is missing', async () => {
    const env = { ...process.env, DATABASE_URL: '' };
    const err = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'migrate'], { cwd: ROOT, env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err as { code: number }).code).toBe(1);
    const stderr = (err as { stderr: string }).stderr.trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toContain('DATABASE_URL');
  });
});
