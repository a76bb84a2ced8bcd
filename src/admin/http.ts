/**
 * The console's HTTP plumbing: headers every answer carries, the session cookie, the
 * same-origin check for state-changing requests, and a bounded form reader.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../api/io.js';
import type { SafeHtml } from './html.js';

/** Largest form the console accepts: a publication's data up to 64 KiB, with room for encoding. */
export const MAX_FORM_BYTES = 256 * 1024;

/**
 * Scripts, styles and connections from this origin only, no inline code, no framing (the
 * console must not be clickjacked), forms posted here only.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

export function sendHtml(
  res: ServerResponse,
  status: number,
  page: SafeHtml,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(page.text),
    ...headers,
  });
  res.end(page.text);
}

/** 303: after a POST the browser GETs the page (a reload does not post again). */
export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'content-length': 0, ...headers });
  res.end();
}

export function cookieOf(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface CookieOptions {
  maxAgeS: number;
  secure: boolean;
}

/** HttpOnly (no script reads it), SameSite=Strict (no other site's request carries it), scoped to /admin. */
export function sessionCookie(name: string, value: string, opts: CookieOptions): string {
  const secure = opts.secure ? '; Secure' : '';
  return `${name}=${value}; Path=/admin; Max-Age=${opts.maxAgeS}; HttpOnly; SameSite=Strict${secure}`;
}

/**
 * Whether a state-changing request comes from the console's own pages. Browsers send
 * `Sec-Fetch-Site` and `Origin` with every POST; either naming another site refuses it.
 * Neither present is a client that is not a browser (curl), which cross-site requests are
 * not; it still needs the session and its CSRF token.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    // Host only: a proxy terminating TLS makes the scheme differ between browser and here.
    return new URL(origin).host === req.headers.host;
  } catch {
    return false; // "null" (sandboxed frames, some redirects) or garbage
  }
}

export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export type FormResult = { ok: true; form: URLSearchParams } | { ok: false; status: 413 | 415 };

export async function readForm(req: IncomingMessage): Promise<FormResult> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return { ok: false, status: 415 };
  }
  const read = await readBody(req, MAX_FORM_BYTES);
  if (!read.ok) return read;
  return { ok: true, form: new URLSearchParams(read.body.toString('utf8')) };
}

/** Input the console refuses: answered 400 with `message` (which must not echo the input unescaped; pages escape it). */
export class BadInput extends Error {
  override name = 'BadInput';
}

/** One field of a form or query: its first value, undefined when absent; longer than `max` characters is BadInput. */
export function field(params: URLSearchParams, name: string, max: number): string | undefined {
  const value = params.get(name);
  if (value !== null && value.length > max) throw new BadInput(`${name} is longer than ${max} characters`);
  return value ?? undefined;
}
