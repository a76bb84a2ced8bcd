/**
 * Errors of the server HTTP API, as Centrifugo's API defines them (CFG
 * `internal/apiproto/errors.go`): the codes are the client protocol's, but some messages
 * differ (104 is "not found", 113 "conflict"), and there is no `temporary` flag.
 *
 * Every API method throws `ApiError` (or lets a `ProtocolError` from a shared service, such as
 * the ingest client's timeout, pass through); `apiErrorOf` is the one mapping to the wire
 * (STYLE habit 7) and never leaks an internal error's text.
 */
import { ProtocolError } from '../protocol/codes.js';

export interface ApiErrorBody {
  readonly code: number;
  readonly message: string;
}

export const ApiErrors = {
  /** Server fault (a store did not answer, the publish was not acknowledged in time). */
  internal: { code: 100, message: 'internal server error' },
  /** The channel's namespace is not configured. */
  unknownChannel: { code: 102, message: 'unknown channel' },
  /** Unknown method inside a batch or on the legacy endpoint. */
  notFound: { code: 104, message: 'not found' },
  /** Malformed params: a missing or empty field, a wrong type, binary data in JSON mode. */
  badRequest: { code: 107, message: 'bad request' },
  /** The feature is off for the namespace (history, presence) or not supported by Tidings. */
  notAvailable: { code: 108, message: 'not available' },
  /** History `since` carries another epoch than the channel's. */
  unrecoverablePosition: { code: 112, message: 'unrecoverable position' },
  /** Centrifugo's code for a conflicting map write; unused by Tidings, mapped for completeness. */
  conflict: { code: 113, message: 'conflict' },
} as const satisfies Record<string, ApiErrorBody>;

/** Thrown by API methods. `detail` goes to logs only; the caller sees the fixed message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly error: ApiErrorBody,
    readonly detail?: string,
  ) {
    super(detail === undefined ? error.message : `${error.message}: ${detail}`);
  }
}

/** Whether the error is one we meant to answer with (anything else is a bug or an outage: log it). */
export function isExpectedError(err: unknown): boolean {
  return err instanceof ApiError || (err instanceof ProtocolError && err.error.code !== ApiErrors.internal.code);
}

/** The one mapping from a thrown value to the `error` object of an API reply. */
export function apiErrorOf(err: unknown): ApiErrorBody {
  if (err instanceof ApiError) return err.error;
  if (err instanceof ProtocolError) {
    const known = Object.values(ApiErrors).find((e) => e.code === err.error.code);
    return known ?? { code: err.error.code, message: err.error.message };
  }
  return ApiErrors.internal;
}

/**
 * HTTP status of an error in transport error mode (`X-Centrifugo-Error-Mode: transport`),
 * as CFG `apiproto.MapErrorToHTTPCode`: unmapped codes are 500, like Centrifugo.
 */
export function httpStatusOf(code: number): number {
  switch (code) {
    case 102:
    case 104:
      return 404;
    case 107:
    case 108:
      return 400;
    case 112:
      return 416;
    case 113:
      return 409;
    default:
      return 500;
  }
}
