import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls until `check` returns a truthy value; fails with `what` (what did not happen). A
 * function for `what` is called at the timeout, so the message can tell how far it got.
 */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => T | Promise<T>,
  { timeoutMs = 20_000, intervalMs = 25 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const said = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${said}${last ? ` (last error: ${String(last)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Awaits `promise`, but fails with `what` (what did not happen) after `timeoutMs`. A
 * function for `what` is called at the timeout, so the message can tell how far it got.
 */
export async function within<T>(what: string | (() => string), promise: Promise<T>, timeoutMs = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const said = typeof what === 'function' ? what() : what;
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${said}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
