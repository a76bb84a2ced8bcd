/**
 * The pure parts of the server API: the `channels` glob (gobwas/glob syntax, as Centrifugo),
 * the API key check, the transport-mode status mapping and legacy method names.
 */
import { describe, expect, it } from 'vitest';
import { apiKeyCheck, presentedKey } from '../../src/api/auth.js';
import { ApiError, ApiErrors, apiErrorOf, httpStatusOf } from '../../src/api/errors.js';
import { compileGlob, MAX_PATTERN_LENGTH } from '../../src/api/glob.js';
import { legacyMethodName } from '../../src/api/legacy.js';
import { Errors, ProtocolError } from '../../src/protocol/codes.js';

describe('channels glob', () => {
  const cases: [string, string, boolean][] = [
    ['chat:*', 'chat:room', true],
    ['chat:*', 'chat:', true],
    ['chat:*', 'news:x', false],
    ['*', 'a:b:c', true],
    ['ro?m', 'room', true],
    ['ro?m', 'rom', false],
    ['[abc]x', 'bx', true],
    ['[!abc]x', 'bx', false],
    ['[!abc]x', 'dx', true],
    ['[a-c]1', 'c1', true],
    ['[a-c]1', 'd1', false],
    ['{news,chat}:*', 'chat:1', true],
    ['{news,chat}:*', 'feed:1', false],
    ['{a{b,c},d}', 'ac', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a.b', 'axb', false],
    ['(x)|y', '(x)|y', true],
    ['$private:*', '$private:1', true],
    ['a-b', 'a-b', true],
    ['[\\]]', ']', true],
    ['[a-c-e]', '-', true],
    ['[a-c-e]', 'd', false],
    ['[-a]', '-', true],
    ['[\\-]x', '-x', true],
    ['??', '😀😀', true],
    ['?', '😀', true],
    ['*b*', 'abc', true],
    ['{a*,*b}c', 'xbc', true],
    ['{a*,*b}c', 'xxc', false],
    ['{}', '', true],
    ['', '', true],
    ['', 'a', false],
    ['a}', 'a}', true],
    ['a\u0000*', 'a\u0000b', true],
    ['\ud800?', '\ud800x', true],
    ['?', '\ud800', true],
    ['[\ud800]', '\ud800', true],
  ];
  it.each(cases)('%s matches %s: %s', (pattern, name, expected) => {
    expect(compileGlob(pattern)(name)).toBe(expected);
  });

  it.each(['[ab', '{a,b', 'a\\', '[]', '[z-a]', '{a', 'x'.repeat(MAX_PATTERN_LENGTH + 1)])('refuses %s with 107', (pattern) => {
    let thrown: unknown;
    try {
      compileGlob(pattern);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).error.code).toBe(107);
  });
});

describe('channels glob against hostile patterns', () => {
  // A backtracking matcher takes minutes on these (exponential in the stars), so the test
  // times out; the automaton takes name length × pattern length steps.
  it.each([
    ['*a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(255)],
    ['{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}b', 'a'.repeat(255)],
    ['*'.repeat(MAX_PATTERN_LENGTH - 1) + 'b', 'a'.repeat(255)],
  ])('%s against 255 characters answers at once', (pattern, name) => {
    const matches = compileGlob(pattern);
    expect(matches(name)).toBe(false);
    expect(matches(name.slice(0, -1) + 'b')).toBe(true);
  });
});

describe('API key', () => {
  it('reads X-API-Key first, then Authorization: apikey in any case', () => {
    expect(presentedKey({ 'x-api-key': 'k1', authorization: 'apikey k2' })).toBe('k1');
    expect(presentedKey({ 'x-api-key': '', authorization: 'APIKEY k2' })).toBe('k2');
    expect(presentedKey({ authorization: 'Bearer k2' })).toBeUndefined();
    expect(presentedKey({ authorization: 'apikey' })).toBeUndefined();
    expect(presentedKey({})).toBeUndefined();
  });

  it('accepts only the configured key, and nothing when none is configured', () => {
    const check = apiKeyCheck('secret');
    expect(check({ 'x-api-key': 'secret' })).toBe(true);
    expect(check({ 'x-api-key': 'secre' })).toBe(false);
    expect(check({ 'x-api-key': 'secret-and-more' })).toBe(false);
    expect(apiKeyCheck(undefined)({ 'x-api-key': '' })).toBe(false);
    expect(apiKeyCheck('')({ authorization: 'apikey ' })).toBe(false);
  });
});

describe('error mapping and legacy names', () => {
  it('maps codes to transport-mode statuses as Centrifugo', () => {
    expect([100, 102, 104, 107, 108, 112, 113, 103].map(httpStatusOf)).toEqual([500, 404, 404, 400, 400, 416, 409, 500]);
  });

  it('answers the protocol codes, with its own two messages and no temporary flag', () => {
    expect(ApiErrors.notFound).toEqual({ code: Errors.methodNotFound.code, message: 'not found' });
    expect(ApiErrors.conflict).toEqual({ code: Errors.concurrentPagination.code, message: 'conflict' });
    expect(ApiErrors.internal).toEqual({ code: 100, message: 'internal server error' });
    expect(apiErrorOf(new ProtocolError(Errors.tooManyRequests))).toEqual({ code: 111, message: 'too many requests' });
    expect(apiErrorOf(new ProtocolError(Errors.methodNotFound))).toEqual(ApiErrors.notFound);
    expect(apiErrorOf(new Error('db at 10.0.0.3 exploded'))).toEqual(ApiErrors.internal);
  });

  it('reads legacy methods by name in any case or by enum number', () => {
    expect(legacyMethodName('PRESENCE_STATS')).toBe('presence_stats');
    expect(legacyMethodName(0)).toBe('publish');
    expect(legacyMethodName(7)).toBe('history_remove');
    expect(legacyMethodName(11)).toBe('subscribe');
    expect(legacyMethodName(99)).toBeUndefined();
    expect(legacyMethodName(null)).toBeUndefined();
  });
});
