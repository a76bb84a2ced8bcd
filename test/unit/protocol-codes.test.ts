import { describe, expect, it } from 'vitest';
import {
  Disconnect,
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  Errors,
  ProtocolError,
  Unsubscribe,
  UnsubscribeCode,
  errorByCode,
  isReconnectCode,
  isResubscribeCode,
  isValidCloseReason,
  makeDisconnect,
  replyErrorOf,
} from '../../src/protocol/codes.js';

const reasons = [...Object.values(Disconnect), ...Object.values(Unsubscribe)].map((d) => d.reason);

describe('codes', () => {
  it('has reasons that are non-empty, under 123 bytes and not JSON', () => {
    for (const reason of reasons) {
      expect(reason.length, reason).toBeGreaterThan(0);
      expect(Buffer.byteLength(reason, 'utf8'), reason).toBeLessThan(123);
      expect(() => JSON.parse(reason), reason).toThrow();
      expect(isValidCloseReason(reason), reason).toBe(true);
    }
  });

  it('names match numbers, and numbers are unique', () => {
    for (const [name, info] of Object.entries(Disconnect)) {
      expect(info.code).toBe(DisconnectCode[name as keyof typeof DisconnectCode]);
    }
    for (const [name, info] of Object.entries(Unsubscribe)) {
      expect(info.code).toBe(UnsubscribeCode[name as keyof typeof UnsubscribeCode]);
    }
    const errorCodes = Object.values(Errors).map((e) => e.code);
    expect(new Set(errorCodes).size).toBe(errorCodes.length);
    expect([...errorCodes].sort()).toEqual(Object.values(ErrorCode).sort());
    expect(Errors.unknownChannel).toEqual({ code: 102, message: 'unknown channel' });
    expect(ErrorCode.UnknownChannel).toBe(102);
    expect(Disconnect.InvalidToken).toEqual({ code: 3500, reason: 'invalid token' });
    expect(Unsubscribe.InsufficientState).toEqual({ code: 2500, reason: 'insufficient state' });
  });

  it('keeps error codes in 100–113 with only 100, 111 and 113 temporary', () => {
    for (const error of Object.values(Errors)) {
      expect(error.code).toBeGreaterThanOrEqual(100);
      expect(error.code).toBeLessThanOrEqual(113);
      expect(error.message.length).toBeGreaterThan(0);
    }
    const temporary = Object.values(Errors)
      .filter((e) => 'temporary' in e && e.temporary)
      .map((e) => e.code);
    expect(temporary.sort()).toEqual([100, 111, 113]);
    expect(errorByCode(109)).toBe(Errors.tokenExpired);
    expect(errorByCode(999)).toBeUndefined();
  });

  it('puts reconnect codes in 3000–3499 and terminal ones in 3500–3999', () => {
    for (const { code } of Object.values(Disconnect)) {
      if (code < 3500) {
        expect(code).toBeGreaterThanOrEqual(3000);
        expect(code).toBeLessThanOrEqual(3014);
        expect(isReconnectCode(code)).toBe(true);
      } else {
        expect(code).toBeLessThanOrEqual(3509);
        expect(isReconnectCode(code)).toBe(false);
      }
    }
    expect([4000, 4499, 5000, 1000, 1006].every(isReconnectCode)).toBe(true);
    expect([4500, 4999, 1009].some(isReconnectCode)).toBe(false);
  });

  it('puts unsubscribe codes on the right side of 2500', () => {
    expect(isResubscribeCode(Unsubscribe.ServerUnsubscribe.code)).toBe(false);
    for (const u of [
      Unsubscribe.InsufficientState,
      Unsubscribe.SubscriptionExpired,
      Unsubscribe.StateInvalidated,
    ]) {
      expect(isResubscribeCode(u.code)).toBe(true);
    }
  });

  it('replaces close reasons the client would misread', () => {
    expect(makeDisconnect(3503, 'bye')).toEqual({ code: 3503, reason: 'bye' });
    expect(makeDisconnect(3503, '')).toEqual(Disconnect.ForceNoReconnect);
    expect(makeDisconnect(3501, '42')).toEqual(Disconnect.BadRequest);
    expect(makeDisconnect(3501, '{"reason":"x","reconnect":true}')).toEqual(Disconnect.BadRequest);
    expect(makeDisconnect(4501, 'x'.repeat(200))).toEqual({ code: 4501, reason: 'disconnect' });
    expect(makeDisconnect(4001)).toEqual({ code: 4001, reason: 'reconnect' });
    expect(isValidCloseReason('é'.repeat(61))).toBe(true);
    expect(isValidCloseReason('é'.repeat(62))).toBe(false);
  });

  it('maps thrown values to reply errors at one place', () => {
    expect(replyErrorOf(new ProtocolError(Errors.permissionDenied, 'no publish right'))).toBe(
      Errors.permissionDenied,
    );
    expect(replyErrorOf(new Error('db exploded at 10.0.0.3'))).toBe(Errors.internal);
    const closing = new DisconnectError(Disconnect.Slow, 'queue full');
    expect(closing.reconnect).toBe(true);
    expect(new DisconnectError(Disconnect.InvalidToken).reconnect).toBe(false);
  });
});
