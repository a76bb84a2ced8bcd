/**
 * The teardown funnel (src/app/shutdown.ts): every step runs in order, a failing step does
 * not stop the rest, and a step that never finishes is left behind after its limit, so a
 * process always gets to close its connections (which is what frees a stuck step).
 */
import { describe, expect, it } from 'vitest';
import { shutdownSteps } from '../../src/app/shutdown.js';
import { createLogger } from '../../src/observability/logger.js';

describe('shutdownSteps', () => {
  it('runs every step in order past a failing one and past one that never finishes', async () => {
    const ran: string[] = [];
    const close = shutdownSteps(
      createLogger('silent'),
      [
        ['first', () => void ran.push('first')],
        ['fails', () => Promise.reject(new Error('boom'))],
        ['hangs', () => new Promise(() => ran.push('hangs'))],
        ['last', () => void ran.push('last')],
      ],
      20,
    );
    await close();
    expect(ran).toEqual(['first', 'hangs', 'last']);
    // Closing again is the same close, not a second run.
    await close();
    expect(ran).toEqual(['first', 'hangs', 'last']);
  });
});
