import { DrizzleQueryError } from 'drizzle-orm/errors';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { isTransient, retryInPlace, rootCause, settlesWithin } from '../../src/persist/retry.js';

function pgError(code: string): Error {
  return Object.assign(new Error(`pg ${code}`), { code });
}

describe('isTransient', () => {
  it('reads the PostgreSQL error inside drizzle\'s wrapper, never the wrapper (a poison job must not retry forever)', () => {
    // 22021: NUL in text; 54000: index row too big; 23505: unique violation.
    for (const code of ['22021', '54000', '23505', '22P02']) {
      expect(isTransient(new DrizzleQueryError('insert …', [], pgError(code))), code).toBe(false);
    }
    for (const code of ['08006', '40001', '40P01', '57P01', '53300']) {
      expect(isTransient(new DrizzleQueryError('insert …', [], pgError(code))), code).toBe(true);
    }
  });

  it('treats lost connections as transient and our own bugs as permanent', () => {
    expect(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransient(new DrizzleQueryError('select', [], new TypeError('x is undefined')))).toBe(false);
  });

  it('stops at the first error with a code, and survives a cause cycle', () => {
    const outer = Object.assign(new Error('outer'), { code: '22021', cause: pgError('08006') });
    expect(rootCause(outer)).toBe(outer);
    const a: Error & { cause?: unknown } = new Error('a');
    const b: Error & { cause?: unknown } = new Error('b');
    a.cause = b;
    b.cause = a;
    expect(() => rootCause(a)).not.toThrow();
  });
});

describe('settlesWithin', () => {
  it('turns an attempt that never settles into a transient timeout, so retryInPlace sends it again', async () => {
    const log = createLogger('silent');
    let calls = 0;
    const attempt = () => {
      calls++;
      // The first attempt hangs forever, as a pipeline cut mid-reply can (ioredis#800).
      return calls === 1 ? new Promise<string>(() => {}) : Promise.resolve('done');
    };
    const result = await retryInPlace('fanout', () => settlesWithin('fanout', 20, attempt), {
      log,
      signal: new AbortController().signal,
    });
    expect(result).toBe('done');
    expect(calls).toBe(2);
  });

  it('passes a result or an error through unchanged', async () => {
    await expect(settlesWithin('x', 1000, () => Promise.resolve(7))).resolves.toBe(7);
    const refused = pgError('22021');
    await expect(settlesWithin('x', 1000, () => Promise.reject(refused))).rejects.toBe(refused);
    await expect(settlesWithin('x', 10, () => new Promise(() => {}))).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });
});
