/**
 * A real HTTP backend receiving lifecycle webhooks (issue 14): it records every POST with its
 * exact body bytes and headers, and answers as the test says: 200, an error status, or not at
 * all (`down()` closes the listening socket, so connections are refused, then `up()` listens
 * again on the same port).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as received. */
  raw: string;
  event: Record<string, unknown>;
  /** The status this backend answered. */
  status: number;
}

export class WebhookBackend {
  readonly deliveries: Delivery[] = [];
  /** Status answered per path (default 200). */
  readonly statusOf = new Map<string, number>();
  private server: Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '';
        const status = this.statusOf.get(path) ?? 200;
        this.deliveries.push({ path, headers: req.headers, raw, event: JSON.parse(raw) as Record<string, unknown>, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening: new connections are refused until `up()`. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Events this backend accepted (answered 2xx) on `path`. */
  accepted(path: string): Record<string, unknown>[] {
    return this.deliveries.filter((d) => d.path === path && d.status < 300).map((d) => d.event);
  }
}

/** How a backend verifies a delivery: HMAC-SHA256 of the raw body, compared in constant time. */
export function verifySignature(raw: string, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(raw, 'utf8').digest('hex'), 'utf8');
  const given = Buffer.from(header.slice('sha256='.length), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
