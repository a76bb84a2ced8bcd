import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redisSeeds } from '../../src/config/index.js';

const base = {
  DATABASE_URL: 'postgres://u@127.0.0.1:5432/db',
  REDIS_URL: 'redis://127.0.0.1:6379',
  TIDINGS_TOKEN_SECRET: 'a-secret-of-enough-length-for-hs256',
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
    expect(config.history.recoveryMax).toBe(100_000);
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
    ['DATABASE_READ_URL', 'mysql://x', 'DATABASE_READ_URL: must be a URL starting with postgres:// or postgresql://'],
    ['DATABASE_READ_URL', 'not a url', 'DATABASE_READ_URL: must be a URL starting with postgres:// or postgresql://'],
    ['REDIS_URL', 'not a url', 'REDIS_URL: must be a URL starting with redis:// or rediss://'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    ['TIDINGS_TOKEN_SECRET', 'short', 'TIDINGS_TOKEN_SECRET: must be at least 32 bytes, e.g. openssl rand -base64 32'],
    ['TIDINGS_PARTITIONS', '0', 'TIDINGS_PARTITIONS: must be at least 1'],
    ['TIDINGS_QUEUE_PREFIX', 'a:b', 'TIDINGS_QUEUE_PREFIX: must be 1-64 letters, digits, _ or -'],
    ['TIDINGS_PG_PARTITION_DAYS', '0', 'TIDINGS_PG_PARTITION_DAYS: must be at least 1'],
    ['TIDINGS_PROXY_CONNECT_URL', 'ftp://backend/connect', 'TIDINGS_PROXY_CONNECT_URL: must be a URL starting with http:// or https://'],
    ['TIDINGS_PROXY_RPC_URL', 'backend/rpc', 'TIDINGS_PROXY_RPC_URL: must be a URL starting with http:// or https://'],
    ['TIDINGS_PROXY_TIMEOUT_MS', '0', 'TIDINGS_PROXY_TIMEOUT_MS: must be at least 10'],
    ['TIDINGS_PROXY_HTTP_HEADERS', 'Cookie,,X', 'TIDINGS_PROXY_HTTP_HEADERS: must be header names separated by commas'],
    ['TIDINGS_PROXY_HTTP_HEADERS', 'Cookie: x', 'TIDINGS_PROXY_HTTP_HEADERS: must be header names separated by commas'],
    ['TIDINGS_PROXY_CONNECT_WITH_TOKEN', 'true', 'TIDINGS_PROXY_CONNECT_WITH_TOKEN: needs TIDINGS_PROXY_CONNECT_URL'],
    ['TIDINGS_PROXY_CONNECT_WITH_TOKEN', 'maybe', 'TIDINGS_PROXY_CONNECT_WITH_TOKEN: must be true or false'],
  ])('%s=%s is one clear line', (name, value, message) => {
    const err = errorOf(() => loadConfig('gateway', { ...base, [name]: value }));
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('\n');
  });

  describe('Redis Cluster mode (issue 13)', () => {
    const cluster = { ...base, TIDINGS_REDIS_CLUSTER: '1' };

    it('is off by default, and takes one or more seed nodes when on', () => {
      expect(loadConfig('gateway', base).redisCluster).toBe(false);
      const config = loadConfig('gateway', { ...cluster, REDIS_URL: 'redis://h1:7000, redis://h2:7001' });
      expect(config.redisCluster).toBe(true);
      expect(redisSeeds(config.redisUrl)).toEqual(['redis://h1:7000', 'redis://h2:7001']);
      expect(redisSeeds(loadConfig('gateway', cluster).redisUrl)).toEqual(['redis://127.0.0.1:6379']);
    });

    it.each([
      [base, 'redis://h1:7000,redis://h2:7001', 'REDIS_URL: lists several nodes, which only Redis Cluster mode takes: set TIDINGS_REDIS_CLUSTER=1, or give one URL'],
      [cluster, 'redis://h1:7000,,redis://h2:7001', 'REDIS_URL: entry 2 is empty (seed nodes are separated by single commas)'],
      [cluster, 'redis://h1:7000,', 'REDIS_URL: entry 2 is empty (seed nodes are separated by single commas)'],
      [cluster, 'redis://h1:7000,http://h2:7001', 'REDIS_URL: entry 2 ("http://h2:7001") must be a URL starting with redis:// or rediss://'],
      [cluster, 'h1:7000', 'REDIS_URL: must be a URL starting with redis:// or rediss://'],
      [{ ...base, TIDINGS_REDIS_CLUSTER: 'maybe' }, 'redis://h1:7000', 'TIDINGS_REDIS_CLUSTER: must be 1 or 0 (true or false)'],
    ])('refuses a bad seed list in one line (%#)', (env, value, message) => {
      const err = errorOf(() => loadConfig('gateway', { ...env, REDIS_URL: value }));
      expect(err.message).toBe(message);
    });
  });

  describe('refuses weak secrets at start (issue 9)', () => {
    const fresh = 'Zx9-qL2r8Vw3nT7yB4mK1pD6sH0cF5gJ'; // 32 characters, 32 bytes

    it.each([
      ['TIDINGS_TOKEN_SECRET', 'x'.repeat(31), 'must be at least 32 bytes, e.g. openssl rand -base64 32'],
      ['TIDINGS_API_KEY', 'k'.repeat(31), 'must be at least 32 characters, e.g. openssl rand -hex 24'],
      // 32 bytes in UTF-8 but 16 characters: enough for an HMAC key, not for a typed key.
      ['TIDINGS_API_KEY', 'é'.repeat(16), 'must be at least 32 characters, e.g. openssl rand -hex 24'],
      ['TIDINGS_TOKEN_SECRET', 'change-me-this-is-not-a-secret', 'is a placeholder (starts with "change-me"): set a random value, e.g. openssl rand -base64 32'],
      ['TIDINGS_TOKEN_SECRET', `change-me-${fresh}`, 'is a placeholder (starts with "change-me"): set a random value, e.g. openssl rand -base64 32'],
      ['TIDINGS_API_KEY', `Change-Me-${fresh}`, 'is a placeholder (starts with "change-me"): set a random value, e.g. openssl rand -hex 24'],
    ])('%s=%s is refused in one line naming it', (name, value, problem) => {
      for (const role of ['gateway', 'dev'] as const) {
        const err = errorOf(() => loadConfig(role, { ...base, [name]: value }));
        expect(err.message).toBe(`${name}: ${problem}`);
        expect(err.message).not.toContain('\n');
      }
    });

    it('counts the token secret in UTF-8 bytes and the API key in characters', () => {
      expect(loadConfig('gateway', { ...base, TIDINGS_TOKEN_SECRET: 'é'.repeat(16) }).tokenSecret).toBe('é'.repeat(16));
      expect(() => loadConfig('gateway', { ...base, TIDINGS_TOKEN_SECRET: 'é'.repeat(15) + 'x' })).toThrow(ConfigError);
      expect(loadConfig('gateway', { ...base, TIDINGS_TOKEN_SECRET: fresh, TIDINGS_API_KEY: fresh }).apiKey).toBe(fresh);
    });

    it('refuses a weak secret for the token command too', () => {
      expect(errorOf(() => loadConfig('token', { TIDINGS_TOKEN_SECRET: 'short' })).variable).toBe('TIDINGS_TOKEN_SECRET');
    });
  });

  it('reads the proxies: per-proxy timeouts over the common one, header names in lower case', () => {
    const config = loadConfig('gateway', {
      ...base,
      TIDINGS_PROXY_CONNECT_URL: 'http://app/connect',
      TIDINGS_PROXY_RPC_URL: 'https://app/rpc',
      TIDINGS_PROXY_RPC_TIMEOUT_MS: '5000',
      TIDINGS_PROXY_HTTP_HEADERS: ' Cookie , Authorization',
    });
    expect(config.proxy.endpoints).toEqual({
      connect: { url: 'http://app/connect', timeoutMs: 1000 },
      rpc: { url: 'https://app/rpc', timeoutMs: 5000 },
    });
    expect(config.proxy.headers).toEqual(['cookie', 'authorization']);
  });

  it('refuses a namespace that asks for a proxy without its URL', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tidings-config-')), 'tidings.json');
    writeFileSync(file, JSON.stringify({ namespaces: { mod: { proxy_publish: true } } }));
    const err = errorOf(() => loadConfig('gateway', { ...base, TIDINGS_CONFIG: file }));
    expect(err.message).toBe('TIDINGS_PROXY_PUBLISH_URL: required: namespace "mod" sets proxy_publish');
  });

  it('lets authors edit their messages under `tidings dev` without a config file, and nowhere else by default', () => {
    expect(loadConfig('dev', {}).namespaces.default.client_edits).toBe('own');
    expect(loadConfig('worker', { DATABASE_URL: 'postgres://h/db', REDIS_URL: 'redis://h' }).namespaces.default.client_edits).toBe('none');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig('gateway', { ...base, PORT: '' }).port).toBe(8000);
  });

  it('rejects a pong timeout that is not below the ping interval', () => {
    const err = errorOf(() => loadConfig('gateway', { ...base, TIDINGS_PING_INTERVAL_S: '5', TIDINGS_PONG_TIMEOUT_S: '5' }));
    expect(err.variable).toBe('TIDINGS_PONG_TIMEOUT_S');
  });
});

describe('webhooks configuration (issue 14)', () => {
  const secret = 'w'.repeat(32);
  const on = { ...base, TIDINGS_WEBHOOK_URL: 'https://app.example.com/hooks', TIDINGS_WEBHOOK_SECRET: secret };

  it('is off without a URL, and on with the lifecycle events and generous limits by default', () => {
    expect(loadConfig('worker', base).webhooks).toBeUndefined();
    const webhooks = loadConfig('worker', on).webhooks!;
    expect([...webhooks.events]).toEqual(['connect', 'disconnect', 'subscribe', 'unsubscribe']);
    expect(webhooks).toMatchObject({ url: on.TIDINGS_WEBHOOK_URL, secret, timeoutMs: 5000, maxAttempts: 5000, maxAgeMs: 86_400_000, partitions: 4 });
  });

  it('takes a selection of events, spaces allowed', () => {
    const webhooks = loadConfig('gateway', { ...on, TIDINGS_WEBHOOK_EVENTS: 'disconnect, connect' }).webhooks!;
    expect([...webhooks.events].sort()).toEqual(['connect', 'disconnect']);
  });

  it('refuses a webhook backlog bound that is not a whole number in range, in one line', () => {
    for (const bad of ['0', '99', '100000001', 'abc', '1.5', '-5', '1e9']) {
      const err = errorOf(() => loadConfig('worker', { ...on, TIDINGS_WEBHOOK_BACKLOG_MAX: bad }));
      expect(err.variable, bad).toBe('TIDINGS_WEBHOOK_BACKLOG_MAX');
      expect(err.message).not.toContain('\n');
    }
    expect(loadConfig('worker', { ...on, TIDINGS_WEBHOOK_BACKLOG_MAX: '' }).webhooks!.backlogMax, 'empty is unset').toBe(100_000);
    expect(loadConfig('worker', { ...on, TIDINGS_WEBHOOK_BACKLOG_MAX: '500' }).webhooks!.backlogMax).toBe(500);
  });

  it('refuses namespace options of the wrong kind: client_edits and webhook_publications', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidings-cfg-'));
    const cases: unknown[] = [{ client_edits: 'maybe' }, { client_edits: 5 }, { client_edits: '' }, { client_edits: null }, { webhook_publications: 'yes' }, { webhook_publications: 1 }];
    cases.forEach((options, i) => {
      const file = join(dir, `ns${i}.json`);
      writeFileSync(file, JSON.stringify({ namespaces: { chat: options } }));
      const err = errorOf(() => loadConfig('worker', { ...base, TIDINGS_CONFIG: file }));
      expect(err.variable, JSON.stringify(options)).toBe('TIDINGS_CONFIG');
      expect(err.message).toMatch(/namespaces\.chat\.(client_edits|webhook_publications)/);
    });
  });

  it('takes "publication" with a namespace that opts in, and refuses the opt-in without the event', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tidings-cfg-')), 'ns.json');
    writeFileSync(file, JSON.stringify({ namespaces: { orders: { webhook_publications: true } } }));
    const webhooks = loadConfig('worker', { ...on, TIDINGS_CONFIG: file, TIDINGS_WEBHOOK_EVENTS: 'publication' }).webhooks!;
    expect([...webhooks.events]).toEqual(['publication']);
    for (const env of [{ ...on, TIDINGS_CONFIG: file }, { ...base, TIDINGS_CONFIG: file }]) {
      const err = errorOf(() => loadConfig('worker', env));
      expect(err.variable).toBe('TIDINGS_CONFIG');
      expect(err.message).toMatch(/^TIDINGS_CONFIG: namespace "orders" sets "webhook_publications" but TIDINGS_WEBHOOK_EVENTS does not select "publication"/);
    }
  });

  it.each([
    [{ ...on, TIDINGS_WEBHOOK_EVENTS: 'connect,close' }, 'TIDINGS_WEBHOOK_EVENTS: "close" is not an event; choose among connect, disconnect, subscribe, unsubscribe, publication'],
    [{ ...on, TIDINGS_WEBHOOK_EVENTS: 'connect,,disconnect' }, 'TIDINGS_WEBHOOK_EVENTS: is a comma-separated list with an empty entry'],
    [{ ...on, TIDINGS_WEBHOOK_EVENTS: 'connect,publication' }, 'TIDINGS_WEBHOOK_EVENTS: "publication" is selected but no namespace sets "webhook_publications": true'],
    [{ ...on, TIDINGS_WEBHOOK_SECRET: undefined }, 'TIDINGS_WEBHOOK_SECRET: required: TIDINGS_WEBHOOK_URL is set (events are signed with it)'],
    [{ ...base, TIDINGS_WEBHOOK_SECRET: secret }, 'TIDINGS_WEBHOOK_URL: required: TIDINGS_WEBHOOK_SECRET is set'],
    [{ ...on, TIDINGS_WEBHOOK_SECRET: 'short' }, 'TIDINGS_WEBHOOK_SECRET: must be at least 32 characters, e.g. openssl rand -hex 32'],
    [{ ...on, TIDINGS_WEBHOOK_SECRET: `change-me-${secret}` }, 'TIDINGS_WEBHOOK_SECRET: is a placeholder (starts with "change-me"): set a random value, e.g. openssl rand -hex 32'],
    [{ ...on, TIDINGS_WEBHOOK_URL: 'ftp://app/hooks' }, 'TIDINGS_WEBHOOK_URL: must be a URL starting with http:// or https://'],
    [{ ...on, TIDINGS_WEBHOOK_MAX_ATTEMPTS: '0' }, 'TIDINGS_WEBHOOK_MAX_ATTEMPTS: must be at least 1'],
  ])('refuses a bad setting in one line (%#)', (env, message) => {
    for (const role of ['gateway', 'worker'] as const) {
      const err = errorOf(() => loadConfig(role, env));
      expect(err.message).toBe(message);
      expect(err.message).not.toContain('\n');
    }
  });
});
