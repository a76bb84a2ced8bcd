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

/**
 * Transient: a failure that another try can fix (a connection lost, a serialization
 * conflict, PostgreSQL starting up). Decided by the innermost error: drizzle wraps the
 * PostgreSQL error in a DrizzleQueryError whose own `code` is absent, and a wrapper must
 * never make a data error (22021 NUL in text, 54000 index row too big) look retryable, or
 * one bad publication would be retried in place forever and stall its whole partition.
 */
export function isTransient(err: unknown): boolean {
  const root = rootCause(err);
  const code = (root as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_PG_CLASSES.includes(code.slice(0, 2));
  }
  // A bug in our own code, or a broken invariant, fails the same way on every try.
  if (root instanceof TypeError || root instanceof RangeError || root instanceof SyntaxError) return false;
  if ((root as Error | undefined)?.name === 'InvariantError') return false;
  // Connection-level failures from pg and ioredis carry no SQLSTATE.
  return true;
}

/** The error at the bottom of a `cause` chain (bounded: a cycle must not hang the worker). */
export function rootCause(err: unknown): unknown {
  let current = err;
  for (let depth = 0; depth < 8; depth++) {
    const cause = (current as { cause?: unknown } | null | undefined)?.cause;
    if (cause === undefined || cause === null || cause === current) return current;
    // Stop at the first error that carries a code of its own: that is the one that happened.
    if (typeof (current as { code?: unknown }).code === 'string') return current;
    current = cause;
  }
  return current;
}

export function backoffMs(attempt: number, minMs = 50, maxMs = 5000): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 16));
  return minMs + Math.random() * (cap - minMs);
}

/**
 * One attempt that may never settle fails as a timeout after `ms` instead, which
 * `retryInPlace` treats as transient: an ioredis pipeline whose connection drops after part
 * of its replies arrived can stay pending forever (ioredis#800, closed as wontfix), and a
 * worker waiting on it would hold up every partition it owns. Only for idempotent steps:
 * the abandoned attempt may still complete in the background.
 */
export function settlesWithin<T>(step: string, ms: number, attempt: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(Object.assign(new Error(`${step}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
    attempt().then(resolve, reject).finally(() => clearTimeout(timer));
  });
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
      // The root cause: drizzle's wrapper carries every parameter of the query (whole batches).
      opts.log.warn({ err: rootCause(err), step, attempt, delayMs: Math.round(delay) }, 'transient failure, retrying in place');
      opts.onRetry?.();
      await sleep(delay, undefined, { signal: opts.signal }).catch(() => {});
    }
  }
}
