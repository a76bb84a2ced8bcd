/**
 * Failed logins are rationed, so the password cannot be guessed online: at most
 * PER_ADDRESS failures per address and GLOBAL failures on this gateway per WINDOW_MS; beyond
 * either, every login (even a right one) is answered 429 until the window ends. The global
 * bound is what holds behind a balancer, where every request comes from one address, and
 * against guesses spread over many addresses; its price is that a flood of wrong passwords
 * locks the admin out for a minute, fair for a console that should not be reachable by
 * strangers in the first place (docs/admin.md).
 *
 * Per gateway, in memory: N gateways allow N times the global budget. With a 16+ character
 * random password (the minimum the config accepts) that is still hopeless for a guesser.
 */

export const WINDOW_MS = 60_000;
export const PER_ADDRESS = 5;
export const GLOBAL = 30;
/** Addresses remembered at once; past it the oldest windows are forgotten (the global bound still holds). */
const MAX_ADDRESSES = 10_000;

interface Window {
  failures: number;
  endsAt: number;
}

export class LoginLimiter {
  private readonly byAddress = new Map<string, Window>();
  private global: Window = { failures: 0, endsAt: 0 };

  constructor(private readonly now: () => number = Date.now) {}

  /** 0 when a login may be tried now, else the ms until one may. */
  retryAfterMs(address: string): number {
    const now = this.now();
    const waits = [this.global, this.byAddress.get(address)]
      .filter((w): w is Window => w !== undefined && w.endsAt > now)
      .filter((w) => w.failures >= (w === this.global ? GLOBAL : PER_ADDRESS))
      .map((w) => w.endsAt - now);
    return waits.length === 0 ? 0 : Math.max(...waits);
  }

  failed(address: string): void {
    const now = this.now();
    this.global = bump(this.global, now);
    this.byAddress.set(address, bump(this.byAddress.get(address), now));
    if (this.byAddress.size > MAX_ADDRESSES) this.forgetOldest(now);
  }

  private forgetOldest(now: number): void {
    for (const [address, window] of this.byAddress) {
      if (window.endsAt <= now || this.byAddress.size > MAX_ADDRESSES) this.byAddress.delete(address);
    }
  }
}

function bump(window: Window | undefined, now: number): Window {
  if (!window || window.endsAt <= now) return { failures: 1, endsAt: now + WINDOW_MS };
  return { failures: window.failures + 1, endsAt: window.endsAt };
}
