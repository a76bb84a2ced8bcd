/**
 * The admin console's pieces without servers (issue 16): session cookies (signature, expiry,
 * CSRF token), the failed-login budget, the escaping template, and the settings' checks.
 * test/integration/admin.test.ts covers them over HTTP.
 */
import { describe, expect, it } from 'vitest';
import { html, href } from '../../src/admin/html.js';
import { LoginLimiter, PER_ADDRESS, GLOBAL, WINDOW_MS } from '../../src/admin/login-limit.js';
import { SessionKeys } from '../../src/admin/session.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const PASSWORD = 'admin-password-0123456789';
const SECRET = 'test-secret-0123456789abcdef-0123456789';

function keys(now: () => number, password = PASSWORD, secret = SECRET) {
  return new SessionKeys({ password, secret, ttlS: 600, now });
}

describe('admin sessions', () => {
  it('accepts its own cookie until it expires, and not a second longer', () => {
    let now = 1_000_000_000_000;
    const k = keys(() => now);
    const { cookie, session } = k.issue();
    expect(k.verify(cookie)).toEqual(session);
    now += 599_000;
    expect(k.verify(cookie)).toBeDefined();
    now += 1000;
    expect(k.verify(cookie)).toBeUndefined();
  });

  it('refuses cookies signed under another password or secret, or changed in any part', () => {
    const now = () => 1_000_000_000_000;
    const { cookie } = keys(now).issue();
    expect(keys(now, 'another-password-0123456').verify(cookie)).toBeUndefined();
    expect(keys(now, PASSWORD, `${SECRET}x`).verify(cookie)).toBeUndefined();
    for (let i = 0; i < cookie.length; i++) {
      const c = cookie[i] === 'A' ? 'B' : 'A';
      const changed = cookie.slice(0, i) + c + cookie.slice(i + 1);
      if (changed !== cookie) expect(keys(now).verify(changed), `byte ${i}`).toBeUndefined();
    }
    for (const junk of [undefined, '', '.', 'a.b.c', `${cookie}.x`, `${cookie}x`, 'x'.repeat(10_000)]) {
      expect(keys(now).verify(junk)).toBeUndefined();
    }
  });

  it('ties the CSRF token to the session', () => {
    const k = keys(() => 1_000_000_000_000);
    const a = k.issue().session;
    const b = k.issue().session;
    expect(k.csrfMatches(a, k.csrfToken(a))).toBe(true);
    expect(k.csrfMatches(a, k.csrfToken(b))).toBe(false);
    expect(k.csrfMatches(a, undefined)).toBe(false);
    expect(k.csrfMatches(a, '')).toBe(false);
  });

  it('compares passwords of any length', () => {
    const k = keys(Date.now);
    expect(k.passwordMatches(PASSWORD)).toBe(true);
    expect(k.passwordMatches(`${PASSWORD} `)).toBe(false);
    expect(k.passwordMatches('')).toBe(false);
    expect(k.passwordMatches('x'.repeat(100_000))).toBe(false);
  });
});

describe('failed-login budget', () => {
  it('stops an address after PER_ADDRESS failures until the window ends', () => {
    let now = 0;
    const limiter = new LoginLimiter(() => now);
    for (let i = 0; i < PER_ADDRESS; i++) {
      expect(limiter.retryAfterMs('a')).toBe(0);
      limiter.failed('a');
    }
    expect(limiter.retryAfterMs('a')).toBe(WINDOW_MS);
    expect(limiter.retryAfterMs('b')).toBe(0);
    now += WINDOW_MS;
    expect(limiter.retryAfterMs('a')).toBe(0);
  });

  it('stops everyone after GLOBAL failures from many addresses', () => {
    const limiter = new LoginLimiter(() => 0);
    for (let i = 0; i < GLOBAL; i++) limiter.failed(`10.0.0.${i}`);
    expect(limiter.retryAfterMs('192.168.1.1')).toBeGreaterThan(0);
  });
});

describe('admin html', () => {
  it('escapes every interpolated value, arrays too, and keeps nested html as is', () => {
    const evil = `<script>alert("x")</script>&'`;
    expect(html`<p title="${evil}">${evil}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>',
    );
    expect(html`<ul>${[evil, html`<li>ok</li>`]}</ul>`.text).toBe(
      '<ul>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;<li>ok</li></ul>',
    );
    expect(html`${undefined}${null}${false}${0}`.text).toBe('0');
  });

  it('builds links with encoded query values', () => {
    expect(href('/admin/channel', { name: 'a&b=c"<', before: 3, empty: '' })).toBe(
      '/admin/channel?name=a%26b%3Dc%22%3C&before=3',
    );
  });
});

describe('admin settings', () => {
  const base = { DATABASE_URL: 'postgres://x/y', REDIS_URL: 'redis://x', TIDINGS_TOKEN_SECRET: SECRET };

  it('is off without a password, on with one', () => {
    expect(loadConfig('gateway', base).admin).toBeUndefined();
    expect(loadConfig('gateway', { ...base, TIDINGS_ADMIN_PASSWORD: '' }).admin).toBeUndefined();
    expect(loadConfig('gateway', { ...base, TIDINGS_ADMIN_PASSWORD: PASSWORD }).admin).toEqual({
      password: PASSWORD,
      sessionTtlS: 28800,
      secureCookie: false,
    });
  });

  it('refuses weak or oversized passwords and bad session settings, naming the variable', () => {
    const bad: Record<string, string>[] = [
      { TIDINGS_ADMIN_PASSWORD: 'short' },
      { TIDINGS_ADMIN_PASSWORD: 'change-me-change-me-change-me' },
      { TIDINGS_ADMIN_PASSWORD: 'x'.repeat(1025) },
      { TIDINGS_ADMIN_PASSWORD: PASSWORD, TIDINGS_ADMIN_SESSION_TTL_S: '10' },
      { TIDINGS_ADMIN_PASSWORD: PASSWORD, TIDINGS_ADMIN_SECURE_COOKIE: 'maybe' },
    ];
    for (const env of bad) {
      const name = Object.keys(env).at(-1)!;
      expect(() => loadConfig('gateway', { ...base, ...env }), name).toThrow(ConfigError);
      expect(() => loadConfig('gateway', { ...base, ...env })).toThrow(name);
    }
  });
});
