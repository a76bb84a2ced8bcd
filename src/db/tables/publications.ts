import { sql } from 'drizzle-orm';
import { bigint, index, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * Every committed publication: the truth that history and recovery fall back to.
 *
 * - (channel, offset) is the primary key, so a range "after offset N" and a newest-first
 *   page are both index scans of it.
 * - `id` is the publication's unique id, minted by the gateway before the publish is
 *   queued. A retried queue job meets it again and inserts nothing (guarantee 5).
 * - `idempotency_key` is unique per channel for as long as the row exists, so a repeated
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
    primaryKey({ columns: [t.channel, t.offset] }),
    uniqueIndex('publications_id_key').on(t.id),
    uniqueIndex('publications_channel_idempotency_key')
      .on(t.channel, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('publications_created_at_idx').on(t.createdAt),
  ],
);
