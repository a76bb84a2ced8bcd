import { startWorker } from '../app/worker.js';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import type { Command } from './command.js';
import { serveUntilSignal } from './serve.js';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a persistence worker (BullMQ consumer; run as many as you like)',
  usage: `Usage: tidings worker

Environment: DATABASE_URL, REDIS_URL (required); TIDINGS_PARTITIONS, TIDINGS_WORKER_LOCK_MS,
TIDINGS_HISTORY_CACHE_SIZE, TIDINGS_HISTORY_CACHE_TTL_S, TIDINGS_NODE_NAME, LOG_LEVEL.`,
  options: {},
  async run() {
    const config = loadConfig('worker');
    const log = createLogger(config.logLevel, { node: config.nodeName, role: 'worker' });
    const worker = await startWorker(config, log);
    return serveUntilSignal(log, worker.close);
  },
};
