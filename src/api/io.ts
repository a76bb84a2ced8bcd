/**
 * HTTP plumbing shared by the API endpoints: a bounded body reader and the few response
 * shapes the API uses. Status-only answers (401, 405) have an empty body, as Centrifugo's
 * middlewares write them, and a client that checks only the status needs nothing else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Largest request body the API reads (a batch of publications fits; a runaway client does not). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Past the limit, the rest of a body is read and dropped (so the client reads our 413 rather
 * than a reset connection), up to this much; beyond it the connection is cut.
 */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES;

export type BodyResult = { ok: true; body: Buffer } | { ok: false; status: 413 };

export function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? 0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = declared > maxBytes;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) tooLarge = true;
      if (size > DRAIN_LIMIT_BYTES) req.destroy();
      else if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? { ok: false, status: 413 } : { ok: true, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    // Cut past the drain limit: 'end' never comes; the 413 goes nowhere, the promise settles.
    req.on('close', () => resolve({ ok: false, status: 413 }));
  });
}

/** A status with an empty body (401, 405). */
export function sendStatus(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': 0, ...headers });
  res.end();
}

/** A plain-text error (400, 413, 503), like Go's `http.Error`. */
export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Already-encoded JSON text. */
export function sendJsonText(res: ServerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/** The request asked for errors as HTTP statuses (CFG `handler.go` `useTransportErrorMode`). */
export function wantsTransportErrors(req: IncomingMessage): boolean {
  const mode = req.headers['x-centrifugo-error-mode'];
  return typeof mode === 'string' && mode.trim().toLowerCase() === 'transport';
}
