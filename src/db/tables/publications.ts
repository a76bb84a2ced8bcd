import { sql } from 'drizzle-orm';
import { bigint, index, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Every committed publication: the truth that history and recovery fall back to.
 *
 * Partitioned by `created_at` (migrations/0006; src/persist/partitions.ts creates the
 * partitions ahead and drops whole ones for retention). PostgreSQL wants the partition key
 * in every unique index, so uniqueness is kept by the commit, not by an index:
 *
 * - (channel, offset) is unique because only the commit assigns offsets, from the
 *   channel's `top_offset` under its row lock. The primary key (channel, offset,
 *   created_at) makes a range "after offset N" and a newest-first page index scans of
 *   each partition; `channel_periods` tells a read which partitions it can skip.
 * - `id` is the publication's id, minted by the gateway before the publish is queued. A
 *   re-run job finds it (index on id) and inserts nothing (guarantee 5).
 * - `idempotency_key` is looked up per channel under the channel's lock, so a repeated
 *   API publish returns the first result instead of a second publication.
 * - `data`, `conn_info`, `chan_info` and `tags` keep the JSON text as the client sent it
 *   (validated on the way in): it is written once and replayed verbatim, and text skips
 *   the jsonb parse and re-encode on both paths.
 */
export const publications = pgTable(
  'publications',
  {
    channel: text('channel').notNull(),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    id: uuid('id').notNull(),
    data: text('data').notNull(),
    user: text('user'),
    client: text('client'),
    connInfo: text('conn_info'),
    chanInfo: text('chan_info'),
    tags: text('tags'),
    idempotencyKey: text('idempotency_key'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.channel, t.offset, t.createdAt] }),
    index('publications_id_idx').on(t.id),
    index('publications_channel_idempotency_key_idx')
      .on(t.channel, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('publications_created_at_idx').on(t.createdAt),
  ],
);
