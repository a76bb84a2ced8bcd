/**
 * Edits and deletes as ordered events (issue 15): an edit or a delete is a publication of its
 * own, later in the channel, whose tags name the offset it changes (`tidings_op`,
 * `tidings_of`). These reads find a publication by offset and, for `history latest`, the last
 * edit or delete of each of some offsets (an expression index, migrations/0009, serves it).
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../client.js';

export const EDIT_OP_TAG = 'tidings_op';
export const EDIT_OF_TAG = 'tidings_of';

export interface StoredVersion {
  offset: number;
  data: string;
  tags: string | null;
  /** The publishing connection's user ('' anonymous); absent for API, SQL and edit-event rows read as versions. */
  user?: string | null;
}

/** The publication at `offset`, or undefined (never published, or removed). */
export async function publicationAt(db: Db, channel: string, offset: number): Promise<StoredVersion | undefined> {
  const result = await db.execute<{ offset: number; data: string; tags: string | null; user: string | null }>(sql`
    select "offset", data, tags, "user" from publications where channel = ${channel} and "offset" = ${offset} limit 1`);
  const row = result.rows[0];
  return row ? { offset: Number(row.offset), data: row.data, tags: row.tags, user: row.user } : undefined;
}

/** For each of `offsets` that was edited or deleted, its last edit or delete. */
export async function latestVersions(db: Db, channel: string, offsets: number[]): Promise<Map<number, StoredVersion & { op: string }>> {
  if (offsets.length === 0) return new Map();
  const result = await db.execute<{ of: number; offset: number; data: string; tags: string; op: string }>(sql`
    select distinct on (x.of) x.of, x."offset", x.data, x.tags, x.op from (
      select ((p.tags::jsonb) ->> 'tidings_of')::bigint as of, p."offset", p.data, p.tags, (p.tags::jsonb) ->> 'tidings_op' as op
        from publications p
       where p.channel = ${channel} and p.tags like '%"tidings_of"%'
         and ((p.tags::jsonb) ->> 'tidings_of')::bigint = any(${sql.param(offsets)}::bigint[])
    ) x order by x.of, x."offset" desc`);
  return new Map(result.rows.map((r) => [Number(r.of), { offset: Number(r.offset), data: r.data, tags: r.tags, op: r.op }]));
}
