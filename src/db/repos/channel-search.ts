/**
 * Channels by name prefix, from the `channels` table (every channel that ever had a
 * publication), for API `channel_search` and the admin console. One range scan of
 * `channels_name_prefix_idx` (migration 0010): names compare byte by byte (`~<~`, the
 * text_pattern_ops order), whatever the database's collation, so a prefix's names are one
 * contiguous run of the index and a page costs `limit` rows, however many channels exist.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../client.js';

export interface ChannelRow {
  channel: string;
  epoch: string;
  /** The offset of its newest publication. */
  offset: number;
  createdAt: string;
}

export interface ChannelSearch {
  prefix: string;
  /** Only names after this one, in byte order: the last name of the previous page. */
  after: string | undefined;
  limit: number;
}

/** `%`, `_` and the escape itself are literal in a prefix. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type Row = { name: string; epoch: string; top_offset: number; created_at: Date | string };

/** The statement, apart so a test can EXPLAIN it. */
export function searchQuery(search: ChannelSearch): SQL {
  const after = search.after === undefined ? sql`` : sql`and name ~>~ ${search.after}`;
  return sql`
    select name, epoch, top_offset, created_at from channels
     where name like ${likePrefix(search.prefix)} ${after}
     order by name using ~<~
     limit ${search.limit}`;
}

export async function searchChannels(db: Db, search: ChannelSearch): Promise<ChannelRow[]> {
  const result = await db.execute<Row>(searchQuery(search));
  return result.rows.map((row) => ({
    channel: row.name,
    epoch: row.epoch,
    offset: Number(row.top_offset),
    createdAt: new Date(row.created_at).toISOString(),
  }));
}
