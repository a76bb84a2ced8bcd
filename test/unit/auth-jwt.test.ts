import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignJWT, base64url, generateKeyPair, type JWTPayload } from 'jose';
import { signToken, verifyConnectionToken, verifySubscriptionToken } from '../../src/auth/jwt.js';
import { DisconnectError, ProtocolError } from '../../src/protocol/codes.js';

const SECRET = 'test-secret-at-least-32-characters-long';
const OTHER = 'another-secret-at-least-32-characters!!';
const now = Math.floor(Date.now() / 1000);

/** An HMAC-signed token with exactly these claims (no defaults added). */
function hmacToken(claims: JWTPayload, alg = 'HS256', secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

/** The value a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function expectErrorCode(promise: Promise<unknown>, code: number): Promise<void> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).error.code).toBe(code);
}

async function expectDisconnect(promise: Promise<unknown>, code: number): Promise<void> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(DisconnectError);
  expect((err as DisconnectError).disconnect).toEqual({ code, reason: 'invalid token' });
}

describe('verifyConnectionToken', () => {
  it('accepts a valid token and returns user, expiry, info and channels', async () => {
    const token = await hmacToken({ sub: '42', exp: now + 60, info: { name: 'Ann' }, channels: ['news'] });
    const creds = await verifyConnectionToken(token, SECRET);
    expect(creds).toMatchObject({
      user: '42',
      expiresAt: now + 60,
      info: { name: 'Ann' },
      channels: ['news'],
    });
    expect(creds.claims.sub).toBe('42');
  });

  it('accepts HS384 and HS512 with the same secret', async () => {
    for (const alg of ['HS384', 'HS512']) {
      expect((await verifyConnectionToken(await hmacToken({ sub: 'u' }, alg), SECRET)).user).toBe('u');
    }
  });

  it('treats a missing or empty sub as the anonymous user and omits absent fields', async () => {
    const creds = await verifyConnectionToken(await hmacToken({}), SECRET);
    expect(creds.user).toBe('');
    expect('expiresAt' in creds || 'info' in creds || 'channels' in creds).toBe(false);
    expect((await verifyConnectionToken(await hmacToken({ sub: '' }), SECRET)).user).toBe('');
  });

  it('answers an expired token with 109', async () => {
    await expectErrorCode(verifyConnectionToken(await hmacToken({ sub: '42', exp: now - 1 }), SECRET), 109);
  });

  it('answers a token whose nbf is in the future with 109', async () => {
    await expectErrorCode(verifyConnectionToken(await hmacToken({ sub: '42', nbf: now + 600 }), SECRET), 109);
  });

  it('uses the given clock', async () => {
    const token = await hmacToken({ sub: '42', exp: now + 60 });
    await expectErrorCode(verifyConnectionToken(token, SECRET, new Date((now + 61) * 1000)), 109);
    await expectErrorCode(verifyConnectionToken(token, SECRET, { now: new Date((now + 60) * 1000) }), 109);
    expect((await verifyConnectionToken(token, SECRET, { now: new Date((now + 59) * 1000) })).user).toBe(
      '42',
    );
  });

  it('closes with 3500 on a wrong secret, even when also expired', async () => {
    await expectDisconnect(
      verifyConnectionToken(await hmacToken({ sub: '42' }, 'HS256', OTHER), SECRET),
      3500,
    );
    await expectDisconnect(
      verifyConnectionToken(await hmacToken({ sub: '42', exp: now - 10 }, 'HS256', OTHER), SECRET),
      3500,
    );
  });

  it('closes with 3500 on alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ sub: '42' }));
    await expectDisconnect(verifyConnectionToken(`${header}.${payload}.`, SECRET), 3500);
  });

  it('closes with 3500 on an RS256-signed token (no algorithm confusion)', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ sub: '42' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    await expectDisconnect(verifyConnectionToken(token, SECRET), 3500);
  });

  it('closes with 3500 on malformed tokens and tampered payloads', async () => {
    for (const bad of ['', 'abc', 'a.b.c', 'x'.repeat(300)])
      await expectDisconnect(verifyConnectionToken(bad, SECRET), 3500);
    const [h, , s] = (await hmacToken({ sub: '42' })).split('.');
    const forged = `${h}.${base64url.encode(JSON.stringify({ sub: 'admin' }))}.${s}`;
    await expectDisconnect(verifyConnectionToken(forged, SECRET), 3500);
  });

  it('closes with 3500 on a channel claim, a non-string sub or a bad channels claim', async () => {
    await expectDisconnect(
      verifyConnectionToken(await hmacToken({ sub: '42', channel: 'news' }), SECRET),
      3500,
    );
    await expectDisconnect(
      verifyConnectionToken(await hmacToken({ sub: 42 } as unknown as JWTPayload), SECRET),
      3500,
    );
    await expectDisconnect(
      verifyConnectionToken(await hmacToken({ sub: '42', channels: 'news' }), SECRET),
      3500,
    );
  });

  it('checks aud and iss only when configured', async () => {
    const token = await hmacToken({ sub: '42', aud: 'tidings', iss: 'me' });
    expect((await verifyConnectionToken(token, SECRET)).user).toBe('42');
    expect((await verifyConnectionToken(token, SECRET, { audience: 'tidings', issuer: 'me' })).user).toBe(
      '42',
    );
    await expectDisconnect(verifyConnectionToken(token, SECRET, { audience: 'other' }), 3500);
    await expectDisconnect(verifyConnectionToken(token, SECRET, { issuer: 'other' }), 3500);
  });

  it('lets expire_at override exp: 0 never expires, past is 110', async () => {
    const never = await verifyConnectionToken(
      await hmacToken({ sub: '42', exp: now + 60, expire_at: 0 }),
      SECRET,
    );
    expect(never.expiresAt).toBeUndefined();
    const later = await verifyConnectionToken(await hmacToken({ sub: '42', expire_at: now + 600 }), SECRET);
    expect(later.expiresAt).toBe(now + 600);
    await expectErrorCode(
      verifyConnectionToken(await hmacToken({ sub: '42', expire_at: now - 5 }), SECRET),
      110,
    );
  });
});

describe('verifySubscriptionToken', () => {
  const context = { channel: 'news', user: '42', client: 'c1' };

  it('accepts a matching token', async () => {
    const token = await hmacToken({ sub: '42', channel: 'news', exp: now + 60, info: { role: 'reader' } });
    expect(await verifySubscriptionToken(token, SECRET, context)).toMatchObject({
      expiresAt: now + 60,
      info: { role: 'reader' },
    });
  });

  it('accepts a token bound to this client', async () => {
    const token = await hmacToken({ sub: '42', channel: 'news', client: 'c1' });
    expect((await verifySubscriptionToken(token, SECRET, context)).claims.client).toBe('c1');
  });

  it('answers a bad signature, a malformed token or a wrong alg with 103', async () => {
    await expectErrorCode(
      verifySubscriptionToken(
        await hmacToken({ sub: '42', channel: 'news' }, 'HS256', OTHER),
        SECRET,
        context,
      ),
      103,
    );
    await expectErrorCode(verifySubscriptionToken('not-a-token', SECRET, context), 103);
    const { privateKey } = await generateKeyPair('ES256');
    const es = await new SignJWT({ sub: '42', channel: 'news' })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(privateKey);
    await expectErrorCode(verifySubscriptionToken(es, SECRET, context), 103);
  });

  it('answers an expired token with 109', async () => {
    await expectErrorCode(
      verifySubscriptionToken(await hmacToken({ sub: '42', channel: 'news', exp: now - 1 }), SECRET, context),
      109,
    );
  });

  it('closes with 3500 when channel is missing or differs, sub differs or client differs', async () => {
    const mismatches: JWTPayload[] = [
      { sub: '42' },
      { sub: '42', channel: '' },
      { sub: '42', channel: 'sports' },
      { sub: '43', channel: 'news' },
      { channel: 'news' },
      { sub: '42', channel: 'news', client: 'c2' },
    ];
    for (const claims of mismatches) {
      await expectDisconnect(verifySubscriptionToken(await hmacToken(claims), SECRET, context), 3500);
    }
  });

  it('matches the anonymous user with a token that has no sub', async () => {
    const token = await hmacToken({ channel: 'news' });
    expect(await verifySubscriptionToken(token, SECRET, { ...context, user: '' })).toMatchObject({});
  });
});

describe('token-derived ids that reach PostgreSQL (issue 9)', () => {
  const context = { channel: 'news', user: '42', client: 'c1' };
  // Each would be a `user` PostgreSQL refuses (NUL, error 22021: the whole ingest job fails),
  // stores as another value (a lone surrogate becomes U+FFFD), or an unbounded index key.
  const unstorable = ['a\u0000b', '\u0000', 'x\ud800', '\udc00y', 'u'.repeat(256), '\u20ac'.repeat(86)];

  it('attack: a sub with a NUL, a lone surrogate or over 255 bytes is an invalid token (3500)', async () => {
    for (const sub of unstorable) {
      await expectDisconnect(verifyConnectionToken(await hmacToken({ sub }), SECRET), 3500);
      await expectDisconnect(
        verifySubscriptionToken(await hmacToken({ sub, channel: 'news' }), SECRET, { ...context, user: sub }),
        3500,
      );
    }
    // The bounds themselves are fine: 255 bytes, and any well-formed Unicode.
    expect(
      (await verifyConnectionToken(await hmacToken({ sub: 'u'.repeat(255) }), SECRET)).user,
    ).toHaveLength(255);
    expect(
      (await verifyConnectionToken(await hmacToken({ sub: '\u20ac'.repeat(85) }), SECRET)).user,
    ).toHaveLength(85);
    expect((await verifyConnectionToken(await hmacToken({ sub: 'ok \ud83d\ude00' }), SECRET)).user).toBe(
      'ok \ud83d\ude00',
    );
  });

  it('attack: a malformed client claim in a subscription token is an invalid token (3500)', async () => {
    for (const client of [...unstorable, 42, ['c1'], { id: 'c1' }, true]) {
      const token = await hmacToken({ sub: '42', channel: 'news', client } as JWTPayload);
      await expectDisconnect(verifySubscriptionToken(token, SECRET, context), 3500);
    }
    // Absent or empty still binds the token to no client, as in Centrifugo.
    for (const claims of [{}, { client: '' }]) {
      const token = await hmacToken({ sub: '42', channel: 'news', ...claims });
      await expect(verifySubscriptionToken(token, SECRET, context)).resolves.toBeDefined();
    }
  });

  it('attack: claims nested deeper than the protocol allows are refused (103 here, 3500 on connect)', async () => {
    const deep = rawToken(`{"sub":"42","channel":"news","info":${nested(20_000)}}`);
    await expectErrorCode(verifySubscriptionToken(deep, SECRET, context), 103);
    await expectDisconnect(verifyConnectionToken(rawToken(`{"sub":"42","info":${nested(20_000)}}`), SECRET), 3500);
    await expectDisconnect(verifyConnectionToken(rawToken(`{"sub":"42","x":${nested(64)}}`), SECRET), 3500);
    // The claims object itself is one level: info may nest 63 more.
    const fine = await verifyConnectionToken(rawToken(`{"sub":"42","info":${nested(63)}}`), SECRET);
    expect(JSON.stringify(fine.info)).toBe(nested(63));
  });
});

describe('signToken', () => {
  it('signs connection and subscription tokens that verify', async () => {
    const token = await signToken({ user: '42', secret: SECRET, ttlSeconds: 60, info: { a: 1 } });
    const creds = await verifyConnectionToken(token, SECRET);
    expect(creds.user).toBe('42');
    expect(creds.info).toEqual({ a: 1 });
    expect(creds.claims.exp! - creds.claims.iat!).toBe(60);

    const sub = await signToken({ user: '42', secret: SECRET, channel: 'news' });
    expect(
      (await verifySubscriptionToken(sub, SECRET, { channel: 'news', user: '42', client: 'c' })).expiresAt,
    ).toBeUndefined();
    await expectDisconnect(verifyConnectionToken(sub, SECRET), 3500);
  });
});

/** `depth` arrays, one inside the other, around a 0, as JSON text (JSON.stringify would overflow). */
function nested(depth: number): string {
  return `${'['.repeat(depth)}0${']'.repeat(depth)}`;
}

/** An HS256 token over this payload text, signed by hand: jose would stringify it first. */
function rawToken(payload: string): string {
  const signingInput = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return `${signingInput}.${createHmac('sha256', SECRET).update(signingInput).digest('base64url')}`;
}
