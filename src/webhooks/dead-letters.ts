/**
 * The dead-letter list: webhook events given up on after `maxAttempts` attempts or
 * `maxAgeMs` of age, newest first, kept to the last DEAD_LETTER_MAX (an outage of the backend
 * must not grow Redis without bound). Each entry keeps the event exactly as it would have been
 * sent, so an operator can replay it (same id: the backend dedupes).
 */
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';
import type { WebhookEvent } from './event.js';

/** Entries the list keeps; older ones are trimmed (and were counted by the metric). */
export const DEAD_LETTER_MAX = 10_000;

export interface DeadLetter {
  event: WebhookEvent;
  attempts: number;
  /** Why the last attempt failed. */
  error: string;
  /** When it was given up on (RFC 3339). */
  dead_at: string;
}

export class DeadLetters {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  add(body: string, attempts: number, error: string): Promise<void> {
    return this.addMany([body], attempts, error);
  }

  /** Several events given up on for one reason: one transaction. */
  async addMany(bodies: readonly string[], attempts: number, error: string): Promise<void> {
    const at = new Date().toISOString();
    const entries = bodies.map((body) => `{"event":${body},"attempts":${attempts},"error":${JSON.stringify(error)},"dead_at":"${at}"}`);
    const key = this.keys.webhookDeadLetters;
    const results = await this.redis.multi().lpush(key, ...entries).ltrim(key, 0, DEAD_LETTER_MAX - 1).exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
  }

  /** The newest `limit` entries and how many the list holds. */
  async read(limit: number): Promise<{ events: DeadLetter[]; total: number }> {
    const key = this.keys.webhookDeadLetters;
    const [entries, total] = await Promise.all([this.redis.lrange(key, 0, limit - 1), this.redis.llen(key)]);
    return { events: entries.map((e) => JSON.parse(e) as DeadLetter), total };
  }

  count(): Promise<number> {
    return this.redis.llen(this.keys.webhookDeadLetters);
  }
}
