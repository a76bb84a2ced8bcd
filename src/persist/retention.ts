/**
 * PostgreSQL retention: publications older than their namespace's `retention_days` are
 * deleted in small batches (short transactions, no long locks), by one worker at a time
 * (a session advisory lock; the others skip the round). What history_remove left of a
 * publication (its id and idempotency key) goes with the same window, and the job streams
 * of gateways gone for a week are forgotten.
 */
import type { Namespaces, NamespaceOptions } from '../config/namespaces.js';
import type { Database } from '../db/client.js';
import { deleteExpired } from '../db/repos/publications.js';
import { deleteIdleStreams } from '../db/repos/streams.js';
import type { Logger } from '../observability/logger.js';

const RETENTION_LOCK_KEY = 0x74696472; // "tidr"
const BATCH = 5000;

/** A gateway's job stream is forgotten this long after its last job (no job waits that long). */
export const STREAM_IDLE_MS = 7 * 86_400_000;

/** LIKE patterns of a namespace's channels: `ns:%` and `$ns:%`; the default has no colon. */
export function namespaceScopes(ns: NamespaceOptions): { like: string; unlike?: string }[] {
  if (ns.name === '') return [{ like: '%', unlike: '%:%' }];
  const escaped = ns.name.replace(/[\\%_]/g, (c) => `\\${c}`);
  return [{ like: `${escaped}:%` }, { like: `$${escaped}:%` }];
}

export async function runRetention(database: Database, namespaces: Namespaces, log: Logger, now = new Date()): Promise<number> {
  const client = await database.pool.connect();
  let deleted = 0;
  try {
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [RETENTION_LOCK_KEY]);
    if (!rows[0]?.locked) return 0;
    try {
      for (const ns of namespaces.all()) {
        if (ns.retention_days === null) continue;
        const before = new Date(now.getTime() - ns.retention_days * 86_400_000);
        for (const scope of namespaceScopes(ns)) {
          deleted += await deleteAll(database, scope, before, 'publications');
          await deleteAll(database, scope, before, 'removed_publications');
        }
      }
      await deleteIdleStreams(database.db, new Date(now.getTime() - STREAM_IDLE_MS));
    } finally {
      await client.query('select pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  if (deleted > 0) log.info({ deleted }, 'retention removed old publications');
  return deleted;
}

async function deleteAll(
  database: Database,
  scope: { like: string; unlike?: string },
  before: Date,
  table: 'publications' | 'removed_publications',
): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deleteExpired(database.db, scope, before, BATCH, table);
    total += n;
    if (n < BATCH) return total;
  }
}

/** Runs retention every `intervalS`; a failing round is logged and the next one tries again. */
export function scheduleRetention(database: Database, namespaces: Namespaces, log: Logger, intervalS: number): () => void {
  const tick = () => void runRetention(database, namespaces, log).catch((err: unknown) => log.warn({ err }, 'retention round failed'));
  const timer = setInterval(tick, intervalS * 1000);
  timer.unref();
  tick();
  return () => clearInterval(timer);
}
