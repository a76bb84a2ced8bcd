/**
 * Retention deletes old publications per namespace, keeps the channels row (epoch and top
 * offset), and leaves namespaces that keep history forever alone.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Namespaces } from '../../src/config/namespaces.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { namespaceScopes, runRetention } from '../../src/persist/retention.js';
import { createLogger } from '../../src/observability/logger.js';
import { connected } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';

describe('retention', () => {
  const stack = new TestStack();
  let database: Database;
  let url = '';

  beforeAll(async () => {
    url = wsUrl((await stack.gateway()).port);
    await stack.worker();
    database = openDatabase(inject('databaseUrl'));
  });
  afterAll(async () => {
    await database.close();
    await stack.close();
  });

  it('escapes LIKE wildcards in namespace names', () => {
    const ns = new Namespaces({ namespaces: { a_b: {} } }, { historySize: 1, historyTtlS: 1, recoveryMax: 1 });
    expect(namespaceScopes(ns.of('a_b:x')!)).toEqual([{ like: 'a\\_b:%' }, { like: '$a\\_b:%' }]);
  });

  it('removes old publications of namespaces with retention_days and keeps epoch and top', async () => {
    const old = uniqueChannel('old');
    const client = await connected(url, await token());
    await Promise.all([1, 2, 3].map((n) => client.publish(old, { n })));
    const before = await client.history(old, { limit: -1 });

    const db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    await db.query(`update publications set created_at = now() - interval '3 days' where channel = $1 and "offset" <= 2`, [old]);

    const namespaces = new Namespaces(
      { default: { retention_days: 2 }, namespaces: { forever: { retention_days: null } } },
      { historySize: 10, historyTtlS: 10, recoveryMax: 10 },
    );
    const deleted = await runRetention(database, namespaces, createLogger('silent'), { partitionDays: 1 });
    expect(deleted).toBeGreaterThanOrEqual(2);
    const { rows } = await db.query('select "offset" from publications where channel = $1 order by 1', [old]);
    expect(rows.map((r) => Number(r.offset))).toEqual([3]);
    const channel = await db.query('select epoch, top_offset from channels where name = $1', [old]);
    expect(channel.rows[0]).toEqual({ epoch: before.epoch, top_offset: 3 });
    await db.end();

    await client.publish(old, { n: 4 });
    expect((await client.history(old, {})).offset).toBe(4);
    client.disconnect();
  });

  it('forgets what history_remove kept of a publication with the same window, and idle job streams after a week', async () => {
    const channel = uniqueChannel('gone');
    const db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    try {
      const id = '00000000-0000-4000-8000-' + Date.now().toString(16).padStart(12, '0').slice(-12);
      await db.query(
        `insert into removed_publications (id, channel, "offset", idempotency_key, created_at)
         values ($1, $2, 1, 'k', now() - interval '3 days')`,
        [id, channel],
      );
      const stream = `idle-${channel}`;
      await db.query(`insert into ingest_streams (stream, last_seq, updated_at) values ($1, 4, now() - interval '8 days')`, [stream]);
      const fresh = `fresh-${channel}`;
      await db.query(`insert into ingest_streams (stream, last_seq) values ($1, 4)`, [fresh]);
      const namespaces = new Namespaces({ default: { retention_days: 2 } }, { historySize: 10, historyTtlS: 10, recoveryMax: 10 });
      await runRetention(database, namespaces, createLogger('silent'), { partitionDays: 1 });
      expect((await db.query('select 1 from removed_publications where id = $1', [id])).rowCount).toBe(0);
      expect((await db.query('select stream from ingest_streams where stream = any($1)', [[stream, fresh]])).rows).toEqual([
        { stream: fresh },
      ]);
    } finally {
      await db.end();
    }
  });
});
