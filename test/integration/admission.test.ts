/**
 * Who may open a socket: browser origins (same origin by default, an allowlist when set)
 * and per-IP connection limits.
 */
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { TestStack, wsUrl } from '../helpers/stack.js';

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
});
