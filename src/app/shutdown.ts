/**
 * One teardown funnel (STYLE.md habit 6): steps run in the given order, a failing step is
 * logged and the rest still run, and calling close() again returns the same promise.
 */
import type { Logger } from '../observability/logger.js';

export type ShutdownStep = [name: string, run: () => unknown];

export function shutdownSteps(log: Logger, steps: ShutdownStep[]): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      for (const [name, run] of steps) {
        try {
          await run();
        } catch (err) {
          log.warn({ err, step: name }, 'shutdown step failed');
        }
      }
    })();
    return closing;
  };
}
