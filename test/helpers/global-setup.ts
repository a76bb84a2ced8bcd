/**
 * Starts one private Redis and one private PostgreSQL for the integration project and
 * migrates the database. Test files share them; each file isolates itself with its own
 * queue/key prefix and channel names (test/helpers/stack.ts). Tests that kill or restart a
 * server start their own (see startPrivateServers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../src/db/migrate.js';
import { startPostgres, startRedis } from '../../src/devstack/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'tidings-test-'));
  const [pg, redis] = await Promise.all([
    startPostgres({ dir: join(root, 'postgres') }),
    startRedis({ dir: join(root, 'redis'), appendonly: false }),
  ]);
  await runMigrations(pg.url);
  project.provide('redisUrl', redis.url);
  project.provide('databaseUrl', pg.url);
  return async () => {
    await Promise.allSettled([redis.kill(), pg.kill()]);
    await rm(root, { recursive: true, force: true });
  };
}
