/**
 * The `channels` method's bound on matching (src/api/nodes.ts): a pattern that costs
 * milliseconds per channel gives the event loop back while it matches, and is refused with a
 * 107 once it has matched for a second, instead of holding the gateway for minutes.
 */
import { describe, expect, it } from 'vitest';
import type { ApiContext } from '../../src/api/context.js';
import { ApiError } from '../../src/api/errors.js';
import { channels } from '../../src/api/nodes.js';

/**
 * A context whose registry lists these channels (the method reads nothing else). The registry
 * is a stand-in so that 5,000 long channels cost nothing to set up; what is tested is the
 * matching loop. The same method against real gateways and Redis, with the backtracking
 * pattern, is in test/integration/api-cluster.test.ts.
 */
function contextWith(names: string[]): ApiContext {
  const registry = { channels: async () => new Map(names.map((name) => [name, 1])) };
  return { registry } as unknown as ApiContext;
}

describe('channels method', () => {
  it('matches a plain pattern over many channels', async () => {
    const names = Array.from({ length: 20_000 }, (_, i) => `chat:${i}`);
    const result = (await channels(contextWith([...names, 'news:1']), { pattern: 'chat:*' })) as { channels: Record<string, unknown> };
    expect(Object.keys(result.channels)).toHaveLength(20_000);
  });

  it('attack: a costly pattern over many long channels yields to the event loop and stops with 107', async () => {
    const names = Array.from({ length: 5_000 }, (_, i) => `${i}${'a'.repeat(250)}`);
    const hostile = `${'*a'.repeat(500)}*b`;
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    let thrown: unknown;
    try {
      await channels(contextWith(names), { pattern: hostile });
    } catch (err) {
      thrown = err;
    } finally {
      clearInterval(ticker);
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).error.code).toBe(107);
    expect(ticks).toBeGreaterThan(10); // timers ran while it matched
  });
});
