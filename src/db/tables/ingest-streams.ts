import { bigint, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Publisher order, enforced by PostgreSQL (guarantee 3). Each gateway process numbers the
 * jobs it adds to one partition queue 1, 2, 3, …; that (gateway, partition) pair is a
 * stream, and this row holds the last sequence number committed for it. The persist
 * transaction locks the row and commits a job only as the next one of its stream, so no
 * state Redis may lose (BullMQ's active list, its global concurrency) can let a later job
 * of a connection commit before an earlier one.
 *
 * The row is also each job's completion record: a job whose number is at or below
 * `last_seq` has been decided already, and a re-run of it never inserts again (even after
 * its publications were removed by `history_remove` or retention).
 */
export const ingestStreams = pgTable('ingest_streams', {
  stream: text('stream').primaryKey(),
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
