import { bigint, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * One row per channel that ever had a publication. The epoch is chosen when the row is
 * created and never changes, so positions stay valid whatever happens to Redis
 * (guarantee 6). `top_offset` is the offset of the newest publication; it only grows, and
 * only the persist worker's transaction moves it (guarantee 2).
 */
export const channels = pgTable(
  'channels',
  {
    name: text('name').primaryKey(),
    epoch: text('epoch').notNull(),
    topOffset: bigint('top_offset', { mode: 'number' }).notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /**
     * Start of the UTC day of the channel's newest `channel_periods` row (null: none yet).
     * Publications are stamped no earlier than this, so each channel's days only move forward.
     */
    periodStart: timestamp('period_start', { withTimezone: true }),
  },
  // Search by prefix (API `channel_search`, the admin console): the primary key sorts by the
  // database's collation, where names sharing a prefix need not be adjacent; text_pattern_ops
  // compares bytes, so `name LIKE 'prefix%'` is one range scan of this index.
  (t) => [index('channels_name_prefix_idx').using('btree', t.name.op('text_pattern_ops'))],
);
