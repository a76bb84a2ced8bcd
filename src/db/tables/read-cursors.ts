import { bigint, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Read cursors (issue 15): per user and channel, the offset up to which the user has read.
 * It only moves forward (the upsert keeps the greater offset), so devices that mark things
 * read out of order agree, and unread = the channel's top_offset - offset.
 */
export const readCursors = pgTable(
  'read_cursors',
  {
    user: text('user').notNull(),
    channel: text('channel').notNull(),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.user, t.channel] })],
);
