/**
 * Who may open a WebSocket: browsers only from allowed origins (a page on another site must
 * not ride on a user's cookies or network position), and no single IP with more than its
 * share of connections or connection attempts (a flood from one host cannot starve others).
 *
 * "One IP" is one IPv4 address or one IPv6 /64: a single subscriber (a host, a phone) is
 * routinely given a whole /64 (RFC 6177; SLAAC needs it), so counting IPv6 addresses one by one
 * would let one attacker hold 2^64 separate allowances. IPv4-mapped IPv6 (`::ffff:1.2.3.4`,
 * what a dual-stack listener reports for an IPv4 peer) counts as its IPv4 address.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

export interface AdmissionSettings {
  /** undefined: same origin only; ['*']: any; else exact origins (lower case). */
  allowedOrigins: string[] | undefined;
  maxConnectionsPerIp: number;
  connectRatePerIp: number;
}

/** `ip` is the key the per-IP limits count under (see clientKey), to pass back to opened/closed. */
export type Verdict = { ok: true; ip: string } | { ok: false; status: number; reason: string };

export interface AdmissionLimits {
  /** Most connection-rate windows remembered at once (memory bound under a many-address flood). */
  maxTracked?: number;
  now?: () => number;
}

const RATE_WINDOW_MS = 1000;

export class Admission {
  private readonly open = new Map<string, number>();
  /** In window-start order (a renewed window is re-inserted), so the oldest come first. */
  private readonly attempts = new Map<string, { windowStart: number; count: number }>();
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(
    private readonly settings: AdmissionSettings,
    limits: AdmissionLimits = {},
  ) {
    this.maxTracked = limits.maxTracked ?? 100_000;
    this.now = limits.now ?? Date.now;
  }

  /** Connection-rate windows currently remembered. */
  get tracked(): number {
    return this.attempts.size;
  }

  check(req: IncomingMessage): Verdict {
    if (!this.originAllowed(req)) return { ok: false, status: 403, reason: 'Forbidden' };
    const ip = clientKey(req.socket.remoteAddress);
    const { maxConnectionsPerIp, connectRatePerIp } = this.settings;
    if (maxConnectionsPerIp > 0 && (this.open.get(ip) ?? 0) >= maxConnectionsPerIp) {
      return { ok: false, status: 429, reason: 'Too Many Requests' };
    }
    if (connectRatePerIp > 0 && this.countAttempt(ip) > connectRatePerIp) {
      return { ok: false, status: 429, reason: 'Too Many Requests' };
    }
    return { ok: true, ip };
  }

  opened(ip: string): void {
    this.open.set(ip, (this.open.get(ip) ?? 0) + 1);
  }

  closed(ip: string): void {
    const n = (this.open.get(ip) ?? 1) - 1;
    if (n <= 0) this.open.delete(ip);
    else this.open.set(ip, n);
  }

  /** Attempts in the current one-second window. */
  private countAttempt(ip: string): number {
    const now = this.now();
    const entry = this.attempts.get(ip);
    if (entry && now - entry.windowStart < RATE_WINDOW_MS) return ++entry.count;
    this.attempts.delete(ip);
    this.evict(now);
    this.attempts.set(ip, { windowStart: now, count: 1 });
    return 1;
  }

  /**
   * Keeps the table bounded without ever emptying it: a clear() under a many-address flood
   * would reset every limited client's window at once (issue 9). Expired windows go first
   * (they count nothing); only when more than maxTracked keys all tried within the last second
   * are the oldest live windows forgotten, and a key that can do that already has that many
   * allowances. Amortised O(1): each window is deleted once.
   */
  private evict(now: number): void {
    for (const [key, entry] of this.attempts) {
      const expired = now - entry.windowStart >= RATE_WINDOW_MS;
      if (!expired && this.attempts.size < this.maxTracked) break;
      this.attempts.delete(key);
    }
  }

  /** Non-browser clients send no Origin and are not subject to this check. */
  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin?.toLowerCase();
    if (!origin) return true;
    const allowed = this.settings.allowedOrigins;
    if (allowed === undefined) return sameOrigin(origin, req.headers.host);
    return allowed.includes('*') || allowed.includes(origin);
  }
}

/**
 * The key per-IP limits count under: the IPv4 address (also when written IPv4-mapped), or the
 * IPv6 address's /64 prefix as `a:b:c:d::/64`. Anything unparseable is its own key.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const bare = address.replace(/%.*$/, ''); // zone index (fe80::1%eth0)
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return address;
  const groups = ipv6Groups(bare);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail split). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
