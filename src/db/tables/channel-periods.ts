import { bigint, index, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Where a channel's offsets fall in time, one row per channel per UTC day it published:
 * every publication of `channel` with offset >= `first_offset` was stamped at or after
 * `starts_at`. A read "after offset N" takes the newest row with first_offset <= N + 1 as
 * a lower bound on created_at, so PostgreSQL skips the older partitions of `publications`
 * instead of probing each one's index.
 *
 * The commit writes a row the first time a channel publishes on a new day (at most one
 * row per channel per day) and stamps publications so that the bound holds: see
 * `tidings_stamp` in migrations/0006. Rows only narrow reads: a read that finds none
 * scans every partition and is still exact, so retention may forget old rows.
 */
export const channelPeriods = pgTable(
  'channel_periods',
  {
    channel: text('channel').notNull(),
    startsAt: timestamp('starts_at', { withTimezone: true }).notNull(),
    firstOffset: bigint('first_offset', { mode: 'number' }).notNull(),
  },
  // starts_at: retention forgets the rows of days whose partitions it dropped.
  (t) => [primaryKey({ columns: [t.channel, t.startsAt] }), index('channel_periods_starts_at_idx').on(t.startsAt)],
);
