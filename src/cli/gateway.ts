import { startGateway } from '../app/gateway.js';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import type { Command } from './command.js';
import { serveUntilSignal } from './serve.js';

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'run a WebSocket gateway + HTTP API (stateless; run as many as you like)',
  usage: `Usage: tidings gateway

Environment: DATABASE_URL, REDIS_URL, TIDINGS_TOKEN_SECRET (required); PORT (8000), HOST (0.0.0.0),
TIDINGS_API_KEY, TIDINGS_NODE_NAME, LOG_LEVEL and the TIDINGS_* tuning variables in the README.`,
  options: {},
  async run() {
    const config = loadConfig('gateway');
    const log = createLogger(config.logLevel, { node: config.nodeName, role: 'gateway' });
    const gateway = await startGateway(config, log);
    return serveUntilSignal(log, gateway.close);
  },
};
