import { bigserial, pgSchema, text, timestamp } from 'drizzle-orm/pg-core';

/** Tidings' own schema for what apps call from their SQL: `tidings.publish(...)`. */
export const tidingsSchema = pgSchema('tidings');

/**
 * Publications an app made inside its own transaction with `tidings.publish` (issue 15),
 * waiting for the relay (src/persist/relay.ts) to number and deliver them. A row appears only
 * if the app's transaction commits, and the relay deletes it in the transaction that commits
 * its publication, so each is published exactly once.
 */
export const outbox = tidingsSchema.table('outbox', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  channel: text('channel').notNull(),
  data: text('data').notNull(),
  idempotencyKey: text('idempotency_key'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
