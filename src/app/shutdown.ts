/**
 * One teardown funnel (STYLE.md habit 6): steps run in the given order, a failing step is
 * logged and the rest still run, and calling close() again returns the same promise. A step
 * that has not finished after STEP_LIMIT_MS is logged and left behind, so a process always
 * finishes closing: the later steps (closing its Redis and PostgreSQL connections) are what
 * fail whatever a stuck step still waits on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';

export const STEP_LIMIT_MS = 30_000;

export type ShutdownStep = [name: string, run: () => unknown];

export function shutdownSteps(log: Logger, steps: ShutdownStep[], limitMs = STEP_LIMIT_MS): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      for (const [name, run] of steps) {
        const done = Promise.resolve()
          .then(run)
          .then(
            () => true,
            (err: unknown) => {
              log.warn({ err, step: name }, 'shutdown step failed');
              return true;
            },
          );
        if (!(await Promise.race([done, sleep(limitMs, false, { ref: false })]))) {
          log.warn({ step: name, waitedMs: limitMs }, 'shutdown step did not finish; going on');
        }
      }
    })();
    return closing;
  };
}
