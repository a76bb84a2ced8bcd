/** The demo page's document and its flag, without a browser (test/e2e drives the page itself). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { registerDemo } from '../../src/http/demo/index.js';
import { renderDemoPage, SDK_PATH } from '../../src/http/demo/page.js';
import type { HttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEMO_SCRIPT } from '../../src/http/demo/script.js';

const env = { TIDINGS_TOKEN_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://h/db', REDIS_URL: 'redis://h' };
const local = { ...env, HOST: '127.0.0.1' };

describe('demo page', () => {
  const page = renderDemoPage('5.8.0');

  it('loads nothing from elsewhere: only the SDK from this gateway', () => {
    const urls = [...page.html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    expect(urls).toEqual(['data:,', '#chat-input', '/', `${SDK_PATH}?v=5.8.0`]);
    expect(page.html).not.toMatch(/@import|url\(|https?:\/\/(?!127\.0\.0\.1)/);
    expect(page.csp).toContain("default-src 'none'");
    expect(page.csp).toContain("connect-src 'self'");
  });

  it('allows its inline script and style by hash', () => {
    for (const [tag, directive] of [
      ['script', 'script-src'],
      ['style', 'style-src'],
    ] as const) {
      const inline = [...page.html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map(
        (m) => m[1]!,
      );
      expect(inline).toHaveLength(1);
      const hash = createHash('sha256').update(inline[0]!, 'utf8').digest('base64');
      expect(page.csp).toMatch(new RegExp(`${directive} [^;]*'sha256-${hash.replace(/[+/]/g, '\\$&')}'`));
    }
  });

  it('has a script that parses and survives embedding', () => {
    expect(() => new Function(DEMO_SCRIPT)).not.toThrow();
    expect(DEMO_SCRIPT).not.toMatch(/<\/script/i);
  });
});

describe('TIDINGS_DEMO', () => {
  it('is off on a gateway unless asked for, and on for `tidings dev`', () => {
    expect(loadConfig('gateway', env).demo).toBe(false);
    expect(loadConfig('gateway', { ...env, TIDINGS_DEMO: 'true' }).demo).toBe(true);
    expect(loadConfig('dev', {}).demo).toBe(true);
    expect(loadConfig('dev', { TIDINGS_DEMO: 'false' }).demo).toBe(false);
    // Demo tokens have always meant "the demo page fetches its own": they imply the page.
    expect(loadConfig('gateway', { ...local, TIDINGS_DEMO_TOKENS: 'true' }).demo).toBe(true);
  });

  it('names itself when it is not a boolean, or contradicts TIDINGS_DEMO_TOKENS', () => {
    expect(() => loadConfig('gateway', { ...env, TIDINGS_DEMO: 'maybe' })).toThrow(
      /^TIDINGS_DEMO: must be true or false$/,
    );
    expect(() =>
      loadConfig('gateway', { ...local, TIDINGS_DEMO: 'false', TIDINGS_DEMO_TOKENS: 'true' }),
    ).toThrow(/^TIDINGS_DEMO_TOKENS: .*TIDINGS_DEMO=false/);
  });
});

describe('TIDINGS_DEMO_TOKENS', () => {
  it('is off unless asked for', () => {
    expect(loadConfig('gateway', local).demoTokens).toBe(false);
    expect(loadConfig('gateway', { ...local, TIDINGS_DEMO_TOKENS: 'true' }).demoTokens).toBe(true);
    expect(loadConfig('gateway', { ...local, TIDINGS_DEMO_TOKENS: '0' }).demoTokens).toBe(false);
    expect(loadConfig('dev', {}).demoTokens).toBe(true);
  });

  it('is refused at start, in one line, when the server binds a non-loopback address', () => {
    for (const HOST of [undefined, '0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      const err = (() => {
        try {
          loadConfig('gateway', { ...env, HOST, TIDINGS_DEMO_TOKENS: 'true' });
        } catch (e) {
          return e;
        }
      })();
      expect(err, String(HOST)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toBe(
        `TIDINGS_DEMO_TOKENS: hands out tokens to anyone, so it needs HOST on loopback (127.0.0.1, ::1, localhost), not ${HOST ?? '0.0.0.0'}`,
      );
    }
    expect(() => loadConfig('dev', { HOST: '0.0.0.0', TIDINGS_DEMO_TOKENS: 'true' })).toThrow(
      /^TIDINGS_DEMO_TOKENS: /,
    );
    for (const HOST of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      'localhost',
      'LOCALHOST',
      '::ffff:127.0.0.1',
    ]) {
      expect(loadConfig('gateway', { ...env, HOST, TIDINGS_DEMO_TOKENS: 'true' }).demoTokens, HOST).toBe(
        true,
      );
    }
  });

  it('is quietly off (dev warns) when `tidings dev` binds a non-loopback address without asking for it', () => {
    const config = loadConfig('dev', { HOST: '0.0.0.0' });
    expect([config.demo, config.demoTokens]).toEqual([true, false]);
  });

  it('cannot be switched on past the config check either: registerDemo refuses a non-loopback host', () => {
    const routes: string[] = [];
    const http = { route: (key: string) => routes.push(key) } as unknown as HttpServer;
    const opts = { tokenSecret: 'x'.repeat(32), demoTokens: true, log: createLogger('silent') };
    expect(() => registerDemo(http, { ...opts, host: '0.0.0.0' })).toThrow(/loopback/);
    expect(routes).not.toContain('GET /demo/token');
    registerDemo(http, { ...opts, host: '127.0.0.1' });
    expect(routes).toContain('GET /demo/token');
  });

  it('names itself when it is not a boolean', () => {
    expect(() => loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: 'maybe' })).toThrow(ConfigError);
    expect(() => loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: 'maybe' })).toThrow(
      /TIDINGS_DEMO_TOKENS/,
    );
  });
});
