/**
 * The admin console at /admin (issue 16), registered only when TIDINGS_ADMIN_PASSWORD is set:
 * otherwise no /admin route exists and every such path is the server's 404.
 *
 *   GET  /admin/login, POST /admin/login, POST /admin/logout
 *   GET  /admin/nodes, /admin/queues, /admin/dead-letters, /admin/channels, /admin/channel?name=
 *   POST /admin/publish, /admin/history-remove      (session + CSRF token + same origin)
 *   GET  /admin/live?channel=                        (server-sent events, ./live.ts)
 *   GET  /admin/static/admin.js, /admin/static/admin.css
 *
 * A page without a valid session sends the browser to the login page; an action or the live
 * stream without one is 401, with a wrong CSRF token or from another origin 403. Where to
 * expose it, and where not: docs/admin.md.
 */
import type { ServerResponse } from 'node:http';
import type { ApiDispatcher } from '../api/dispatch.js';
import { MAX_ADMIN_PASSWORD_CHARS, type AdminSettings } from '../config/index.js';
import type { HttpServer, RouteHandler } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { ADMIN_SCRIPT, ADMIN_STYLE } from './assets.js';
import { channelParam, Console, type Request } from './console.js';
import {
  BadInput,
  clientAddress,
  cookieOf,
  readForm,
  redirect,
  sameOrigin,
  SECURITY_HEADERS,
  sendHtml,
  sessionCookie,
} from './http.js';
import { SCRIPT_PATH, STYLE_PATH } from './layout.js';
import { LiveStreams, type LiveDeps } from './live.js';
import { LoginLimiter } from './login-limit.js';
import { errorPage, loginPage } from './pages.js';
import { COOKIE_NAME, SessionKeys, type Session } from './session.js';

export interface AdminOptions {
  settings: AdminSettings;
  /** TIDINGS_TOKEN_SECRET: mixed into the session keys (./session.ts). */
  tokenSecret: string;
  api: Pick<ApiDispatcher, 'run'>;
  live: LiveDeps;
  log: Logger;
  now?: () => number;
}

type Action = (r: Request, form: URLSearchParams) => Promise<void>;

class Admin {
  readonly keys: SessionKeys;
  readonly limiter: LoginLimiter;
  readonly console: Console;
  readonly live: LiveStreams;

  constructor(readonly opts: AdminOptions) {
    const now = opts.now ?? Date.now;
    this.keys = new SessionKeys({
      password: opts.settings.password,
      secret: opts.tokenSecret,
      ttlS: opts.settings.sessionTtlS,
      now,
    });
    this.limiter = new LoginLimiter(now);
    this.console = new Console(opts.api, opts.log);
    this.live = new LiveStreams(opts.live);
  }

  session(req: Parameters<RouteHandler>[0]): Session | undefined {
    return this.keys.verify(cookieOf(req, COOKIE_NAME));
  }

  /** A page: with a session, `handler`; without, the login page. */
  page(handler: (r: Request) => Promise<void>): RouteHandler {
    return async (req, res) => {
      const session = this.session(req);
      if (!session) return redirect(res, '/admin/login');
      const csrf = this.keys.csrfToken(session);
      const query = new URL(req.url ?? '/', 'http://admin').searchParams;
      await handler({ req, res, query, csrf }).catch((err: unknown) => this.console.fail(res, csrf, err));
    };
  }

  /** A state-changing form post: same origin, a session, its CSRF token. */
  action(handler: Action): RouteHandler {
    return async (req, res) => {
      if (!sameOrigin(req)) return refuse(res, 403, 'This request came from another site.');
      const session = this.session(req);
      if (!session) return refuse(res, 401, 'Sign in first.');
      const read = await readForm(req);
      if (!read.ok)
        return refuse(res, read.status, read.status === 413 ? 'The form is too large.' : 'Send a form.');
      const csrf = this.keys.csrfToken(session);
      if (!this.keys.csrfMatches(session, read.form.get('csrf') ?? undefined))
        return refuse(res, 403, 'The form is stale: reload the page.');
      const r = { req, res, query: new URLSearchParams(), csrf };
      await handler(r, read.form).catch((err: unknown) => this.console.fail(res, csrf, err));
    };
  }

  cookie(value: string, maxAgeS: number): Record<string, string> {
    return {
      'set-cookie': sessionCookie(COOKIE_NAME, value, { maxAgeS, secure: this.opts.settings.secureCookie }),
    };
  }
}

function refuse(res: ServerResponse, status: number, message: string): void {
  sendHtml(res, status, errorPage(undefined, 'Refused', message));
}

export function registerAdmin(http: HttpServer, opts: AdminOptions): void {
  const admin = new Admin(opts);
  const c = admin.console;
  http.route('GET /admin', (_req, res) => redirect(res, '/admin/nodes'));
  registerLogin(http, admin);
  http.route(
    'GET /admin/nodes',
    admin.page((r) => c.nodes(r)),
  );
  http.route(
    'GET /admin/queues',
    admin.page((r) => c.queues(r)),
  );
  http.route(
    'GET /admin/dead-letters',
    admin.page((r) => c.deadLetters(r)),
  );
  http.route(
    'GET /admin/channels',
    admin.page((r) => c.channels(r)),
  );
  http.route(
    'GET /admin/channel',
    admin.page((r) => c.channel(r)),
  );
  http.route(
    'POST /admin/publish',
    admin.action((r, form) => c.publish(r, form)),
  );
  http.route(
    'POST /admin/history-remove',
    admin.action((r, form) => c.removeHistory(r, form)),
  );
  http.route('GET /admin/live', liveRoute(admin));
  http.route(`GET ${SCRIPT_PATH}`, (_req, res) => sendAsset(res, 'text/javascript', ADMIN_SCRIPT));
  http.route(`GET ${STYLE_PATH}`, (_req, res) => sendAsset(res, 'text/css', ADMIN_STYLE));
  opts.log.info('admin console on at /admin (TIDINGS_ADMIN_PASSWORD is set): keep it off public listeners');
}

function registerLogin(http: HttpServer, admin: Admin): void {
  http.route('GET /admin/login', (req, res) => {
    if (admin.session(req)) return redirect(res, '/admin/nodes');
    sendHtml(res, 200, loginPage());
  });
  http.route('POST /admin/login', (req, res) => login(admin, req, res));
  http.route(
    'POST /admin/logout',
    admin.action(async ({ res }) => redirect(res, '/admin/login', admin.cookie('', 0))),
  );
}

/**
 * Origin first (a login forced from another site would sign the browser into the attacker's
 * choice of session), then the failure budget, then the password. Every wrong or oversized
 * password counts against the budget; an empty one is a form error and does not.
 */
async function login(admin: Admin, req: Parameters<RouteHandler>[0], res: ServerResponse): Promise<void> {
  if (!sameOrigin(req)) return refuse(res, 403, 'This request came from another site.');
  const address = clientAddress(req);
  const waitMs = admin.limiter.retryAfterMs(address);
  if (waitMs > 0)
    return sendHtml(res, 429, loginPage('Too many failed sign-ins: wait a minute.'), {
      'retry-after': String(Math.ceil(waitMs / 1000)),
    });
  const read = await readForm(req);
  if (!read.ok)
    return sendHtml(
      res,
      read.status,
      loginPage(read.status === 413 ? 'The form is too large.' : 'Send the form.'),
    );
  const password = read.form.get('password') ?? '';
  if (password === '') return sendHtml(res, 400, loginPage('Enter the password.'));
  if (password.length > MAX_ADMIN_PASSWORD_CHARS || !admin.keys.passwordMatches(password)) {
    admin.limiter.failed(address);
    admin.opts.log.warn({ address }, 'admin sign-in failed');
    return sendHtml(res, 401, loginPage('Wrong password.'));
  }
  const { cookie } = admin.keys.issue();
  admin.opts.log.info({ address }, 'admin signed in');
  redirect(res, '/admin/nodes', admin.cookie(cookie, admin.opts.settings.sessionTtlS));
}

/** The live stream: a session (401 without), a valid channel of a configured namespace, a free slot. */
function liveRoute(admin: Admin): RouteHandler {
  return async (req, res) => {
    if (!admin.session(req)) return refuse(res, 401, 'Sign in first.');
    let channel: string;
    try {
      channel = channelParam(new URL(req.url ?? '/', 'http://admin').searchParams, 'channel');
    } catch (err) {
      return refuse(res, 400, err instanceof BadInput ? err.message : 'Bad request');
    }
    const ns = admin.opts.live.namespaces.of(channel);
    if (!ns) return refuse(res, 404, 'No namespace is configured for this channel.');
    if (admin.live.full) return refuse(res, 503, 'Too many live views are open on this gateway.');
    await admin.live.serve(res, channel, ns.recovery_max);
  };
}

function sendAsset(res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
  });
  res.end(body);
}
