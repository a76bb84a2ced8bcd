/**
 * src/api/limit.ts: the HTTP API's bounded concurrency (issue 12): slots, a first-come line
 * with a length and a wait bound, and waiters that leave. Timers are real but short; the
 * integration test (test/integration/api-load.test.ts) floods a real gateway.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RequestLimiter, type Release } from '../../src/api/limit.js';

function limiter(maxInflight: number, queueMax: number, queueTimeoutMs = 10_000) {
  return new RequestLimiter({ maxInflight, queueMax, queueTimeoutMs });
}

async function slot(l: RequestLimiter): Promise<Release> {
  const got = await l.acquire();
  if (typeof got !== 'function') throw new Error(`no slot: ${got}`);
  return got;
}

describe('RequestLimiter', () => {
  it('runs up to maxInflight at once, queues up to queueMax, refuses the rest at once', async () => {
    const l = limiter(2, 2);
    const running = [await slot(l), await slot(l)];
    const queued = [l.acquire(), l.acquire()];
    expect(await l.acquire()).toBe('queue_full');
    expect([l.running, l.queued]).toEqual([2, 2]);
    running[0]!();
    running[0]!(); // a second release does nothing
    const first = await queued[0]!;
    expect(typeof first).toBe('function');
    expect([l.running, l.queued]).toEqual([2, 1]);
  });

  it('hands slots over in arrival order', async () => {
    const l = limiter(1, 10);
    const release = await slot(l);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      l.acquire().then((r) => {
        order.push(n);
        if (typeof r === 'function') r();
      }),
    );
    release();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
    expect([l.running, l.queued]).toEqual([0, 0]);
  });

  it('refuses a waiter after queueTimeoutMs', async () => {
    const l = limiter(1, 10, 30);
    await slot(l);
    const started = performance.now();
    expect(await l.acquire()).toBe('queue_timeout');
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(l.queued).toBe(0);
  });

  it('drops a waiter whose client went away, and gives its turn to the next', async () => {
    const l = limiter(1, 10);
    const release = await slot(l);
    let leave: (() => void) | undefined;
    let gone = false;
    void l.acquire((drop) => (leave = drop)).then(() => (gone = true));
    const next = l.acquire();
    leave!();
    expect(l.queued).toBe(1);
    release();
    expect(typeof (await next)).toBe('function');
    await sleep(5);
    expect(gone, 'the abandoned waiter is never granted a slot').toBe(false);
  });
});
