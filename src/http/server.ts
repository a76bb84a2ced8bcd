/**
 * The gateway's HTTP surface: liveness, readiness, and the WebSocket upgrade. Further
 * routes (the server API, /metrics, the demo page) register through `route`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpOptions {
  /** Resolves when every dependency answers; rejects (or resolves false) when one does not. */
  ready: () => Promise<boolean>;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  log: Logger;
  /** How long a client may take to send a whole request (tests shorten it). */
  requestTimeoutMs?: number;
}

/**
 * A whole request, headers and body, must arrive within this: Node's default (300 s) let a
 * client that never finished its body hold a socket for five minutes, and 150 of them were
 * still open after half a minute. A 1 MiB API body needs a fraction of it even on a slow
 * link; a WebSocket is past its request once upgraded.
 */
const REQUEST_TIMEOUT_MS = 30_000;

export class HttpServer {
  readonly server: Server;
  private readonly routes = new Map<string, RouteHandler>();

  constructor(private readonly opts: HttpOptions) {
    const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.server = createServer(
      {
        requestTimeout,
        headersTimeout: Math.min(requestTimeout, 20_000),
        // How often Node looks for requests past their time; its default is 30 s.
        connectionsCheckingInterval: Math.min(requestTimeout / 4, 5_000),
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      if (!opts.upgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    });
    this.route('GET /health', (_req, res) => sendJson(res, 200, { status: 'ok' }));
    this.route('GET /ready', async (_req, res) => {
      const ok = await opts.ready().catch(() => false);
      sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'unavailable' });
    });
  }

  /** `key` is "METHOD /path" (exact match) or "* /path" for any method. */
  route(key: string, handler: RouteHandler): void {
    this.routes.set(key, handler);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const handler = this.routes.get(`${req.method} ${path}`) ?? this.routes.get(`* ${path}`);
    try {
      if (handler) await handler(req, res);
      else sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      this.opts.log.error({ err, path }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
      else res.end();
    }
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
