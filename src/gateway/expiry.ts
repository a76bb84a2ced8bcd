/**
 * Token expiry, for a connection (its connection token) and for a subscription (its
 * subscription token): the `ttl` a result states, after which the client refreshes, and the
 * grace after `exp` past which a client that did not refresh is cut off (PROTOCOL.md A.5).
 * Expiry times are unix seconds, as in the token.
 */

/** After a token's `exp`, how long a client has to refresh before it is cut off (Go: 25 s). */
export const EXPIRY_GRACE_MS = 25_000;

/** The longest delay setTimeout keeps; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The largest `ttl` a reply states: the protocol's field is a uint32 of seconds. */
const MAX_TTL_S = 2 ** 32 - 1;

/**
 * Whole seconds left until `expiresAt`, at least 1 (0 would read as "never") and at most a
 * uint32; undefined when it never expires. A token's `exp` may be fractional or absurdly
 * large (1e300 verifies), and the reply must still carry a number every client can use.
 */
export function ttlOf(expiresAt: number | undefined): number | undefined {
  if (expiresAt === undefined) return undefined;
  return Math.min(MAX_TTL_S, Math.max(1, Math.ceil(expiresAt) - Math.floor(Date.now() / 1000)));
}

/**
 * A timer for a moment that may be further off than setTimeout can wait (24.8 days): it waits
 * in steps. Clamping instead fired early: a connection whose token was good for a year was
 * closed as expired after 24.8 days. It does not keep the process up.
 */
export class Deadline {
  private handle: NodeJS.Timeout | undefined;

  constructor(
    private readonly atMs: number,
    private readonly fire: () => void,
  ) {
    this.arm();
  }

  private arm(): void {
    const ms = this.atMs - Date.now();
    this.handle =
      ms > MAX_TIMER_MS ? setTimeout(() => this.arm(), MAX_TIMER_MS).unref() : setTimeout(this.fire, Math.max(0, ms)).unref();
  }

  clear(): void {
    clearTimeout(this.handle);
  }
}

/** Calls `onDue` at `expiresAt` (a server-side refresh, which needs no grace). */
export function dueTimer(expiresAt: number, onDue: () => void): Deadline {
  return new Deadline(expiresAt * 1000, onDue);
}

/** Calls `onLapse` once the grace after `expiresAt` has run out. */
export function lapseTimer(expiresAt: number, onLapse: () => void): Deadline {
  return new Deadline(expiresAt * 1000 + EXPIRY_GRACE_MS, onLapse);
}
