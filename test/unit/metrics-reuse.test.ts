/** A scrape-time gauge that costs store calls reuses its answer for a while (issue 16). */
import { describe, expect, it } from 'vitest';
import { reusedFor } from '../../src/observability/metrics.js';

describe('reusedFor', () => {
  it('calls once per window however often it is read, and again after it', async () => {
    let now = 0;
    let calls = 0;
    const read = reusedFor(1000, async () => ++calls, () => now);
    expect(await Promise.all([read(), read(), read()])).toEqual([1, 1, 1]);
    now = 999;
    expect(await read()).toBe(1);
    now = 1000;
    expect(await read()).toBe(2);
    expect(calls).toBe(2);
  });

  it('does not keep a failure: the next read asks again', async () => {
    let now = 0;
    let calls = 0;
    const read = reusedFor(1000, async () => {
      calls += 1;
      if (calls === 1) throw new Error('redis away');
      return calls;
    }, () => now);
    await expect(read()).rejects.toThrow('redis away');
    now = 1;
    expect(await read()).toBe(2);
  });
});
