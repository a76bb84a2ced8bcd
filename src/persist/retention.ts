/**
 * PostgreSQL retention, by one worker at a time (a session advisory lock; the others skip
 * the round):
 *
 * - the partitions of publications are created ahead (src/persist/partitions.ts);
 * - when every namespace has a `retention_days`, the partitions older than the longest one
 *   are dropped whole: publications of those namespaces stay up to one partition width
 *   longer than their window, never shorter;
 * - namespaces with a shorter window have their older publications deleted in small
 *   batches (short transactions, no long locks), as have the longest-window namespaces in
 *   the partitions not cut by day (the one the table had before it was partitioned, and
 *   the default one);
 * - what history_remove left of a publication (its id and idempotency key) goes with its
 *   namespace's window, and the job streams of gateways gone for a week are forgotten.
 */
import type { Namespaces, NamespaceOptions } from '../config/namespaces.js';
import type { Database } from '../db/client.js';
import { deleteExpired } from '../db/repos/publications.js';
import { deleteIdleStreams } from '../db/repos/streams.js';
import type { Logger } from '../observability/logger.js';
import { dropPartitionsBefore, ensurePartitions, listPartitions } from './partitions.js';

const RETENTION_LOCK_KEY = 0x74696472; // "tidr"
const BATCH = 5000;
const DAY_MS = 86_400_000;

/** A gateway's job stream is forgotten this long after its last job (no job waits that long). */
export const STREAM_IDLE_MS = 7 * 86_400_000;

/** LIKE patterns of a namespace's channels: `ns:%` and `$ns:%`; the default has no colon. */
export function namespaceScopes(ns: NamespaceOptions): { like: string; unlike?: string }[] {
  if (ns.name === '') return [{ like: '%', unlike: '%:%' }];
  const escaped = ns.name.replace(/[\\%_]/g, (c) => `\\${c}`);
  return [{ like: `${escaped}:%` }, { like: `$${escaped}:%` }];
}

export interface RetentionOptions {
  /** TIDINGS_PG_PARTITION_DAYS */
  partitionDays: number;
  now?: Date;
}

/** The longest `retention_days` of all namespaces; null when one keeps its publications forever. */
export function longestWindowDays(namespaces: Namespaces): number | null {
  let longest = 0;
  for (const ns of namespaces.all()) {
    if (ns.retention_days === null) return null;
    longest = Math.max(longest, ns.retention_days);
  }
  return longest;
}

export async function runRetention(database: Database, namespaces: Namespaces, log: Logger, opts: RetentionOptions): Promise<number> {
  const now = opts.now ?? new Date();
  const client = await database.pool.connect();
  let deleted = 0;
  try {
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [RETENTION_LOCK_KEY]);
    if (!rows[0]?.locked) return 0;
    try {
      await ensurePartitions(client, opts.partitionDays, log, now.getTime());
      const longest = longestWindowDays(namespaces);
      if (longest !== null) await dropPartitionsBefore(client, now.getTime() - longest * DAY_MS, log);
      // Partitions not cut by day: dropping whole partitions cannot reach their old rows.
      const uncut = (await listPartitions(client)).filter((p) => p.isDefault || p.from === null).map((p) => p.name);
      for (const ns of namespaces.all()) {
        if (ns.retention_days === null) continue;
        const before = new Date(now.getTime() - ns.retention_days * DAY_MS);
        const tables = ns.retention_days === longest ? uncut : ['publications'];
        for (const scope of namespaceScopes(ns)) {
          for (const table of tables) deleted += await deleteAll(database, scope, before, table);
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
  table: string,
): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deleteExpired(database.db, scope, before, BATCH, table);
    total += n;
    if (n < BATCH) return total;
  }
}

/** Runs retention every `intervalS`; a failing round is logged and the next one tries again. */
export function scheduleRetention(
  database: Database,
  namespaces: Namespaces,
  log: Logger,
  intervalS: number,
  partitionDays: number,
): () => void {
  const tick = () => void runRetention(database, namespaces, log, { partitionDays }).catch((err: unknown) => log.warn({ err }, 'retention round failed'));
  const timer = setInterval(tick, intervalS * 1000);
  timer.unref();
  tick();
  return () => clearInterval(timer);
}
