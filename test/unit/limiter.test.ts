/**
 * src/gateway/limiter.ts: the per-connection token bucket. The clock is performance.now(),
 * stubbed here so that refills are exact rather than a matter of how fast the test runs.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../src/gateway/limiter.js';

let now = 0;

beforeEach(() => {
  now = 1_000;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** `n` commands at this instant. */
function take(bucket: TokenBucket, n: number): string[] {
  return Array.from({ length: n }, () => bucket.take());
}

describe('TokenBucket', () => {
  it('allows a burst at once, then limits', () => {
    const bucket = new TokenBucket(10, 3);
    expect(take(bucket, 4)).toEqual(['ok', 'ok', 'ok', 'limited']);
  });

  it('refills at `rate` per second, counting fractions of a token', () => {
    const bucket = new TokenBucket(10, 3);
    take(bucket, 3);
    now += 50; // half a token
    expect(bucket.take()).toBe('limited');
    now += 50;
    expect(bucket.take()).toBe('ok');
    now += 250; // 2.5 tokens
    expect(take(bucket, 3)).toEqual(['ok', 'ok', 'limited']);
  });

  it('never holds more than the burst, however long the connection was idle', () => {
    const bucket = new TokenBucket(10, 3);
    now += 3_600_000;
    expect(take(bucket, 4)).toEqual(['ok', 'ok', 'ok', 'limited']);
  });

  it('calls a client abusive once more of its commands were refused than the burst', () => {
    const bucket = new TokenBucket(1, 3);
    take(bucket, 3);
    expect(take(bucket, 4)).toEqual(['limited', 'limited', 'limited', 'abusive']);
    expect(bucket.take(), 'and keeps calling it so').toBe('abusive');
  });

  it('forgives one refused command per command allowed', () => {
    const bucket = new TokenBucket(1, 3);
    take(bucket, 3);
    expect(take(bucket, 3)).toEqual(['limited', 'limited', 'limited']);
    now += 2_000;
    expect(take(bucket, 2)).toEqual(['ok', 'ok']); // the debt is down to 1
    expect(take(bucket, 3)).toEqual(['limited', 'limited', 'abusive']);
  });

  it('closes a client sending more than twice the rate, not one a little over it (issue 12)', () => {
    /** `seconds` of commands at `perSecond`, evenly spaced; the verdicts. */
    const run = (bucket: TokenBucket, perSecond: number, seconds: number) =>
      Array.from({ length: perSecond * seconds }, () => {
        now += 1000 / perSecond;
        return bucket.take();
      });
    const slightlyOver = run(new TokenBucket(1000, 2000), 1200, 30);
    expect(slightlyOver).not.toContain('abusive');
    expect(slightlyOver).toContain('limited');
    const flood = run(new TokenBucket(1000, 2000), 5000, 3);
    expect(flood, 'closed within 3 s at five times the rate').toContain('abusive');
  });
});
