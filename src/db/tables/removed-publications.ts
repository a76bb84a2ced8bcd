import { sql } from 'drizzle-orm';
import { bigint, index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * What `history_remove` took away, minus the payload: the id, position and idempotency key
 * of each removed publication. A re-run job recognises its publications here after they
 * were removed (and acknowledges them with their real offsets instead of storing them
 * again), and a repeated API publish with the same idempotency key still returns the first
 * result. Retention deletes these rows with the same window as publications, so a key
 * lives exactly as long as its publication would have.
 *
 * Each removal also leaves a row of its own (its job's id, at the offset it removed up to,
 * no key), so a gateway that timed out waiting for it finds that it ran (issue 12).
 */
export const removedPublications = pgTable(
  'removed_publications',
  {
    id: uuid('id').primaryKey(),
    channel: text('channel').notNull(),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    idempotencyKey: text('idempotency_key'),
    /** When the publication was committed (its retention clock), not when it was removed. */
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex('removed_publications_channel_idempotency_key')
      .on(t.channel, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('removed_publications_created_at_idx').on(t.createdAt),
  ],
);
