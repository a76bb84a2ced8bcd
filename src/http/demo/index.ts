/**
 * The demo, on gateways where TIDINGS_DEMO is on (`tidings dev` turns it on; production
 * gateways leave it off): the page at GET /, the centrifuge SDK's browser build at
 * GET /demo/centrifuge.js (from node_modules, so the page needs no network beyond this
 * gateway), and, only when TIDINGS_DEMO_TOKENS is on and the gateway listens on loopback,
 * GET /demo/token?user=NAME → {token}. With the flag off that route does not exist (404)
 * and the page asks for a token in its address instead (/?token=…).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { signToken } from '../../auth/jwt.js';
import { isLoopbackHost } from '../../config/index.js';
import type { Logger } from '../../observability/logger.js';
import { sendJson, type HttpServer } from '../server.js';
import { renderDemoPage, SDK_PATH } from './page.js';

export interface DemoOptions {
  /** Signs the demo tokens; needed only when `demoTokens` is on. */
  tokenSecret: string | undefined;
  /** Serve GET /demo/token (development only). */
  demoTokens: boolean;
  /** The address the server binds: demo tokens need a loopback one. */
  host: string;
  log: Logger;
  /** Lifetime of a demo token; the page fetches a new one when it runs out. */
  tokenTtlS?: number;
}

/** A demo user name: what the page accepts in ?user= too. */
const USER_NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;

interface Sdk {
  version: string;
  dir: string;
  code: Buffer;
}

/** The installed centrifuge package's browser build, or undefined when it cannot be found. */
function loadSdk(log: Logger): Sdk | undefined {
  try {
    // `exports` hides dist/ from resolution; the CommonJS entry is build/index.js.
    const root = join(dirname(createRequire(import.meta.url).resolve('centrifuge')), '..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
    const dir = join(root, 'dist');
    return { version: pkg.version ?? 'unknown', dir, code: readFileSync(join(dir, 'centrifuge.js')) };
  } catch (err) {
    log.warn({ err }, 'demo page: the centrifuge SDK browser build was not found; the page cannot connect');
    return undefined;
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

export function registerDemo(http: HttpServer, opts: DemoOptions): void {
  const sdk = loadSdk(opts.log);
  const page = renderDemoPage(sdk?.version ?? 'missing');
  const ttl = opts.tokenTtlS ?? 3600;

  http.route('GET /', (_req, res) =>
    send(res, 200, 'text/html; charset=utf-8', page.html, {
      'content-security-policy': page.csp,
      // The address may carry a token (/?token=…): never pass it on.
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    }),
  );

  http.route(`GET ${SDK_PATH}`, (_req, res) => {
    if (!sdk) return sendJson(res, 404, { error: 'the centrifuge package is not installed' });
    // The page asks for it with ?v=<version>, so it may be cached for long.
    send(res, 200, 'text/javascript; charset=utf-8', sdk.code, { 'cache-control': 'public, max-age=86400' });
  });

  let sourceMap: Buffer | undefined;
  http.route(`GET ${SDK_PATH}.map`, (_req, res) => {
    if (!sdk) return sendJson(res, 404, { error: 'not found' });
    sourceMap ??= readFileSync(join(sdk.dir, 'centrifuge.js.map'));
    send(res, 200, 'application/json', sourceMap, { 'cache-control': 'public, max-age=86400' });
  });

  if (!opts.demoTokens) return;
  const secret = opts.tokenSecret;
  if (!secret) throw new Error('demo tokens need TIDINGS_TOKEN_SECRET');
  // loadConfig refuses this already; a Config assembled by hand must not slip past it, since
  // every address that reaches this port could mint itself a token.
  if (!isLoopbackHost(opts.host)) throw new Error(`demo tokens need a loopback HOST, not ${opts.host}`);
  opts.log.info(
    'TIDINGS_DEMO_TOKENS is on: GET /demo/token hands out connection tokens to anyone (development only)',
  );
  http.route('GET /demo/token', async (req, res) => {
    const user = new URL(req.url ?? '/', 'http://localhost').searchParams.get('user') ?? '';
    if (!USER_NAME.test(user)) {
      return sendJson(res, 400, { error: 'user must be 1-32 letters, digits, _ . or -' });
    }
    const token = await signToken({ user, secret, ttlSeconds: ttl });
    const body = JSON.stringify({ token, user, expires_in: ttl });
    send(res, 200, 'application/json', body, { 'cache-control': 'no-store' });
  });
}
