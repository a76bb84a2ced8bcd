import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/webhooks/delivery.js';
import { mintEvent, signBody, webhookPartitionOf } from '../../src/webhooks/event.js';

describe('webhook events (issue 14)', () => {
  it('are minted with a fresh id and the time, keys in the documented order', () => {
    const now = new Date('2026-12-07T04:00:00.000Z');
    const a = mintEvent({ type: 'disconnect', user: '42', client: 'c1', reason: '1000 bye' }, now);
    const b = mintEvent({ type: 'disconnect', user: '42', client: 'c1', reason: '1000 bye' }, now);
    expect(Object.keys(a)).toEqual(['id', 'type', 'time', 'user', 'client', 'reason']);
    expect(a).toMatchObject({ type: 'disconnect', time: '2026-12-07T04:00:00.000Z', user: '42', client: 'c1' });
    expect(a.id).not.toBe(b.id);
  });

  it('are signed over the exact body bytes', () => {
    const body = '{"id":"x","type":"connect","user":"é"}';
    expect(signBody(body, 'k'.repeat(32))).toBe(`sha256=${createHmac('sha256', 'k'.repeat(32)).update(Buffer.from(body, 'utf8')).digest('hex')}`);
    expect(signBody(`${body} `, 'k'.repeat(32))).not.toBe(signBody(body, 'k'.repeat(32)));
  });

  it("go to one queue per user; anonymous connections' by client", () => {
    const user42 = [1, 2, 3].map((i) => webhookPartitionOf({ user: '42', client: `c${i}` }, 16));
    expect(new Set(user42).size).toBe(1);
    const anonymous = Array.from({ length: 50 }, (_, i) => webhookPartitionOf({ user: '', client: `c${i}` }, 16));
    expect(new Set(anonymous).size).toBeGreaterThan(1);
  });

  it('wait between attempts with full jitter under a doubling ceiling, never above the cap', () => {
    for (let attempt = 1; attempt <= 40; attempt++) {
      for (let i = 0; i < 50; i++) {
        const wait = backoffMs(attempt, 10_000);
        expect(wait).toBeGreaterThanOrEqual(0);
        expect(wait).toBeLessThanOrEqual(Math.min(10_000, 250 * 2 ** (attempt - 1)));
      }
    }
  });
});
