/**
 * `POST /api/<method>` (CFG `internal/app/mux.go`, `internal/api/handler.go`). In order:
 *
 *   not POST                      → 405, empty body (Centrifugo's Post middleware runs first)
 *   wrong, missing or no key      → 401, empty body
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
import { encodeOutcome, type ApiDispatcher } from './dispatch.js';
import { httpStatusOf } from './errors.js';
import { readBody, sendJsonText, sendStatus, sendText, wantsTransportErrors } from './io.js';
import { isObject, type Params } from './params.js';

export type Authorize = (headers: IncomingHttpHeaders) => boolean;

/**
 * The checks every API endpoint starts with. Returns the body, or undefined once it has
 * answered (405, 401, 413).
 */
export async function admit(req: IncomingMessage, res: ServerResponse, authorize: Authorize): Promise<Buffer | undefined> {
  if (req.method !== 'POST') {
    sendStatus(res, 405, { allow: 'POST' });
    return undefined;
  }
  if (!authorize(req.headers)) {
    sendStatus(res, 401);
    return undefined;
  }
  const read = await readBody(req);
  if (!read.ok) {
    sendText(res, read.status, 'Request Entity Too Large');
    return undefined;
  }
  return read.body;
}

function parseParams(body: Buffer): Params | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function methodEndpoint(api: ApiDispatcher, method: string, authorize: Authorize): RouteHandler {
  return async (req, res) => {
    const body = await admit(req, res, authorize);
    if (body === undefined) return;
    const params = parseParams(body);
    if (!params) return sendText(res, 400, 'Bad Request');
    const outcome = await api.run(method, params);
    if (!outcome.ok && method !== 'batch' && wantsTransportErrors(req)) {
      return sendJsonText(res, httpStatusOf(outcome.error.code), JSON.stringify(outcome.error));
    }
    sendJsonText(res, 200, encodeOutcome(outcome));
  };
}
