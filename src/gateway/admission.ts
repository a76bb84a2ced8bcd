/**
 * Who may open a WebSocket: browsers only from allowed origins (a page on another site must
 * not ride on a user's cookies or network position), and no single IP with more than its
 * share of connections or connection attempts (a flood from one host cannot starve others).
 */
import type { IncomingMessage } from 'node:http';

export interface AdmissionSettings {
  /** undefined: same origin only; ['*']: any; else exact origins (lower case). */
  allowedOrigins: string[] | undefined;
  maxConnectionsPerIp: number;
  connectRatePerIp: number;
}

export type Verdict = { ok: true; ip: string } | { ok: false; status: number; reason: string };

export class Admission {
  private readonly open = new Map<string, number>();
  private readonly attempts = new Map<string, { windowStart: number; count: number }>();

  constructor(private readonly settings: AdmissionSettings) {}

  check(req: IncomingMessage): Verdict {
    if (!this.originAllowed(req)) return { ok: false, status: 403, reason: 'Forbidden' };
    const ip = req.socket.remoteAddress ?? 'unknown';
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
    const now = Date.now();
    const entry = this.attempts.get(ip);
    if (!entry || now - entry.windowStart >= 1000) {
      if (this.attempts.size > 100_000) this.attempts.clear(); // bound memory under a spoofed-source flood
      this.attempts.set(ip, { windowStart: now, count: 1 });
      return 1;
    }
    entry.count++;
    return entry.count;
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

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
