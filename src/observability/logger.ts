/**
 * pino logger factory. JSON lines by default (what log shippers want); readable colours when
 * stdout is a terminal. Components take a child: `logger.child({ component: 'gateway' })`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Where a secret may sit in a log object; pino replaces it before anything is written. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'secret',
  '*.secret',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
];

export function createLogger(level: LevelWithSilent, base: Record<string, unknown> = {}): Logger {
  const pretty = process.stdout.isTTY && process.env.NODE_ENV !== 'production';
  return pino({
    level,
    base: { ...base },
    // Tokens and API keys must never reach logs, whatever a caller passes in.
    redact: {
      paths: REDACT_PATHS,
      censor: '[redacted]',
    },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
