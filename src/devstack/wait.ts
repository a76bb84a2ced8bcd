/** Polling with a deadline: every wait in the devstack ends, and says what did not happen. */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export interface WaitOptions {
  /** What we wait for, for the error message: "redis-server on port 41234 to answer PING". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
}

/**
 * Calls `check` until it returns true. `check` may throw to abort early (a server that exited
 * will never answer); that error propagates unchanged.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 25;
  while (!(await check())) {
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await sleep(interval);
  }
}
