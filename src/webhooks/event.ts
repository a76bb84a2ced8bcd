/**
 * A webhook event as the backend receives it (docs/api.md, "Lifecycle webhooks"):
 *   {"id", "type", "time", "user", "client", "channel"?, "reason"?, "offset"?}
 * `id` is minted once, when the event happens, and travels with it through every retry, so a
 * backend dedupes redeliveries (at least once) by it. `time` is when it happened (RFC 3339).
 *
 * The body is serialised once, when the event is queued, and those exact bytes are signed and
 * sent on every attempt: a signature over a re-serialisation could differ from the body.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { WebhookEventType } from '../config/webhooks.js';
import { partitionOf } from '../bus/keys.js';

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  time: string;
  user: string;
  client: string;
  channel?: string;
  reason?: string;
  offset?: number;
}

/** What happened, without the id and time that `mintEvent` adds. */
export type EventFacts = Omit<WebhookEvent, 'id' | 'time'>;

/** The signature header's name and its value's scheme, as GitHub's `X-Hub-Signature-256`. */
export const SIGNATURE_HEADER = 'x-tidings-signature';

/** The event, its keys in the documented order (id, type, time first). */
export function mintEvent(facts: EventFacts, now = new Date()): WebhookEvent {
  const { type, ...rest } = facts;
  return { id: randomUUID(), type, time: now.toISOString(), ...rest };
}

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/**
 * The delivery queue of a user's events: always the same one, so they keep their order. The
 * client id stands in for anonymous connections (user ""), which share no order with each other.
 */
export function webhookPartitionOf(event: Pick<WebhookEvent, 'user' | 'client'>, partitions: number): number {
  return partitionOf(event.user === '' ? `client:${event.client}` : `user:${event.user}`, partitions);
}

/** The job a delivery queue holds: the event's exact body, and when it happened (ms). */
export interface WebhookJob {
  body: string;
  at: number;
  /** Attempts made before the job was last handed back by a stopping worker. */
  attempts?: number;
}
