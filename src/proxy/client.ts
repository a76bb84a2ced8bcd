/**
 * Calls to the app's backend in Centrifugo's HTTP proxy format (issue 14), so a backend
 * written for Centrifugo works unchanged: a JSON POST per event, answered by
 * `{"result": {...}}`, `{"error": {"code", "message", "temporary"?}}` or
 * `{"disconnect": {"code", "reason"}}`.
 *
 * The backend is trusted for what it decides, not for how it behaves: every call has a
 * timeout and a cap on the answer's bytes, and an answer that is not one of the three shapes
 * above (or carries a code outside the ranges Centrifugo reserves for applications) is a
 * failed call. A failed call is error 100 (temporary) to the client, never a crash, and
 * never treated as a yes.
 */
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { DisconnectError, Errors, ProtocolError, isValidCloseReason } from '../protocol/codes.js';
import type { ProxyKind, ProxySettings } from '../config/proxy.js';

/** Application error codes: Centrifugo leaves 400-1999 to applications, below is its own. */
const APP_ERROR_CODES = { min: 400, max: 1999 };
/** Application disconnect codes: 4000-4499 make the client reconnect, 4500-4999 do not. */
const APP_DISCONNECT_CODES = { min: 4000, max: 4999 };

const answerSchema = z.union([
  z.object({
    error: z.object({
      code: z.number().int().min(APP_ERROR_CODES.min).max(APP_ERROR_CODES.max),
      message: z.string().max(1024),
      temporary: z.boolean().optional(),
    }),
  }),
  z.object({
    disconnect: z.object({
      code: z.number().int().min(APP_DISCONNECT_CODES.min).max(APP_DISCONNECT_CODES.max),
      reason: z.string().refine(isValidCloseReason, { error: 'not a usable close reason' }),
    }),
  }),
  // An answer naming an error or a disconnect that did not parse above is no yes.
  z.object({ result: z.record(z.string(), z.unknown()).optional(), error: z.never().optional(), disconnect: z.never().optional() }),
]);

/** The caller's side of a call: who asks, for the request body and the forwarded headers. */
export interface ProxyCaller {
  /** The client's HTTP headers from its WebSocket upgrade, already cut to the allowlist. */
  headers: Readonly<Record<string, string>>;
}

export class ProxyClient {
  constructor(
    private readonly settings: ProxySettings,
    private readonly log: Logger,
  ) {}

  has(kind: ProxyKind): boolean {
    return this.settings.endpoints[kind] !== undefined;
  }

  /** Whether a connect with a token goes to the connect proxy as well (TIDINGS_PROXY_CONNECT_WITH_TOKEN). */
  get connectWithToken(): boolean {
    return this.settings.connectWithToken;
  }

  /** The headers of an upgrade request that may go to the backend. */
  forwardable(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.settings.headers) {
      const value = headers[name];
      if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }

  /**
   * The backend's `result` object ({} when it sent none). Its `error` answer is thrown as a
   * ProtocolError with the backend's code and message, its `disconnect` as a
   * DisconnectError; a failed call as ProtocolError 100.
   */
  async call(kind: ProxyKind, body: Record<string, unknown>, caller: ProxyCaller): Promise<Record<string, unknown>> {
    const endpoint = this.settings.endpoints[kind];
    if (!endpoint) throw new ProtocolError(Errors.notAvailable, `no ${kind} proxy`);
    const stop = metrics.proxyDuration.startTimer({ kind });
    let answer: z.output<typeof answerSchema>;
    try {
      const parsed = answerSchema.safeParse(await this.post(endpoint.url, endpoint.timeoutMs, body, caller.headers));
      if (!parsed.success) throw new Error('the answer is not a result, an error (code 400-1999) or a disconnect (code 4000-4999)');
      answer = parsed.data;
    } catch (err) {
      metrics.proxyCalls.inc({ kind, outcome: 'failed' });
      this.log.warn({ kind, url: endpoint.url, detail: (err as Error).message }, 'proxy call failed');
      throw new ProtocolError(Errors.internal, `${kind} proxy failed`);
    } finally {
      stop();
    }
    if ('error' in answer && answer.error) {
      metrics.proxyCalls.inc({ kind, outcome: 'error' });
      const { code, message, temporary } = answer.error;
      throw new ProtocolError({ code, message, ...(temporary ? { temporary: true as const } : {}) }, `${kind} proxy`);
    }
    if ('disconnect' in answer && answer.disconnect) {
      metrics.proxyCalls.inc({ kind, outcome: 'disconnect' });
      throw new DisconnectError(answer.disconnect, `${kind} proxy`);
    }
    metrics.proxyCalls.inc({ kind, outcome: 'ok' });
    return answer.result ?? {};
  }

  private async post(url: string, timeoutMs: number, body: Record<string, unknown>, headers: Readonly<Record<string, string>>): Promise<unknown> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    const text = await readCapped(response, this.settings.maxResponseBytes);
    if (!response.ok) throw new Error(`proxy answered HTTP ${response.status}`);
    return JSON.parse(text) as unknown;
  }
}

/** The body as text, refusing (and cancelling) one over `maxBytes` instead of buffering it. */
async function readCapped(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new Error(`proxy answer of ${declared} bytes is over ${maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error(`proxy answer over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}
