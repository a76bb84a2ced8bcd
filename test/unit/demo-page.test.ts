/** The demo page's document and its flag, without a browser (test/e2e drives the page itself). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { renderDemoPage, SDK_PATH } from '../../src/http/demo/page.js';
import { DEMO_SCRIPT } from '../../src/http/demo/script.js';

const env = { TIDINGS_TOKEN_SECRET: 'x'.repeat(16), DATABASE_URL: 'postgres://h/db', REDIS_URL: 'redis://h' };

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

describe('TIDINGS_DEMO_TOKENS', () => {
  it('is off unless asked for', () => {
    expect(loadConfig('gateway', env).demoTokens).toBe(false);
    expect(loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: 'true' }).demoTokens).toBe(true);
    expect(loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: '0' }).demoTokens).toBe(false);
  });

  it('names itself when it is not a boolean', () => {
    expect(() => loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: 'maybe' })).toThrow(ConfigError);
    expect(() => loadConfig('gateway', { ...env, TIDINGS_DEMO_TOKENS: 'maybe' })).toThrow(
      /TIDINGS_DEMO_TOKENS/,
    );
  });
});
