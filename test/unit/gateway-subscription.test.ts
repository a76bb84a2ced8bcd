/**
 * A subscription's small state machine (src/gateway/subscription.ts): the moves it has, and
 * that a dropped subscription keeps no expiry timer (a sub_refresh that verified its token
 * while an API unsubscribe dropped the subscription must not arm one).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NamespaceOptions } from '../../src/config/namespaces.js';
import { EXPIRY_GRACE_MS, ttlOf } from '../../src/gateway/expiry.js';
import { Subscription, type SubscriptionOwner } from '../../src/gateway/subscription.js';

const namespace = { name: '', recovery_max: 10 } as NamespaceOptions;

function owner(): SubscriptionOwner & {
  expired: ReturnType<typeof vi.fn>;
  lostPosition: ReturnType<typeof vi.fn>;
} {
  return { send: vi.fn(), writable: async () => {}, lostPosition: vi.fn(), expired: vi.fn(), due: vi.fn() };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Subscription', () => {
  it('moves subscribing → subscribed → unsubscribed, and only forward', () => {
    const sub = new Subscription('c', namespace, '{}', {}, owner());
    expect(sub.state).toBe('subscribing');
    expect(sub.setState('subscribed')).toBe(true);
    expect(sub.setState('subscribing')).toBe(false);
    expect(sub.setState('unsubscribed')).toBe(true);
    expect(sub.setState('subscribed')).toBe(false);
    expect(sub.state).toBe('unsubscribed');
    expect(new Subscription('c', namespace, '{}', {}, owner()).setState('unsubscribed')).toBe(true);
  });

  it('lapses after the grace past its token expiry, unless dropped first', () => {
    vi.useFakeTimers();
    const now = Math.floor(Date.now() / 1000);
    const live = owner();
    const sub = new Subscription('c', namespace, '{}', { expiresAt: now + 1 }, live);
    vi.advanceTimersByTime(1000 + EXPIRY_GRACE_MS + 1000);
    expect(live.expired).toHaveBeenCalledWith(sub);

    const dropped = owner();
    const gone = new Subscription('c', namespace, '{}', { expiresAt: now + 1 }, dropped);
    gone.setState('unsubscribed');
    gone.expireAt(now + 1);
    vi.advanceTimersByTime(1000 + EXPIRY_GRACE_MS + 1000);
    expect(dropped.expired).not.toHaveBeenCalled();
  });

  it('waits out a token good for longer than setTimeout can wait (24.8 days), then lapses', () => {
    vi.useFakeTimers();
    const day = 86_400_000;
    const live = owner();
    const sub = new Subscription('c', namespace, '{}', { expiresAt: Math.floor(Date.now() / 1000) + 400 * 86_400 }, live);
    vi.advanceTimersByTime(30 * day);
    expect(live.expired).not.toHaveBeenCalled(); // a clamped timer fired here
    vi.advanceTimersByTime(369 * day);
    expect(live.expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(day + EXPIRY_GRACE_MS + 1000);
    expect(live.expired).toHaveBeenCalledWith(sub);
  });

  it('states a ttl every client can use: whole seconds, at least 1, at most a uint32', () => {
    vi.useFakeTimers();
    const now = Math.floor(Date.now() / 1000);
    expect(ttlOf(undefined)).toBeUndefined();
    expect(ttlOf(now + 60)).toBe(60);
    expect(ttlOf(now + 59.2)).toBe(60);
    expect(ttlOf(now - 10)).toBe(1);
    expect(ttlOf(1e300)).toBe(2 ** 32 - 1);
  });

  it('hands the hub its namespace limit and reports a lost position as itself', () => {
    const o = owner();
    const sub = new Subscription('c', namespace, '{}', { joinLeave: true }, o);
    expect(sub.recoveryMax).toBe(10);
    expect(sub.joinLeave).toBe(true);
    sub.onGap();
    expect(o.lostPosition).toHaveBeenCalledWith(sub);
  });
});
