/**
 * The admin console over HTTP (issue 16), against real Redis and PostgreSQL: off by default,
 * sign-in and its failure budget, the session cookie against tampering, CSRF and origin
 * checks on every post, bounded input, escaped output, and the live stream.
 * test/e2e/admin.test.ts drives the same pages in Chromium; test/unit/admin.test.ts covers
 * expiry with a clock of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { API_KEY, call } from '../helpers/api.js';
import { ADMIN_PASSWORD, adminFetch, csrfOf, sessionOf, signIn } from '../helpers/admin.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/db/client.js';
import { searchQuery } from '../../src/db/repos/channel-search.js';

const ADMIN_ENV = { TIDINGS_ADMIN_PASSWORD: ADMIN_PASSWORD, TIDINGS_API_KEY: API_KEY };

describe('admin console', () => {
  const stack = new TestStack();
  let gw: RunningGateway;
  let cookie: string;

  beforeAll(async () => {
    gw = await stack.gateway(ADMIN_ENV);
    await stack.worker({ TIDINGS_NODE_NAME: 'worker-admin-test' });
    cookie = await signIn(gw.port);
  });
  afterAll(() => stack.close());

  async function csrf(): Promise<string> {
    return csrfOf((await adminFetch(gw.port, '/admin/nodes', { cookie })).text);
  }

  it('is off unless TIDINGS_ADMIN_PASSWORD is set: every /admin path is 404', async () => {
    const off = await stack.gateway({ TIDINGS_API_KEY: API_KEY });
    for (const path of [
      '/admin',
      '/admin/login',
      '/admin/nodes',
      '/admin/static/admin.js',
      '/admin/live?channel=a',
    ]) {
      expect((await adminFetch(off.port, path)).status, path).toBe(404);
    }
    expect((await adminFetch(off.port, '/admin/login', { form: { password: ADMIN_PASSWORD } })).status).toBe(
      404,
    );
  });

  it('sends a visitor without a session to the login page', async () => {
    for (const path of ['/admin', '/admin/nodes', '/admin/channel?name=x']) {
      const res = await adminFetch(gw.port, path);
      expect(res.status, path).toBe(303);
    }
    expect((await adminFetch(gw.port, '/admin/nodes')).headers.get('location')).toBe('/admin/login');
    const login = await adminFetch(gw.port, '/admin/login');
    expect(login.status).toBe(200);
    expect(login.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(login.headers.get('x-frame-options')).toBe('DENY');
  });

  it('signs in with the password into an HttpOnly, SameSite=Strict cookie, and refuses the rest', async () => {
    const ok = await adminFetch(gw.port, '/admin/login', { form: { password: ADMIN_PASSWORD } });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('set-cookie')).toMatch(
      /^tidings_admin=[^;]+; Path=\/admin; Max-Age=28800; HttpOnly; SameSite=Strict$/,
    );
    expect((await adminFetch(gw.port, '/admin/login', { form: { password: '' } })).status).toBe(400);
    expect((await adminFetch(gw.port, '/admin/login', { form: {} })).status).toBe(400);
    expect(
      (await adminFetch(gw.port, '/admin/login', { form: { password: 'x'.repeat(300_000) } })).status,
    ).toBe(413);
    expect(
      (
        await adminFetch(gw.port, '/admin/login', {
          body: JSON.stringify({ password: ADMIN_PASSWORD }),
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(415);
    const crossSite = await adminFetch(gw.port, '/admin/login', {
      form: { password: ADMIN_PASSWORD },
      headers: { origin: 'http://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    expect(sessionOf(crossSite)).toBeUndefined();
  });

  it('rations failed sign-ins: after 5 wrong passwords even the right one waits', async () => {
    const fresh = await stack.gateway(ADMIN_ENV);
    const wrong = await adminFetch(fresh.port, '/admin/login', {
      form: { password: 'wrong-password-000000' },
    });
    expect(wrong.status).toBe(401);
    expect(sessionOf(wrong)).toBeUndefined();
    const oversized = await adminFetch(fresh.port, '/admin/login', { form: { password: 'y'.repeat(5000) } });
    expect(oversized.status).toBe(401);
    for (let i = 0; i < 3; i++)
      await adminFetch(fresh.port, '/admin/login', { form: { password: `wrong-${i}` } });
    const limited = await adminFetch(fresh.port, '/admin/login', { form: { password: ADMIN_PASSWORD } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(sessionOf(limited)).toBeUndefined();
  });

  it('refuses a tampered, forged or malformed cookie', async () => {
    const value = cookie.slice('tidings_admin='.length);
    const [expires, id, signature] = value.split('.') as [string, string, string];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const bad = [
      `${expires}.${id}.${flip(signature)}`,
      `${Number(expires) + 3600}.${id}.${signature}`,
      `${expires}.${flip(id)}.${signature}`,
      `${expires}.${id}`,
      'x'.repeat(4000),
      '',
    ];
    for (const forged of bad) {
      const res = await adminFetch(gw.port, '/admin/nodes', { cookie: `tidings_admin=${forged}` });
      expect(res.status, forged.slice(0, 40)).toBe(303);
    }
    expect((await adminFetch(gw.port, '/admin/nodes', { cookie })).status).toBe(200);
  });

  it('shows gateways and workers on the nodes page, partitions on the queues page', async () => {
    const nodes = await adminFetch(gw.port, '/admin/nodes', { cookie });
    expect(nodes.text).toContain(gw.nodeName);
    await waitFor('the worker on the nodes page', async () =>
      (await adminFetch(gw.port, '/admin/nodes', { cookie })).text.includes('worker-admin-test'),
    );
    const queues = await adminFetch(gw.port, '/admin/queues', { cookie });
    expect(queues.status).toBe(200);
    expect(queues.text.match(/<tr><td>\d+<\/td>/g)).toHaveLength(4); // TIDINGS_PARTITIONS=4 in the stack
    const dead = await adminFetch(gw.port, '/admin/dead-letters?partition=0', { cookie });
    expect(dead.status).toBe(200);
    expect(dead.text).toContain('Webhook dead letters');
  });

  it('needs the session, its CSRF token and the same origin for every post', async () => {
    const channel = uniqueChannel('admin-csrf');
    const form = { channel, data: '{"n":1}' };
    const token = await csrf();
    expect((await adminFetch(gw.port, '/admin/publish', { form: { ...form, csrf: token } })).status).toBe(
      401,
    );
    expect((await adminFetch(gw.port, '/admin/publish', { cookie, form })).status).toBe(403);
    expect(
      (await adminFetch(gw.port, '/admin/publish', { cookie, form: { ...form, csrf: 'x'.repeat(43) } }))
        .status,
    ).toBe(403);
    const other = await adminFetch(gw.port, '/admin/publish', {
      cookie,
      form: { ...form, csrf: token },
      headers: { origin: 'http://evil.example' },
    });
    expect(other.status).toBe(403);
    const site = await adminFetch(gw.port, '/admin/publish', {
      cookie,
      form: { ...form, csrf: token },
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(site.status).toBe(403);
    expect((await adminFetch(gw.port, '/admin/logout', { cookie, form: {} })).status).toBe(403);
    expect((await call<{ offset: number }>(gw.port, 'history', { channel })).offset).toBe(0);
    const ok = await adminFetch(gw.port, '/admin/publish', {
      cookie,
      form: { ...form, csrf: token },
      headers: { origin: `http://127.0.0.1:${gw.port}` },
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`/admin/channel?name=${channel}&published=1`);
    expect((await call<{ offset: number }>(gw.port, 'history', { channel })).offset).toBe(1);
  });

  it('signs out: the cookie is cleared', async () => {
    const mine = await signIn(gw.port);
    const token = csrfOf((await adminFetch(gw.port, '/admin/nodes', { cookie: mine })).text);
    const out = await adminFetch(gw.port, '/admin/logout', { cookie: mine, form: { csrf: token } });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^tidings_admin=; Path=\/admin; Max-Age=0;/);
  });

  it('escapes channel names and data chosen by publishers', async () => {
    const channel = `xss-${uniqueChannel()}-<script>alert(1)</script>"'`;
    await call(gw.port, 'publish', { channel, data: { text: '</pre><img src=x onerror=alert(2)>' } });
    const page = await adminFetch(gw.port, `/admin/channel?name=${encodeURIComponent(channel)}`, { cookie });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<script>alert');
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;');
    expect(page.text).toContain('&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt;');
    const search = await adminFetch(
      gw.port,
      `/admin/channels?prefix=${encodeURIComponent(channel.slice(0, 20))}`,
      { cookie },
    );
    expect(search.text).not.toContain('<script>alert');
    expect(search.text).toContain('&lt;script&gt;');
  });

  it('answers bad input with 4xx, never a crash', async () => {
    const token = await csrf();
    const cases: [string, number][] = [
      ['/admin/channel', 400],
      ['/admin/channel?name=', 400],
      [`/admin/channel?name=${'a'.repeat(300)}`, 400],
      ['/admin/channel?name=a%00b', 400],
      ['/admin/channel?name=a%20b', 400],
      ['/admin/channel?name=unknown-ns:x', 404],
      ['/admin/channel?name=ok&before=abc', 400],
      ['/admin/channel?name=ok&before=-1', 400],
      ['/admin/channel?name=ok&before=99999999999999999999', 400],
      ['/admin/dead-letters?partition=99', 400],
      ['/admin/dead-letters?partition=5000', 400],
      ['/admin/dead-letters?partition=0&offset=x', 400],
      [`/admin/channels?prefix=${'p'.repeat(300)}`, 400],
      ['/admin/channels?prefix=%ED%A0%80', 200], // a lone surrogate decodes to U+FFFD: just a character
      ['/admin/live?channel=', 400],
    ];
    for (const [path, status] of cases)
      expect((await adminFetch(gw.port, path, { cookie })).status, path).toBe(status);
    expect((await adminFetch(gw.port, '/admin/live?channel=a')).status).toBe(401);
    const post = (form: Record<string, string>) =>
      adminFetch(gw.port, '/admin/publish', { cookie, form: { csrf: token, ...form } });
    expect((await post({ channel: 'ok', data: 'not json' })).status).toBe(400);
    expect((await post({ channel: 'ok', data: '' })).status).toBe(400);
    expect((await post({ channel: 'ok', data: `"${'d'.repeat(70_000)}"` })).status).toBe(400);
    expect((await post({ channel: '', data: '1' })).status).toBe(400);
    expect((await post({ channel: 'unknown-ns:x', data: '1' })).status).toBe(404);
    const big = await adminFetch(gw.port, '/admin/publish', {
      cookie,
      body: `csrf=${token}&data=${'z'.repeat(300_000)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(big.status).toBe(413);
  });

  it('searches channels by prefix, paged, with % and _ taken literally', async () => {
    const base = uniqueChannel('search');
    for (const suffix of ['a', 'b', 'c', '%', '_x'])
      await call(gw.port, 'publish', { channel: `${base}-${suffix}`, data: 1 });
    const first = await call<{ channels: { channel: string }[]; next: string }>(gw.port, 'channel_search', {
      prefix: base,
      limit: 2,
    });
    expect(first.channels.map((c) => c.channel)).toEqual([`${base}-%`, `${base}-_x`]);
    const second = await call<{ channels: { channel: string }[]; next: string }>(gw.port, 'channel_search', {
      prefix: base,
      limit: 2,
      after: first.next,
    });
    expect(second.channels.map((c) => c.channel)).toEqual([`${base}-a`, `${base}-b`]);
    const literal = await call<{ channels: { channel: string }[] }>(gw.port, 'channel_search', {
      prefix: `${base}-%`,
    });
    expect(literal.channels.map((c) => c.channel)).toEqual([`${base}-%`]);
    const page = await adminFetch(gw.port, `/admin/channels?prefix=${base}`, { cookie });
    expect(page.text).toContain(`${base}-c`);
  });

  it('searches with one range scan of the prefix index, never a sort of the table', async () => {
    const database = openDatabase(stack.databaseUrl, { max: 1 });
    try {
      const plan = await database.db.transaction(async (tx) => {
        // The test table is small (and its database C-collated, so the primary key could serve LIKE too):
        // what matters is that the prefix index serves the query in order, without a sort.
        for (const off of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort'])
          await tx.execute(sql.raw(`set local ${off} = off`));
        const result = await tx.execute<{ 'QUERY PLAN': string }>(
          sql`explain ${searchQuery({ prefix: 'chat:', after: 'chat:a', limit: 20 })}`,
        );
        return result.rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      expect(plan).toContain('channels_name_prefix_idx');
      expect(plan).not.toMatch(/\bSort\b/);
    } finally {
      await database.close();
    }
  });

  it("pages a channel's publications back from the newest, 20 at a time", async () => {
    const channel = uniqueChannel('admin-pages');
    for (let i = 1; i <= 25; i++) await call(gw.port, 'publish', { channel, data: { i } });
    const offsets = (text: string) =>
      [...text.matchAll(/<tr><td>(\d+)<\/td><td>API<\/td>/g)].map((m) => Number(m[1]));
    const first = await adminFetch(gw.port, `/admin/channel?name=${channel}`, { cookie });
    expect(offsets(first.text)).toEqual(Array.from({ length: 20 }, (_, i) => 25 - i));
    expect(first.text).toContain(`href="/admin/channel?name=${channel}&amp;before=6"`);
    const older = await adminFetch(gw.port, `/admin/channel?name=${channel}&before=6`, { cookie });
    expect(offsets(older.text)).toEqual([5, 4, 3, 2, 1]);
    expect(older.text).not.toContain('Older');
  });

  it('removes history through the form; the position stays', async () => {
    const channel = uniqueChannel('admin-remove');
    await call(gw.port, 'publish', { channel, data: 1 });
    await call(gw.port, 'publish', { channel, data: 2 });
    const res = await adminFetch(gw.port, '/admin/history-remove', {
      cookie,
      form: { channel, csrf: await csrf() },
    });
    expect(res.status).toBe(303);
    const after = await call<{ publications: unknown[]; offset: number }>(gw.port, 'history', {
      channel,
      limit: -1,
    });
    expect(after.publications).toEqual([]);
    expect(after.offset).toBe(2);
  });

  it('streams a channel live to the session, with no user token', async () => {
    const channel = uniqueChannel('admin-live');
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${gw.port}/admin/live?channel=${channel}`, {
      headers: { cookie },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: string) => {
      while (!text.includes(until)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await read('event: position');
    await call(gw.port, 'publish', { channel, data: { hello: 'live' } });
    await read('"hello":"live"');
    expect(text).toMatch(/event: pub\ndata: \{"push":\{"channel":"[^"]+","pub":\{.*"offset":1/);
    controller.abort();
  });
});
