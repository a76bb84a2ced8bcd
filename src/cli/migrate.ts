import { loadConfig } from '../config/index.js';
import { runMigrations } from '../db/migrate.js';
import { createLogger } from '../observability/logger.js';
import { FatalError, type Command } from './command.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply the database migrations (idempotent; safe when several run at once)',
  usage: 'Usage: tidings migrate\n\nEnvironment: DATABASE_URL (required), LOG_LEVEL',
  options: {},
  async run() {
    const config = loadConfig('migrate');
    const log = createLogger(config.logLevel, { node: config.nodeName }).child({ component: 'migrate' });
    try {
      const result = await runMigrations(config.databaseUrl);
      log.info(result, result.applied > 0 ? 'migrations applied' : 'schema already up to date');
    } catch (err) {
      throw new FatalError(`migration failed: ${(err as Error).message}`);
    }
  },
};
