/**
 * Every code Tidings puts on the wire, as data: reply error codes (100–113), WebSocket close
 * codes (3000–3499 reconnect, 3500–3999 terminal) and unsubscribe push codes (2000 stay
 * unsubscribed, ≥ 2500 resubscribe). The numbers, messages and reasons are those of the Go
 * server library `centrifugal/centrifuge` (`errors.go`, `disconnect.go`, `unsubscribe.go`), so
 * the unmodified centrifuge-js SDK reacts as the doc line of each entry says (PROTOCOL.md E).
 *
 * Errors are mapped to the wire at one boundary per surface (STYLE habit 7): command handlers
 * throw `ProtocolError` (→ an error reply) or `DisconnectError` (→ a close frame), and
 * `replyErrorOf` turns anything else into 100 without leaking its text. The server HTTP API
 * shares the error codes (`ApiErrorVariants` says where it words or maps them differently).
 *
 * Pure data and two small classes; imports nothing.
 */

/** An error as it appears in a reply: `{"code":C,"message":"…","temporary":true?}`. */
export interface ErrorBody {
  readonly code: number;
  readonly message: string;
  /** Only present (and true) for errors the client retries by itself; Go omits false. */
  readonly temporary?: true;
}

/** A WebSocket close code with its reason (the close frame, or a `disconnect` push). */
export interface DisconnectInfo {
  readonly code: number;
  readonly reason: string;
}

/** An `unsubscribe` push payload: `{"code":C,"reason":"…"}`. */
export interface UnsubscribeInfo {
  readonly code: number;
  readonly reason: string;
}

/** Reply error codes by name. */
export const ErrorCode = {
  Internal: 100,
  Unauthorized: 101,
  UnknownChannel: 102,
  PermissionDenied: 103,
  MethodNotFound: 104,
  AlreadySubscribed: 105,
  LimitExceeded: 106,
  BadRequest: 107,
  NotAvailable: 108,
  TokenExpired: 109,
  Expired: 110,
  TooManyRequests: 111,
  UnrecoverablePosition: 112,
  ConcurrentPagination: 113,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/*
 * How centrifuge-js reacts depends on the command the error answers (PROTOCOL.md E.1):
 * - "temporary" (and any code < 100): connect → reconnect with backoff; subscribe → resubscribe
 *   with backoff; refresh / sub_refresh → retry after 5–10 s / 10–20 s; calls → promise rejects.
 * - any other code: connect → `disconnected` with this code, no reconnect; subscribe →
 *   `unsubscribed` with this code, no retry; refresh → terminal disconnect; sub_refresh →
 *   unsubscribed; unsubscribe → the whole client reconnects (so never answer unsubscribe with
 *   an error); publish / history / presence / presence_stats / rpc → only the promise rejects.
 * Each entry's doc line says what differs from that rule, or when the server sends it.
 */
export const Errors = {
  /** Server fault. Temporary: the client retries connect/subscribe with backoff. */
  internal: { code: 100, message: 'internal server error', temporary: true },
  /** Not authenticated. On connect the client stops (terminal disconnect 101). */
  unauthorized: { code: 101, message: 'unauthorized' },
  /** Unknown namespace. Subscribe → `unsubscribed` 102; publish/history → promise rejects. */
  unknownChannel: { code: 102, message: 'unknown channel' },
  /** No right, or a subscription token with a bad signature. Subscribe → `unsubscribed` 103. */
  permissionDenied: { code: 103, message: 'permission denied' },
  /** Unknown RPC method. The rpc promise rejects. */
  methodNotFound: { code: 104, message: 'method not found' },
  /** Duplicate subscribe on one connection. Subscribe → `unsubscribed` 105. */
  alreadySubscribed: { code: 105, message: 'already subscribed' },
  /** Over the channels-per-connection limit. Subscribe → `unsubscribed` 106. */
  limitExceeded: { code: 106, message: 'limit exceeded' },
  /** Malformed input (bad channel name, bad data). The call fails; subscribe → unsubscribed. */
  badRequest: { code: 107, message: 'bad request' },
  /** Feature off (history, presence, rpc, subscribe `type` ≠ 0). The call fails. */
  notAvailable: { code: 108, message: 'not available' },
  /** Token expired. Connect → getToken and reconnect; subscribe → clear token, getToken, resubscribe. */
  tokenExpired: { code: 109, message: 'token expired' },
  /** `expire_at` already in the past. Terminal for connect; subscribe → unsubscribed 110. */
  expired: { code: 110, message: 'expired' },
  /** Rate limited. Temporary: the client retries with backoff. */
  tooManyRequests: { code: 111, message: 'too many requests', temporary: true },
  /** History `since` with another epoch, or subscribe with flag 2 that could not recover: getState clients reset and resubscribe. */
  unrecoverablePosition: { code: 112, message: 'unrecoverable position' },
  /** Map subscriptions only (unused by Tidings). Temporary. */
  concurrentPagination: { code: 113, message: 'concurrent pagination', temporary: true },
} as const satisfies Record<string, ErrorBody>;

/**
 * The server HTTP API answers with the same codes (CFG `internal/apiproto/errors.go`), without
 * the `temporary` flag, with two messages of its own, and, in transport error mode
 * (`X-Centrifugo-Error-Mode: transport`), an HTTP status per code (CFG
 * `apiproto.MapErrorToHTTPCode`; a code not listed is 500). src/api/errors.ts maps from here.
 */
export const ApiErrorVariants: Readonly<
  Partial<Record<ErrorCode, { message?: string; httpStatus: number }>>
> = {
  102: { httpStatus: 404 },
  104: { message: 'not found', httpStatus: 404 },
  107: { httpStatus: 400 },
  108: { httpStatus: 400 },
  112: { httpStatus: 416 },
  113: { message: 'conflict', httpStatus: 409 },
};

/** Close codes by name. */
export const DisconnectCode = {
  ConnectionClosed: 3000,
  Shutdown: 3001,
  ServerError: 3004,
  Expired: 3005,
  SubExpired: 3006,
  Slow: 3008,
  WriteError: 3009,
  InsufficientState: 3010,
  ForceReconnect: 3011,
  NoPong: 3012,
  TooManyRequests: 3013,
  StateInvalidated: 3014,
  InvalidToken: 3500,
  BadRequest: 3501,
  Stale: 3502,
  ForceNoReconnect: 3503,
  ConnectionLimit: 3504,
  ChannelLimit: 3505,
  InappropriateProtocol: 3506,
  PermissionDenied: 3507,
  NotAvailable: 3508,
  TooManyErrors: 3509,
} as const;
export type DisconnectCode = (typeof DisconnectCode)[keyof typeof DisconnectCode];

/**
 * Close codes with their reasons. 3000–3499 make centrifuge-js go to `connecting` and
 * reconnect with backoff; 3500–3999 make it go to `disconnected` with that code and stay there.
 * The reason must be non-empty and must not parse as JSON, or the client ignores the range
 * (PROTOCOL.md E.3); `isValidCloseReason` checks that.
 */
export const Disconnect = {
  /** Closed without advice (never sent by Go). Client reconnects. */
  ConnectionClosed: { code: 3000, reason: 'connection closed' },
  /** This node is shutting down. Client reconnects (to another node). */
  Shutdown: { code: 3001, reason: 'shutdown' },
  /** Internal failure while serving the connection. Client reconnects. */
  ServerError: { code: 3004, reason: 'internal server error' },
  /** Connection token expired and no refresh came within the grace. Client gets a new token and reconnects. */
  Expired: { code: 3005, reason: 'connection expired' },
  /** A subscription's token expired without sub_refresh. Client reconnects. */
  SubExpired: { code: 3006, reason: 'subscription expired' },
  /** The client does not read fast enough (write queue over its bound). Client reconnects and recovers. */
  Slow: { code: 3008, reason: 'slow' },
  /** Writing to the socket failed. Client reconnects. */
  WriteError: { code: 3009, reason: 'write error' },
  /** The server found a gap in what it delivered. Client reconnects and recovers from its position. */
  InsufficientState: { code: 3010, reason: 'insufficient state' },
  /** Server-initiated reconnect. Client reconnects. */
  ForceReconnect: { code: 3011, reason: 'force reconnect' },
  /** No pong within the pong timeout after a server ping. Client reconnects. */
  NoPong: { code: 3012, reason: 'no pong' },
  /** Rate limited at the connection level. Client reconnects with backoff. */
  TooManyRequests: { code: 3013, reason: 'too many requests' },
  /** Client clears its token (when getToken is set) and every recovery position, then reconnects. */
  StateInvalidated: { code: 3014, reason: 'state invalidated' },
  /** Bad, malformed or mismatching token. Terminal: client stays disconnected with 3500. */
  InvalidToken: { code: 3500, reason: 'invalid token' },
  /** Protocol violation (command before connect, undecodable command…). Terminal. */
  BadRequest: { code: 3501, reason: 'bad request' },
  /** No connect command within the stale timeout. Terminal. */
  Stale: { code: 3502, reason: 'stale' },
  /** Disconnected by the server API (`/api/disconnect` default). Terminal. */
  ForceNoReconnect: { code: 3503, reason: 'force disconnect' },
  /** Too many connections (per user or overall). Terminal. */
  ConnectionLimit: { code: 3504, reason: 'connection limit' },
  /** Too many channels on one connection. Terminal. */
  ChannelLimit: { code: 3505, reason: 'channel limit' },
  /** The client would receive what its protocol cannot carry (e.g. non-JSON data in JSON mode). Terminal. */
  InappropriateProtocol: { code: 3506, reason: 'inappropriate protocol' },
  /** The connection lost its rights. Terminal. */
  PermissionDenied: { code: 3507, reason: 'permission denied' },
  /** A feature the client relies on is off (e.g. `send` with no handler). Terminal. */
  NotAvailable: { code: 3508, reason: 'not available' },
  /** Too many error replies on one connection. Terminal. */
  TooManyErrors: { code: 3509, reason: 'too many errors' },
} as const satisfies Record<keyof typeof DisconnectCode, DisconnectInfo>;

/** Unsubscribe push codes by name. */
export const UnsubscribeCode = {
  ServerUnsubscribe: 2000,
  InsufficientState: 2500,
  SubscriptionExpired: 2501,
  StateInvalidated: 2502,
} as const;
export type UnsubscribeCode = (typeof UnsubscribeCode)[keyof typeof UnsubscribeCode];

/**
 * Unsubscribe push payloads. Below 2500 the subscription goes to `unsubscribed` and stays;
 * from 2500 up it goes back to `subscribing` and resubscribes at once, with recovery. The
 * server must drop the subscription from its own state *before* sending the push, or the
 * resubscribe meets 105 (PROTOCOL.md C).
 */
export const Unsubscribe = {
  /** Server API unsubscribe. Client subscription goes to `unsubscribed` and stays there. */
  ServerUnsubscribe: { code: 2000, reason: 'server unsubscribe' },
  /** Server found a gap for this subscriber. Client resubscribes and recovers from its position. */
  InsufficientState: { code: 2500, reason: 'insufficient state' },
  /** Subscription token expired. Client resubscribes (getting a fresh token). */
  SubscriptionExpired: { code: 2501, reason: 'subscription expired' },
  /** Client clears its token and position (epoch "_"), then resubscribes; recovery fails on purpose. */
  StateInvalidated: { code: 2502, reason: 'state invalidated' },
} as const satisfies Record<keyof typeof UnsubscribeCode, UnsubscribeInfo>;

/**
 * Whether centrifuge-js reconnects after a close with this code and a valid reason:
 * 3000–3499, 4000–4499 and ≥ 5000 reconnect; 3500–3999 and 4500–4999 are terminal
 * (GO `disconnect.go` `isReconnect`, JS:5495-5575). Below 3000 only 1009 is terminal.
 */
export function isReconnectCode(code: number): boolean {
  if (code < 3000) return code !== 1009;
  return code < 3500 || code >= 5000 || (code >= 4000 && code < 4500);
}

/** Whether an unsubscribe push with this code makes the client resubscribe (≥ 2500). */
export function isResubscribeCode(code: number): boolean {
  return code >= 2500;
}

/** The WebSocket limit on a close reason is 123 bytes (RFC 6455 §5.5: 125 minus the code). */
export const MAX_CLOSE_REASON_BYTES = 122;

/**
 * A reason centrifuge-js reads as we mean it: non-empty (an empty reason makes terminal codes
 * reconnect), at most 122 UTF-8 bytes (WebSocket control frame limit), and not parseable as
 * JSON (a JSON reason takes the legacy `{reason, reconnect}` branch and ignores the range).
 */
export function isValidCloseReason(reason: string): boolean {
  if (reason.length === 0 || Buffer.byteLength(reason, 'utf8') > MAX_CLOSE_REASON_BYTES) return false;
  try {
    JSON.parse(reason);
    return false;
  } catch {
    return true;
  }
}

/**
 * A close intent for a code with a caller-supplied reason (e.g. from the server API), falling
 * back to the known reason for the code, or a generic one, when the given reason would be
 * misread by the client (see `isValidCloseReason`).
 */
export function makeDisconnect(code: number, reason?: string): DisconnectInfo {
  if (reason !== undefined && isValidCloseReason(reason)) return { code, reason };
  const known = Object.values(Disconnect).find((d) => d.code === code);
  return { code, reason: known?.reason ?? (isReconnectCode(code) ? 'reconnect' : 'disconnect') };
}

/** The reply error for a known code, or undefined. */
export function errorByCode(code: number): ErrorBody | undefined {
  return Object.values(Errors).find((e) => e.code === code);
}

/**
 * Thrown by a command handler to answer the command with an error reply. `detail` is for
 * logs only; the client sees just the code's fixed message (habit 7: no internal text leaks).
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly error: ErrorBody,
    readonly detail?: string,
  ) {
    super(detail === undefined ? error.message : `${error.message}: ${detail}`);
  }
}

/**
 * Thrown (or returned) to close the connection with a close code and reason instead of
 * replying. `detail` is for logs only; the close frame carries `disconnect.reason`.
 */
export class DisconnectError extends Error {
  override name = 'DisconnectError';
  constructor(
    readonly disconnect: DisconnectInfo,
    readonly detail?: string,
  ) {
    super(detail === undefined ? disconnect.reason : `${disconnect.reason}: ${detail}`);
  }

  /** Whether the client will reconnect after this close. */
  get reconnect(): boolean {
    return isReconnectCode(this.disconnect.code);
  }
}

/**
 * The one mapping from a thrown value to the error a reply carries: a ProtocolError's own
 * code, anything else 100 "internal server error" (the cause belongs in the log, not on the
 * wire). DisconnectError is not a reply; callers check for it first.
 */
export function replyErrorOf(err: unknown): ErrorBody {
  return err instanceof ProtocolError ? err.error : Errors.internal;
}
