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

/** Seconds left until `expiresAt`, at least 1 (0 would read as "never"); undefined when it never expires. */
export function ttlOf(expiresAt: number | undefined): number | undefined {
  return expiresAt === undefined ? undefined : Math.max(1, expiresAt - Math.floor(Date.now() / 1000));
}

/** A timer that calls `onDue` at `expiresAt` (a server-side refresh, which needs no grace); it does not keep the process up. */
export function dueTimer(expiresAt: number, onDue: () => void): NodeJS.Timeout {
  return setTimeout(onDue, Math.max(0, Math.min(expiresAt * 1000 - Date.now(), MAX_TIMER_MS))).unref();
}

/** A timer that calls `onLapse` once the grace after `expiresAt` has run out; it does not keep the process up. */
export function lapseTimer(expiresAt: number, onLapse: () => void): NodeJS.Timeout {
  const ms = expiresAt * 1000 - Date.now() + EXPIRY_GRACE_MS;
  return setTimeout(onLapse, Math.max(0, Math.min(ms, MAX_TIMER_MS))).unref();
}
