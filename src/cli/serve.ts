/**
 * Shared by the long-running commands: start, then wait for SIGTERM / SIGINT and close in
 * order. A second signal during shutdown exits at once.
 */
import type { Logger } from '../observability/logger.js';

export async function serveUntilSignal(log: Logger, close: () => Promise<void>): Promise<number> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'shutting down');
  const force = (): never => {
    log.warn('second signal: exiting without finishing shutdown');
    process.exit(1);
  };
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  await close();
  log.info('stopped');
  return 0;
}
