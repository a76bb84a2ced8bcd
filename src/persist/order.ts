/**
 * Waiting for a job's turn. PostgreSQL refuses to commit a job before the earlier jobs of
 * its gateway stream (src/db/repos/streams.ts). Normally the earlier job is already
 * committed, since a gateway adds jobs one after another and a partition runs one job at
 * a time. After Redis lost its data, though, the earlier job may still be running in
 * another worker (BullMQ forgot it was active), or it may be gone for good. So the worker
 * asks again every few milliseconds for a short while, then commits anyway: the missing
 * job, if it ever runs, finds its turn passed and is never committed, so order holds
 * either way, and a lost job stalls its partition for at most ORDER_GAP_WAIT_MS.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OrderGap, type JobOrder } from '../db/repos/streams.js';
import { metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { ShuttingDown } from './retry.js';

/** Well past a commit's duration, well below the gateway's publish timeout (4 s). */
export const ORDER_GAP_WAIT_MS = 1000;
const POLL_MS = 20;

/** Runs `commit` until the job's turn comes or the wait is over (then with `skipGap`). */
export async function inTurn<T>(
  order: JobOrder | undefined,
  commit: (order: JobOrder | undefined) => Promise<T>,
  opts: { log: Logger; signal: AbortSignal; waitMs?: number },
): Promise<T> {
  if (!order) return commit(undefined);
  const deadline = performance.now() + (opts.waitMs ?? ORDER_GAP_WAIT_MS);
  for (;;) {
    const skipGap = order.skipGap || performance.now() >= deadline;
    try {
      const result = await commit({ ...order, skipGap });
      if (skipGap && !order.skipGap) metrics.orderGapSkips.inc();
      return result;
    } catch (err) {
      if (!(err instanceof OrderGap)) throw err;
      if (opts.signal.aborted) throw new ShuttingDown('stopped while waiting for an earlier job');
      opts.log.debug({ stream: order.stream, seq: err.seq, last: err.last }, 'waiting for an earlier job of the stream');
      await sleep(POLL_MS);
    }
  }
}
