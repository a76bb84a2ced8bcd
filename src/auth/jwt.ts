/**
 * JWT verification and signing for connection and subscription tokens, with Centrifugo's
 * claim rules (PROTOCOL.md F.3) and its mapping of failures onto protocol codes:
 *
 * | token        | expired / not yet valid | bad signature, malformed, wrong alg | claim mismatch |
 * | ------------ | ----------------------- | ----------------------------------- | -------------- |
 * | connection   | error 109               | close 3500                          | close 3500     |
 * | subscription | error 109               | error 103                           | close 3500     |
 *
 * Failures are thrown as ProtocolError (→ error reply) or DisconnectError (→ close), so the
 * gateway maps them at its one boundary. Only the HMAC algorithms HS256/384/512 are accepted,
 * all with the one shared secret: `alg: none` and every asymmetric algorithm are refused before
 * any key is used, which rules out algorithm confusion (an RS256 token "verified" with the
 * secret read as a public key, or an unsigned token).
 */
import { webcrypto } from 'node:crypto';
import { SignJWT, errors, jwtVerify, type JWTPayload } from 'jose';
import { MAX_NESTING_DEPTH, nestingExceeds } from '../protocol/codec.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';
import { MAX_USER_BYTES, isStorableText } from '../protocol/text.js';

/** The algorithms a token may be signed with; anything else is an invalid token. */
export const TOKEN_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

/** The shared HMAC secret (TIDINGS_TOKEN_SECRET), as text or bytes. */
export type TokenSecret = string | Uint8Array;

/** Optional checks: the clock (for tests), and `aud`/`iss` only when configured. */
export interface VerifyOptions {
  now?: Date;
  audience?: string | string[];
  issuer?: string | string[];
}

/** What a valid connection token grants. */
export interface ConnectionCredentials {
  /** `sub`; '' for an anonymous connection (whether that is allowed is policy, decided later). */
  user: string;
  /** Unix seconds after which the connection must refresh: `expire_at` if set (0 → never), else `exp`. */
  expiresAt?: number;
  /** The `info` claim: becomes `conn_info` in presence, join/leave and publications. */
  info?: unknown;
  /** Server-side subscriptions requested by the `channels` claim. */
  channels?: string[];
  /** Every claim as verified, for policy code that needs more. */
  claims: JWTPayload;
}

/** What the subscriber must match: the channel it asks for, its user and its client id. */
export interface SubscriptionContext {
  channel: string;
  user: string;
  client: string;
}

/** What a valid subscription token grants. */
export interface SubscriptionGrant {
  /** Unix seconds after which the subscription must be refreshed (`expire_at` overrides `exp`). */
  expiresAt?: number;
  /** The `info` claim: becomes `chan_info`. */
  info?: unknown;
  claims: JWTPayload;
}

/**
 * Verifies a connection token. Throws ProtocolError 109 when it is expired or not yet valid
 * (the client fetches a new token and reconnects), ProtocolError 110 when `expire_at` is past,
 * and DisconnectError 3500 for everything else that is wrong, including a `channel` claim
 * (which only subscription tokens may carry, so one cannot be replayed as the other) and a
 * `sub` that is not a storable user id. The `channels` claim is only checked to be a list of
 * strings here; the gateway checks the names against its namespaces and limits.
 * The third argument may be a Date, taken as `now`.
 */
export async function verifyConnectionToken(
  token: string,
  secret: TokenSecret,
  options: VerifyOptions | Date = {},
): Promise<ConnectionCredentials> {
  const opts = options instanceof Date ? { now: options } : options;
  const claims = await verifyJwt(token, secret, opts, invalidToken);
  if (claims.channel !== undefined && claims.channel !== '')
    throw invalidToken('channel claim in a connection token');
  const channels = claims.channels;
  if (channels !== undefined && !isStringArray(channels))
    throw invalidToken('channels claim is not a list of strings');
  return {
    user: subjectOf(claims),
    ...optional('expiresAt', expiryOf(claims, opts)),
    ...optional('info', claims.info),
    ...optional('channels', channels),
    claims,
  };
}

/**
 * Verifies a subscription token for `context`. Throws ProtocolError 103 when the token does not
 * verify at all (bad signature, malformed, wrong algorithm, `aud`/`iss`), ProtocolError 109
 * when it is expired or not yet valid, ProtocolError 110 when `expire_at` is past, and
 * DisconnectError 3500 when it verifies but was issued for another channel, user or client.
 */
export async function verifySubscriptionToken(
  token: string,
  secret: TokenSecret,
  context: SubscriptionContext & VerifyOptions,
): Promise<SubscriptionGrant> {
  const claims = await verifyJwt(
    token,
    secret,
    context,
    (detail) => new ProtocolError(Errors.permissionDenied, detail),
  );
  if (typeof claims.channel !== 'string' || claims.channel === '') throw invalidToken('no channel claim');
  if (claims.channel !== context.channel)
    throw invalidToken('token channel differs from the subscribed channel');
  if (subjectOf(claims) !== context.user) throw invalidToken('token sub differs from the connection user');
  const client = clientOf(claims);
  if (client !== undefined && client !== context.client) {
    throw invalidToken('token client differs from the connection client');
  }
  return { ...optional('expiresAt', expiryOf(claims, context)), ...optional('info', claims.info), claims };
}

/** What to put in a new token. */
export interface SignTokenOptions {
  /** `sub`; '' makes an anonymous token (no `sub`). */
  user: string;
  secret: TokenSecret;
  /** Lifetime in seconds from `now`; without it the token has no `exp`. */
  ttlSeconds?: number;
  /** Makes it a subscription token for this channel. */
  channel?: string;
  /** Binds a subscription token to one client id. */
  client?: string;
  /** The `info` claim (any JSON). */
  info?: unknown;
  /** Connection tokens: server-side subscriptions (the `channels` claim). */
  channels?: string[];
  now?: Date;
}

/** Signs an HS256 token with `sub`, `iat`, and `exp`/`channel`/`client`/`info` when given. */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const iat = unixSeconds(options.now);
  const claims: JWTPayload = {
    ...optional('channel', options.channel),
    ...optional('client', options.client),
    ...optional('info', options.info),
    ...optional('channels', options.channels),
  };
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt(iat);
  if (options.user !== '') jwt.setSubject(options.user);
  if (options.ttlSeconds !== undefined) jwt.setExpirationTime(iat + options.ttlSeconds);
  return jwt.sign(secretBytes(options.secret));
}

/**
 * Checks signature, algorithm and the time claims (`exp`, `nbf`, without leeway, as
 * Centrifugo), plus `aud`/`iss` when asked. A time failure becomes 109; any other failure goes
 * through `onInvalid`, because what "invalid" means differs between token kinds.
 */
async function verifyJwt(
  token: string,
  secret: TokenSecret,
  options: VerifyOptions,
  onInvalid: (detail: string) => Error,
): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, (header) => verificationKey(secret, header.alg), {
      algorithms: [...TOKEN_ALGORITHMS],
      ...optional('currentDate', options.now),
      ...optional('audience', options.audience),
      ...optional('issuer', options.issuer),
    });
    if (claimsNestTooDeep(token)) throw new Error(`claims nested deeper than ${MAX_NESTING_DEPTH}`);
    return payload;
  } catch (err) {
    if (isTimeFailure(err)) throw new ProtocolError(Errors.tokenExpired, (err as Error).message);
    throw onInvalid(err instanceof Error ? err.message : String(err));
  }
}

/**
 * The payload's text against the protocol's depth cap. `info` is any JSON and is written out
 * again in replies, presence and publications, and JSON.stringify is recursive: a signed
 * token whose `info` nested 20,000 deep failed every connect with a temporary internal error
 * (retried forever by the SDK) instead of being refused as the bad token it is.
 */
function claimsNestTooDeep(token: string): boolean {
  const payload = token.split('.')[1] ?? '';
  return nestingExceeds(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** `exp` in the past, or `nbf` in the future: the token was good or will be, just not now. */
function isTimeFailure(err: unknown): boolean {
  if (err instanceof errors.JWTExpired) return true;
  return (
    err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf' && err.reason === 'check_failed'
  );
}

/**
 * `sub` as the user id: absent or '' is anonymous; anything but a string is invalid, and so
 * is one PostgreSQL could not store as given in the publications' `user` column (a NUL, a
 * lone surrogate, over MAX_USER_BYTES): such a user would fail the ingest job of every
 * publication it makes, or be stored as another user's id (issue 9).
 */
function subjectOf(claims: JWTPayload): string {
  if (claims.sub === undefined) return '';
  if (typeof claims.sub !== 'string') throw invalidToken('sub claim is not a string');
  if (!isStorableText(claims.sub, MAX_USER_BYTES)) throw invalidToken('sub claim is not a storable user id');
  return claims.sub;
}

/**
 * A subscription token's `client`: absent or '' binds it to no client (as in Centrifugo);
 * anything else must be a storable string. Client ids are UUIDs minted here, so an
 * unstorable one could never match; it is refused as malformed all the same, with the
 * same rule as `sub`, rather than left to a comparison to reject.
 */
function clientOf(claims: JWTPayload): string | undefined {
  const client = claims.client;
  if (client === undefined || client === '') return undefined;
  if (typeof client !== 'string' || !isStorableText(client, MAX_USER_BYTES)) {
    throw invalidToken('client claim is not a client id');
  }
  return client;
}

/**
 * When the connection or subscription expires: `expire_at` overrides `exp` (0 = never), as in
 * Centrifugo. An `expire_at` already past is error 110 "expired" (not 109: a new token with the
 * same `expire_at` would not help).
 */
function expiryOf(claims: JWTPayload, options: VerifyOptions): number | undefined {
  const expireAt = claims.expire_at;
  if (expireAt === undefined) return claims.exp;
  if (typeof expireAt !== 'number' || !Number.isFinite(expireAt) || expireAt < 0) {
    throw invalidToken('expire_at claim is not a non-negative number');
  }
  if (expireAt === 0) return undefined;
  if (expireAt <= unixSeconds(options.now))
    throw new ProtocolError(Errors.expired, 'expire_at is in the past');
  return expireAt;
}

function invalidToken(detail: string): DisconnectError {
  return new DisconnectError(Disconnect.InvalidToken, detail);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function unixSeconds(now: Date = new Date()): number {
  return Math.floor(now.getTime() / 1000);
}

const encoder = new TextEncoder();

function secretBytes(secret: TokenSecret): Uint8Array {
  return typeof secret === 'string' ? encoder.encode(secret) : secret;
}

/**
 * The secret as a WebCrypto key for the token's algorithm, imported once per secret and
 * algorithm. Given raw bytes, jose imports a key on every verification, which cost as much
 * CPU as the verification itself (~100 µs against ~40 µs per token here): a reconnect storm
 * verifies thousands at once. Only a string secret is cached (bytes may be mutated); the
 * algorithm has already been checked against TOKEN_ALGORITHMS by then.
 */
const importedKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
const MAX_CACHED_KEYS = 16;

function verificationKey(secret: TokenSecret, alg: string | undefined): Promise<webcrypto.CryptoKey> | Uint8Array {
  const hash = HMAC_HASHES[alg as (typeof TOKEN_ALGORITHMS)[number]];
  if (typeof secret !== 'string' || hash === undefined) return secretBytes(secret);
  const id = `${alg}:${secret}`;
  let key = importedKeys.get(id);
  if (!key) {
    if (importedKeys.size >= MAX_CACHED_KEYS) importedKeys.clear();
    key = webcrypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash }, false, ['verify']);
    importedKeys.set(id, key);
  }
  return key;
}

const HMAC_HASHES: Record<(typeof TOKEN_ALGORITHMS)[number], string> = {
  HS256: 'SHA-256',
  HS384: 'SHA-384',
  HS512: 'SHA-512',
};

/** `{[key]: value}` when value is defined, else `{}`: keeps absent optional fields absent. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
