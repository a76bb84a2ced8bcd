/**
 * The bound on webhook events waiting in Redis: at most about `max` per delivery queue. While
 * the backend is away events pile up there; past the bound, new ones go to the dead-letter
 * list instead (one transaction per batch), so a long outage cannot fill Redis. A queue's
 * waiting count is read at most once a second and counted forward between reads, so several
 * processes adding at once may pass the bound by what they add in that second.
 */
import type { JobsOptions, Queue } from 'bullmq';
import { metrics } from '../observability/metrics.js';
import type { DeadLetters } from './dead-letters.js';
import type { WebhookJob } from './event.js';

/** How long a queue's waiting count is trusted. */
const DEPTH_TTL_MS = 1000;
export const BACKLOG_FULL = 'delivery backlog full (TIDINGS_WEBHOOK_BACKLOG_MAX)';

export type QueuedEvent = { name: string; data: WebhookJob; opts: JobsOptions };

export class DeliveryBacklog {
  private readonly depth: { waiting: number; at: number }[];

  constructor(
    private readonly queues: readonly Queue[],
    private readonly max: number,
    private readonly deadLetters: DeadLetters,
  ) {
    this.depth = queues.map(() => ({ waiting: 0, at: -Infinity }));
  }

  /** Queues what the bound has room for, in order; the rest goes to the dead-letter list. */
  async admit(partition: number, events: readonly QueuedEvent[]): Promise<void> {
    const room = Math.max(0, this.max - (await this.waiting(partition)));
    const kept = events.length <= room ? events : events.slice(0, room);
    if (kept.length > 0) await this.queues[partition]!.addBulk([...kept]);
    this.depth[partition]!.waiting += kept.length;
    const over = events.slice(kept.length);
    if (over.length === 0) return;
    await this.deadLetters.addMany(over.map((e) => e.data.body), 0, BACKLOG_FULL);
    metrics.webhookDeadLettered.inc(over.length);
  }

  private async waiting(partition: number): Promise<number> {
    const depth = this.depth[partition]!;
    const now = performance.now();
    if (now - depth.at > DEPTH_TTL_MS) {
      depth.waiting = await this.queues[partition]!.getWaitingCount();
      depth.at = now;
    }
    return depth.waiting;
  }
}
