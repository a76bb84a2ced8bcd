import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const base = {
  DATABASE_URL: 'postgres://u@127.0.0.1:5432/db',
  REDIS_URL: 'redis://127.0.0.1:6379',
  TIDINGS_TOKEN_SECRET: 'a-secret-of-enough-length',
};

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig('gateway', base);
    expect(config.port).toBe(8000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.logLevel).toBe('info');
    expect(config.ingest.partitions).toBe(8);
    expect(config.history.recoveryMax).toBe(10_000);
    expect(loadConfig('dev', {}).host).toBe('127.0.0.1');
  });

  it('names the missing variable a role needs', () => {
    const err = errorOf(() => loadConfig('gateway', { ...base, DATABASE_URL: undefined }));
    expect(err.message).toBe('DATABASE_URL: required for "tidings gateway"');
    expect(errorOf(() => loadConfig('token', {})).variable).toBe('TIDINGS_TOKEN_SECRET');
    expect(() => loadConfig('dev', {})).not.toThrow();
  });

  it.each([
    ['PORT', 'eighty', 'PORT: must be a number'],
    ['PORT', '70000', 'PORT: must be at most 65535'],
    ['DATABASE_URL', 'mysql://x', 'DATABASE_URL: must be a URL starting with postgres:// or postgresql://'],
    ['REDIS_URL', 'not a url', 'REDIS_URL: must be a URL starting with redis:// or rediss://'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    ['TIDINGS_TOKEN_SECRET', 'short', 'TIDINGS_TOKEN_SECRET: must be at least 16 characters'],
    ['TIDINGS_PARTITIONS', '0', 'TIDINGS_PARTITIONS: must be at least 1'],
    ['TIDINGS_QUEUE_PREFIX', 'a:b', 'TIDINGS_QUEUE_PREFIX: must be 1-64 letters, digits, _ or -'],
  ])('%s=%s is one clear line', (name, value, message) => {
    const err = errorOf(() => loadConfig('gateway', { ...base, [name]: value }));
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('\n');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig('gateway', { ...base, PORT: '' }).port).toBe(8000);
  });

  it('rejects a pong timeout that is not below the ping interval', () => {
    const err = errorOf(() => loadConfig('gateway', { ...base, TIDINGS_PING_INTERVAL_S: '5', TIDINGS_PONG_TIMEOUT_S: '5' }));
    expect(err.variable).toBe('TIDINGS_PONG_TIMEOUT_S');
  });
});
