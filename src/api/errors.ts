/**
 * Errors of the server HTTP API, as Centrifugo's API defines them (CFG
 * `internal/apiproto/errors.go`): the client protocol's codes, from its one table
 * (src/protocol/codes.ts), with the API's own wording where it differs (104 is "not found",
 * 113 "conflict") and no `temporary` flag.
 *
 * Every API method throws `ApiError` (or lets a `ProtocolError` from a shared service, such as
 * the ingest client's timeout, pass through); `apiErrorOf` is the one mapping to the wire
 * (STYLE habit 7) and never leaks an internal error's text.
 */
import { ApiErrorVariants, Errors, ProtocolError, type ErrorBody } from '../protocol/codes.js';

export interface ApiErrorBody {
  readonly code: number;
  readonly message: string;
}

/** A protocol error as the API answers it: the API's own message where it has one, no `temporary`. */
function apiBodyOf(error: ErrorBody): ApiErrorBody {
  const variant = ApiErrorVariants[error.code as keyof typeof ApiErrorVariants];
  return { code: error.code, message: variant?.message ?? error.message };
}

/** The codes API methods throw, by name. */
export const ApiErrors = {
  /** Server fault (a store did not answer, the publish was not acknowledged in time). */
  internal: apiBodyOf(Errors.internal),
  /** The channel's namespace is not configured. */
  unknownChannel: apiBodyOf(Errors.unknownChannel),
  /** Unknown method inside a batch or on the legacy endpoint. */
  notFound: apiBodyOf(Errors.methodNotFound),
  /** Malformed params: a missing or empty field, a wrong type, binary data in JSON mode. */
  badRequest: apiBodyOf(Errors.badRequest),
  /** The feature is off for the namespace (history, presence) or not supported by Tidings. */
  notAvailable: apiBodyOf(Errors.notAvailable),
  /** A batch's replies passed their byte bound: the command was not run (src/api/batch.ts). */
  limitExceeded: apiBodyOf(Errors.limitExceeded),
  /** History `since` carries another epoch than the channel's. */
  unrecoverablePosition: apiBodyOf(Errors.unrecoverablePosition),
  /** Centrifugo's code for a conflicting map write; unused by Tidings, mapped for completeness. */
  conflict: apiBodyOf(Errors.concurrentPagination),
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
  return err instanceof ApiError || (err instanceof ProtocolError && err.error.code !== Errors.internal.code);
}

/** The one mapping from a thrown value to the `error` object of an API reply. */
export function apiErrorOf(err: unknown): ApiErrorBody {
  if (err instanceof ApiError) return err.error;
  if (err instanceof ProtocolError) return apiBodyOf(err.error);
  return ApiErrors.internal;
}

/** HTTP status of an error in transport error mode: unmapped codes are 500, like Centrifugo. */
export function httpStatusOf(code: number): number {
  return ApiErrorVariants[code as keyof typeof ApiErrorVariants]?.httpStatus ?? 500;
}
