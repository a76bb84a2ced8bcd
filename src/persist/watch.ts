/**
 * A watch on the partition consumers this worker runs. A BullMQ worker can stop taking jobs
 * without a word after a Redis outage. The fault suite caught one: a consumer resumed when
 * its partition changed hands took nothing while 139 jobs waited and none was active
 * anywhere, for over a minute, its lease renewed all along, with no error and no event. Only
 * the queue showed it.
 *
 * So every interval, each partition this worker consumes that started no job since the last
 * look is checked: jobs waiting and none active, at two looks in a row, means its consumer is
 * wedged, and `restart` replaces it (a new BullMQ worker: a new blocking connection, a new
 * main loop). A partition that starts jobs costs nothing here; an idle one costs one round
 * trip per interval.
 */
import type { Queue } from 'bullmq';
import type { Logger } from '../observability/logger.js';

export interface ConsumerWatchOptions {
  queues: readonly Queue[];
  /** The partitions this worker consumes now. */
  owned(): readonly number[];
  intervalMs: number;
  /** Replaces the partition's consumer; `waiting`: the jobs it left waiting. */
  restart(partition: number, waiting: number): void;
  log: Logger;
}

export class ConsumerWatch {
  private readonly progressed = new Set<number>();
  private readonly suspect = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(private readonly opts: ConsumerWatchOptions) {}

  /** The partition's consumer started a job. */
  started(partition: number): void {
    this.progressed.add(partition);
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look at every partition consumed (one at a time: a slow Redis must not stack them up). */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const partition of this.opts.owned()) await this.look(partition);
    } catch (err) {
      this.opts.log.debug({ err }, 'could not check the partition consumers; next interval');
    } finally {
      this.checking = false;
    }
  }

  private async look(partition: number): Promise<void> {
    if (this.progressed.delete(partition)) {
      this.suspect.delete(partition);
      return;
    }
    const counts = await this.opts.queues[partition]!.getJobCounts('waiting', 'prioritized', 'active');
    const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
    // Started something since the request went out: it is taking jobs after all.
    if (waiting === 0 || (counts.active ?? 0) > 0 || this.progressed.has(partition)) {
      this.suspect.delete(partition);
      return;
    }
    if (!this.suspect.has(partition)) {
      this.suspect.add(partition);
      return;
    }
    this.suspect.delete(partition);
    this.opts.restart(partition, waiting);
  }
}
