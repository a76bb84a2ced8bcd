/**
 * Who may open a socket: browser origins (same origin by default, an allowlist when set)
 * and per-IP connection limits.
 */
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { RawClient } from '../helpers/raw.js';
import { SECRET, TestStack, wsUrl } from '../helpers/stack.js';

/** Resolves with 'open' or the HTTP status the upgrade was refused with. */
function attempt(url: string, headers: Record<string, string> = {}): Promise<{ result: string | number; ws: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ result: 'open', ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ result: res.statusCode ?? 0, ws }));
    ws.once('error', () => resolve({ result: 'error', ws }));
  });
}

describe('admission', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('accepts clients without Origin and same-origin pages; refuses other origins by default', async () => {
    const gw = await stack.gateway();
    const url = wsUrl(gw.port);
    const plain = await attempt(url);
    expect(plain.result).toBe('open');
    plain.ws.close();
    const same = await attempt(url, { Origin: `http://127.0.0.1:${gw.port}` });
    expect(same.result).toBe('open');
    same.ws.close();
    expect((await attempt(url, { Origin: 'https://evil.example' })).result).toBe(403);
  });

  it('accepts exactly the configured origins', async () => {
    const gw = await stack.gateway({ TIDINGS_ALLOWED_ORIGINS: 'https://app.example.com' });
    const url = wsUrl(gw.port);
    const allowed = await attempt(url, { Origin: 'https://app.example.com' });
    expect(allowed.result).toBe('open');
    allowed.ws.close();
    expect((await attempt(url, { Origin: 'https://other.example.com' })).result).toBe(403);
  });

  it('limits connections per IP and frees the slot when one closes', async () => {
    const gw = await stack.gateway({ TIDINGS_MAX_CONNECTIONS_PER_IP: '2' });
    const url = wsUrl(gw.port);
    const a = await attempt(url);
    const b = await attempt(url);
    expect([a.result, b.result]).toEqual(['open', 'open']);
    expect((await attempt(url)).result).toBe(429);
    await new Promise<void>((resolve) => {
      a.ws.once('close', () => resolve());
      a.ws.close();
    });
    await new Promise((r) => setTimeout(r, 100));
    const c = await attempt(url);
    expect(c.result).toBe('open');
    b.ws.close();
    c.ws.close();
  });

  it('limits the connection rate per IP', async () => {
    const gw = await stack.gateway({ TIDINGS_CONNECT_RATE_PER_IP: '3' });
    const results = await Promise.all(Array.from({ length: 6 }, () => attempt(wsUrl(gw.port))));
    expect(results.filter((r) => r.result === 429).length).toBeGreaterThan(0);
    for (const r of results) r.ws.terminate();
  });

  it('requires the configured audience and issuer in every token', async () => {
    const gw = await stack.gateway({ TIDINGS_TOKEN_AUDIENCE: 'tidings', TIDINGS_TOKEN_ISSUER: 'https://auth.example.com' });
    const sign = (claims: { aud?: string; iss?: string }) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const good = await RawClient.open(wsUrl(gw.port));
    await good.connect(await sign({ aud: 'tidings', iss: 'https://auth.example.com' }));
    good.close();
    for (const claims of [{}, { aud: 'other', iss: 'https://auth.example.com' }, { aud: 'tidings', iss: 'https://evil.example' }]) {
      const bad = await RawClient.open(wsUrl(gw.port));
      bad.command('connect', { token: await sign(claims) });
      expect((await bad.closed()).code).toBe(3500);
    }
  });
});
