/** Read-only checks against the bench's PostgreSQL after a scenario. */
import pg from 'pg';

export interface StoredStats {
  channels: number;
  stored: number;
  /** Every channel's offsets are exactly 1..count. */
  gapless: boolean;
  /**
   * Transactions that wrote them (distinct xmin). One per group-commit round since the worker
   * commits several jobs at once, so these are publications per transaction, not per job
   * (the field keeps its name for older result files).
   */
  jobs: number;
  publicationsPerJob: number;
}

/** Stats of the publications of channels whose name starts with `prefix`. */
export async function storedStats(databaseUrl: string, prefix: string): Promise<StoredStats> {
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => {}); // the server may be killed under us (deadline, signal); the query fails instead
  await db.connect();
  try {
    const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const { rows } = await db.query<{ n: number; lo: number; hi: number }>(
      `select count(*)::int as n, min("offset")::int as lo, max("offset")::int as hi
       from publications where channel like $1 group by channel`,
      [pattern],
    );
    const tx = await db.query<{ jobs: number }>(
      `select count(distinct xmin::text)::int as jobs from publications where channel like $1`,
      [pattern],
    );
    const stored = rows.reduce((s, r) => s + r.n, 0);
    const jobs = tx.rows[0]?.jobs ?? 0;
    return {
      channels: rows.length,
      stored,
      gapless: rows.every((r) => r.lo === 1 && r.hi === r.n),
      jobs,
      publicationsPerJob: jobs ? Math.round((stored / jobs) * 10) / 10 : 0,
    };
  } finally {
    await db.end();
  }
}
