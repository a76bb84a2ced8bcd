/**
 * What a partition queue holds, read from BullMQ (issue 16: the admin console and API
 * `queue_stats` / `ingest_failed`). Failed jobs are the ingest dead-letter set: a job fails
 * only when it can never commit (src/persist/guard.ts: malformed data, a turn passed), and the
 * queue keeps the last 10,000 (`removeOnFail`) for someone to look at. Reads only: nothing
 * here retries or removes a job, since a failed job's publishers were told it failed, and
 * committing it now would break guarantee 1.
 */
import type { Job, Queue } from 'bullmq';

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  /** Age of the oldest waiting job, in ms (0 when none waits): how far behind the partition is. */
  oldest_waiting_ms: number;
}

export interface FailedJob {
  id: string;
  /** BullMQ's `failedReason`, cut to FAILED_REASON_CHARS. */
  reason: string;
  failed_at: string | null;
  added_at: string;
  publications: number;
  /** Up to FAILED_CHANNELS distinct channels of its publications. */
  channels: string[];
}

const FAILED_REASON_CHARS = 500;
const FAILED_CHANNELS = 5;

export async function queueCounts(queue: Queue, now = Date.now()): Promise<QueueCounts> {
  const [counts, oldest] = await Promise.all([
    queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
    // The wait list takes new jobs at its head; ascending order starts from the oldest.
    queue.getJobs(['wait'], 0, 0, true),
  ]);
  const first = oldest[0];
  return {
    waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    active: counts.active ?? 0,
    delayed: counts.delayed ?? 0,
    failed: counts.failed ?? 0,
    oldest_waiting_ms: first ? Math.max(0, now - first.timestamp) : 0,
  };
}

/** Failed jobs, newest first, from `start` (0-based) for `count`. */
export async function failedJobs(queue: Queue, start: number, count: number): Promise<FailedJob[]> {
  const jobs = await queue.getFailed(start, start + count - 1);
  return jobs.filter((job): job is Job => Boolean(job)).map(describeFailed);
}

function describeFailed(job: Job): FailedJob {
  const pubs = publicationsOf(job.data);
  return {
    id: String(job.id ?? ''),
    reason: String(job.failedReason ?? '').slice(0, FAILED_REASON_CHARS),
    failed_at: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    added_at: new Date(job.timestamp).toISOString(),
    publications: pubs.length,
    channels: [...new Set(pubs.map((p) => p.channel))].slice(0, FAILED_CHANNELS),
  };
}

/**
 * The publications of a job of any kind (a batch `p`, a bundle's parts `b[].p`, a history
 * removal `channel`), read defensively: a failed job is often one whose data was not what it
 * should be.
 */
function publicationsOf(data: unknown): { channel: string }[] {
  if (typeof data !== 'object' || data === null) return [];
  const d = data as { p?: unknown; b?: unknown; channel?: unknown };
  if (Array.isArray(d.p)) return d.p.filter(hasChannel);
  if (Array.isArray(d.b)) return d.b.flatMap((part: unknown) => publicationsOf(part));
  if (typeof d.channel === 'string') return [{ channel: d.channel }];
  return [];
}

function hasChannel(value: unknown): value is { channel: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { channel?: unknown }).channel === 'string'
  );
}
