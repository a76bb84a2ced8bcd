import { describe, expect, it } from 'vitest';
import { fieldChecks, isInt, isObject, isUint } from '../../src/protocol/fields.js';

class Refused extends Error {}
const check = fieldChecks((detail) => new Refused(detail));

describe('field checks', () => {
  it('reads a missing or null field as not set', () => {
    for (const value of [undefined, null]) {
      expect(check.string(value, 'f')).toBeUndefined();
      expect(check.bool(value, 'f')).toBeUndefined();
      expect(check.int(value, 'f')).toBeUndefined();
      expect(check.uint(value, 'f')).toBeUndefined();
      expect(check.stringList(value, 'f')).toBeUndefined();
    }
  });

  it('passes values of the right kind through, falsy ones included', () => {
    expect(check.string('', 'f')).toBe('');
    expect(check.bool(false, 'f')).toBe(false);
    expect(check.int(-3, 'f')).toBe(-3);
    expect(check.uint(0, 'f')).toBe(0);
    expect(check.stringList([], 'f')).toEqual([]);
  });

  it('throws what the surface builds, naming the field', () => {
    const cases: [() => unknown, string][] = [
      [() => check.string(1, 'epoch'), 'epoch must be a string'],
      [() => check.bool('yes', 'reverse'), 'reverse must be a boolean'],
      [() => check.int(1.5, 'limit'), 'limit must be an integer'],
      [() => check.int(2 ** 53, 'limit'), 'limit must be an integer'],
      [() => check.uint(-1, 'offset'), 'offset must be a non-negative integer'],
      [() => check.stringList(['a', 1], 'users'), 'users must be a list of strings'],
    ];
    for (const [run, detail] of cases) expect(run).toThrow(new Refused(detail));
  });

  it('knows objects and integers', () => {
    expect([{}, { a: 1 }].every(isObject)).toBe(true);
    expect([null, [], 'x', 1].some(isObject)).toBe(false);
    expect(isInt(-1) && isUint(0) && !isUint(-1) && !isInt('1') && !isInt(Number.NaN)).toBe(true);
  });
});
