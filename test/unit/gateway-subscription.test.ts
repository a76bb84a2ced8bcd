/**
 * A subscription's small state machine (src/gateway/subscription.ts): the moves it has, and
 * that a dropped subscription keeps no expiry timer (a sub_refresh that verified its token
 * while an API unsubscribe dropped the subscription must not arm one).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NamespaceOptions } from '../../src/config/namespaces.js';
import { EXPIRY_GRACE_MS } from '../../src/gateway/expiry.js';
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

  it('hands the hub its namespace limit and reports a lost position as itself', () => {
    const o = owner();
    const sub = new Subscription('c', namespace, '{}', { joinLeave: true }, o);
    expect(sub.recoveryMax).toBe(10);
    expect(sub.joinLeave).toBe(true);
    sub.onGap();
    expect(o.lostPosition).toHaveBeenCalledWith(sub);
  });
});
