/** One pg Pool per process, wrapped by drizzle; closing the Database closes the pool. */
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { metrics } from '../observability/metrics.js';
import * as schema from './schema.js';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

// bigint columns come back as strings by default; our offsets stay far below 2^53 (the
// client SDK converts them with Number() anyway), so parse them as numbers once, here.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function openDatabase(url: string, opts: { max?: number; applicationName?: string } = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'tidings',
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener
  // that would crash the process. The next query reconnects.
  pool.on('error', () => metrics.storeErrors.inc({ store: 'postgres' }));
  // A checked-out client (a transaction in progress: drizzle's transaction() holds one
  // between statements) that loses its server emits 'error' on itself, and the pool only
  // listens to idle clients: without this, PostgreSQL going away mid-transaction would crash
  // the process. The error also fails the statement in flight, or the next one, so the
  // transaction rolls back and its caller retries; the broken client is discarded on release.
  pool.on('connect', (client) => client.on('error', () => metrics.storeErrors.inc({ store: 'postgres' })));
  releaseWhenFirstStatementFails(pool);
  const db = drizzle(pool, { schema });
  let closed = false;
  return {
    db,
    pool,
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/**
 * drizzle's transaction() checks a client out and sends BEGIN before its try/finally, so when
 * BEGIN fails (the connection died in between, or the pool handed out a client whose socket
 * had just died) the client is never released. Each such failure would leak a pool slot
 * until the pool is exhausted and every later transaction waits out connectionTimeoutMillis
 * forever: a worker wedged after a PostgreSQL outage. So a client checked out with
 * `await pool.connect()` is released (and discarded) as soon as its first statement fails,
 * and release() becomes idempotent for whoever calls it afterwards (retention does).
 */
function releaseWhenFirstStatementFails(pool: pg.Pool): void {
  const checkout = pool.connect.bind(pool);
  pool.connect = ((callback?: Parameters<pg.Pool['connect']>[0]) => {
    // pg-pool's own query() checks out with a callback and releases on every outcome.
    if (callback) return checkout(callback);
    return checkout().then(guard);
  }) as pg.Pool['connect'];
}

function guard(client: pg.PoolClient): pg.PoolClient {
  const release = client.release;
  let released = false;
  client.release = ((err?: Error | boolean) => {
    if (released) return;
    released = true;
    release.call(client, err);
  }) as pg.PoolClient['release'];
  const query = client.query;
  client.query = ((...args: Parameters<pg.PoolClient['query']>) => {
    client.query = query;
    const result = (query as (...a: unknown[]) => unknown).apply(client, args);
    if (result instanceof Promise) result.catch((err: unknown) => client.release(err instanceof Error ? err : true));
    return result;
  }) as pg.PoolClient['query'];
  return client;
}
