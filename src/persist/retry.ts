/**
 * Retry-in-place for the persist worker. A job must not go back to the queue on a transient
 * failure (BullMQ would run the next job first and break per-channel order), so the worker
 * keeps retrying the same step with full-jitter backoff until it works, the error turns out
 * permanent, or the worker is shutting down.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';

const TRANSIENT_PG_CLASSES = ['08', '53', '57', '58', '40', 'XX'];
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** PostgreSQL data errors (bad input, constraint) will fail the same way forever. */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') {
    if (TRANSIENT_NODE_CODES.has(e.code)) return true;
    if (/^[0-9A-Z]{5}$/.test(e.code)) return TRANSIENT_PG_CLASSES.includes(e.code.slice(0, 2));
  }
  // A bug in our own code, or a broken invariant, fails the same way on every try.
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  if ((err as Error)?.name === 'InvariantError') return false;
  // Connection-level failures from pg and ioredis carry no SQLSTATE.
  return true;
}

export function backoffMs(attempt: number, minMs = 50, maxMs = 5000): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 16));
  return minMs + Math.random() * (cap - minMs);
}

export class ShuttingDown extends Error {
  override name = 'ShuttingDown';
}

export async function retryInPlace<T>(
  step: string,
  fn: () => Promise<T>,
  opts: { log: Logger; signal: AbortSignal; onRetry?: () => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (opts.signal.aborted) throw new ShuttingDown(`${step}: stopped while retrying`);
      const delay = backoffMs(attempt);
      opts.log.warn({ err, step, attempt, delayMs: Math.round(delay) }, 'transient failure, retrying in place');
      opts.onRetry?.();
      await sleep(delay, undefined, { signal: opts.signal }).catch(() => {});
    }
  }
}
