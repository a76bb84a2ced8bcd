/**
 * What durable lifecycle webhooks are configured with (issue 14; ./index.ts builds it from the
 * environment, src/webhooks/ uses it). Kept apart so both import it without importing each other.
 */

/** Every event type a backend may ask for (TIDINGS_WEBHOOK_EVENTS). */
export const WEBHOOK_EVENT_TYPES = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'publication'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The default selection: the lifecycle events; `publication` is opt-in per namespace as well. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['connect', 'disconnect', 'subscribe', 'unsubscribe'];

export interface WebhookSettings {
  url: string;
  /** HMAC-SHA256 key of `X-Tidings-Signature`. */
  secret: string;
  events: ReadonlySet<WebhookEventType>;
  /** One POST slower than this is a failed attempt. */
  timeoutMs: number;
  /** Attempts of one event before it goes to the dead-letter list. */
  maxAttempts: number;
  /** An event older than this (since it happened) goes to the dead-letter list instead of another attempt. */
  maxAgeMs: number;
  /** Longest wait between two attempts (capped exponential backoff, full jitter). */
  backoffMaxMs: number;
  /** Delivery queues; a user's events always go to the same one, so they keep their order. */
  partitions: number;
  /** Events a delivery queue holds waiting; past it new ones are dead-lettered at once (src/webhooks/backlog.ts). */
  backlogMax: number;
}

/** The event types of a TIDINGS_WEBHOOK_EVENTS value, or the one-line problem with it. */
export function parseWebhookEvents(raw: string): { events: WebhookEventType[] } | { problem: string } {
  const names = raw.split(',').map((name) => name.trim());
  const known: readonly string[] = WEBHOOK_EVENT_TYPES;
  for (const name of names) {
    if (name === '') return { problem: 'is a comma-separated list with an empty entry' };
    if (!known.includes(name)) return { problem: `"${name}" is not an event; choose among ${WEBHOOK_EVENT_TYPES.join(', ')}` };
  }
  return { events: names as WebhookEventType[] };
}
