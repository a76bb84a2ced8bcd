/**
 * Admin sessions without server state: the cookie is `<expiry>.<id>.<signature>`, the
 * signature an HMAC-SHA256 of the rest. Any gateway that shares the password (and the token
 * secret) accepts a cookie another one issued, so the console works behind a balancer.
 *
 * The HMAC key is derived (HKDF, RFC 5869) from the admin password and TIDINGS_TOKEN_SECRET:
 * changing the password ends every session, and a stolen cookie cannot be used to guess the
 * password offline, since the key also holds a secret the cookie never shows. A signed-out
 * cookie stays valid until its expiry (there is nothing to revoke it in): keep the TTL short.
 *
 * The CSRF token of a session is an HMAC of its id under another derived key: a form must
 * carry it, which a page on another site cannot read (SameSite=Strict is the first lock,
 * this the second, the Origin check in ./guard.ts the third).
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_NAME = 'tidings_admin';

/** `<expiry, unix seconds>.<22-char id>.<43-char signature>`; anything else is refused unread. */
const COOKIE_SHAPE = /^(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export interface Session {
  id: string;
  /** Expiry, unix seconds. */
  expires: number;
}

export interface SessionOptions {
  password: string;
  /** TIDINGS_TOKEN_SECRET; mixed into the keys (see the header). */
  secret: string;
  ttlS: number;
  now?: () => number;
}

function derive(password: string, secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', password, secret, `tidings admin ${purpose}`, 32));
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionKeys {
  private readonly signing: Buffer;
  private readonly csrf: Buffer;
  private readonly passwordDigest: Buffer;
  private readonly now: () => number;

  constructor(private readonly opts: SessionOptions) {
    this.signing = derive(opts.password, opts.secret, 'session');
    this.csrf = derive(opts.password, opts.secret, 'csrf');
    this.passwordDigest = digest(opts.password);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Both sides hashed first: equal lengths whatever was typed, so neither the comparison time
   * nor a length check tells anything about the password.
   */
  passwordMatches(given: string): boolean {
    return timingSafeEqual(digest(given), this.passwordDigest);
  }

  issue(): { session: Session; cookie: string } {
    const session = {
      id: randomBytes(16).toString('base64url'),
      expires: Math.floor(this.now() / 1000) + this.opts.ttlS,
    };
    const body = `${session.expires}.${session.id}`;
    return { session, cookie: `${body}.${mac(this.signing, body)}` };
  }

  /** The session a cookie value stands for, or undefined: malformed, forged, or expired. */
  verify(value: string | undefined): Session | undefined {
    const match = value === undefined ? null : COOKIE_SHAPE.exec(value);
    if (!match) return undefined;
    const [, expires, id, signature] = match as unknown as [string, string, string, string];
    if (!sameText(mac(this.signing, `${expires}.${id}`), signature)) return undefined;
    const session = { id, expires: Number(expires) };
    return session.expires > this.now() / 1000 ? session : undefined;
  }

  csrfToken(session: Session): string {
    return mac(this.csrf, session.id);
  }

  csrfMatches(session: Session, given: string | undefined): boolean {
    return given !== undefined && sameText(this.csrfToken(session), given);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
