/**
 * `POST /api/<method>` (CFG `internal/app/mux.go`, `internal/api/handler.go`). In order:
 *
 *   not POST                      → 405, empty body (Centrifugo's Post middleware runs first)
 *   wrong, missing or no key      → 401, empty body
 *   no slot in time (./limit.ts)  → 503 with Retry-After, plain text; the request did not run
 *   body over MAX_BODY_BYTES      → 413, plain text
 *   body not a JSON object        → 400, plain text (an empty body too, as in Centrifugo)
 *   otherwise                     → 200 with {"result":…} or {"error":{"code","message"}}
 *
 * With `X-Centrifugo-Error-Mode: transport`, an error is an HTTP status instead, with a bare
 * `{"code","message"}` body (errors.ts `httpStatusOf`); `batch` answers 200 regardless, since
 * its errors are per command, as in Centrifugo. An unknown method is a path no route
 * matches: the HTTP server's 404, as in Centrifugo, where each method is its own route.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RouteHandler } from '../http/server.js';
import { metrics } from '../observability/metrics.js';
import { nestingExceeds } from '../protocol/codec.js';
import { encodeOutcome, type ApiDispatcher } from './dispatch.js';
import { httpStatusOf } from './errors.js';
import { readBody, sendJsonText, sendStatus, sendText, wantsTransportErrors } from './io.js';
import type { Release, RequestLimiter } from './limit.js';
import { isObject, type Params } from './params.js';

export type Authorize = (headers: IncomingHttpHeaders) => boolean;

/** What every API endpoint checks before it runs: the key, and a slot. */
export interface Guard {
  authorize: Authorize;
  limiter: RequestLimiter;
}

/** Seconds a 503 asks the client to wait before it repeats the request (RFC 9110 §10.2.3). */
export const RETRY_AFTER_S = 1;

/** The body of an endpoint, run once the request was admitted (its slot is freed after). */
export type Endpoint = (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

/**
 * Every API endpoint: 405 and 401 first (cheap, and an unauthenticated flood must not take
 * the slots of the backends that have the key), then a slot (503 when none in time), then
 * the body (413), then `endpoint`. The body is read only once a slot is held, so memory is
 * bounded by the running requests, not the queued ones.
 */
export function guarded(guard: Guard, endpoint: Endpoint): RouteHandler {
  return async (req, res) => {
    if (req.method !== 'POST') return sendStatus(res, 405, { allow: 'POST' });
    if (!guard.authorize(req.headers)) return sendStatus(res, 401);
    const release = await slot(guard.limiter, res);
    if (!release) return;
    try {
      const read = await readBody(req);
      if (!read.ok) return sendText(res, read.status, 'Request Entity Too Large');
      await endpoint(req, res, read.body);
    } finally {
      release();
    }
  };
}

/** A slot, or undefined once the request was answered 503 (or its client went away). */
async function slot(limiter: RequestLimiter, res: ServerResponse): Promise<Release | undefined> {
  const got = await limiter.acquire((drop) => res.once('close', drop));
  if (typeof got === 'function') return got;
  metrics.apiOverloaded.inc({ reason: got });
  sendText(res, 503, 'Service Unavailable', { 'retry-after': String(RETRY_AFTER_S) });
  return undefined;
}

/**
 * The body as a params object; undefined (400) when it is not one, or when it nests deeper
 * than the client protocol allows (MAX_NESTING_DEPTH): later walks of the value
 * (JSON.stringify, validation) are recursive, and a 1 MiB body can nest 500,000 levels.
 */
function parseParams(body: Buffer): Params | undefined {
  const text = body.toString('utf8');
  if (nestingExceeds(text)) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function methodEndpoint(api: ApiDispatcher, method: string, guard: Guard): RouteHandler {
  return guarded(guard, async (req, res, body) => {
    const params = parseParams(body);
    if (!params) return sendText(res, 400, 'Bad Request');
    const outcome = await api.run(method, params);
    if (!outcome.ok && method !== 'batch' && wantsTransportErrors(req)) {
      return sendJsonText(res, httpStatusOf(outcome.error.code), JSON.stringify(outcome.error));
    }
    sendJsonText(res, 200, encodeOutcome(outcome));
  });
}
