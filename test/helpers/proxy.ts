/**
 * A TCP proxy in front of one or more gateways, standing in for a load balancer. It lets a
 * test cut every client socket at once (a flaky network) and routes new connections to the
 * first backend that accepts (so killing one gateway sends clients to the other), or, with
 * `balance: 'round-robin'`, to each backend in turn, skipping those that refuse.
 *
 * In front of one PostgreSQL or Redis server it makes that server unreachable on demand
 * (block/unblock) while the server itself keeps running.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxyOptions {
  /** 'first' (default): the first backend that accepts; 'round-robin': each in turn. */
  balance?: 'first' | 'round-robin';
}

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  private turn = 0;
  port = 0;

  constructor(
    public backends: number[],
    opts: TcpProxyOptions = {},
  ) {
    this.server = createServer((client) => {
      client.on('error', () => client.destroy()); // a reset before routing must not throw
      const first = opts.balance === 'round-robin' ? this.turn++ : 0;
      this.route(client, first, 0);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  /** Tries backend `first + tried` (modulo their number); after every one refused, drops the client. */
  private route(client: Socket, first: number, tried: number): void {
    const count = this.backends.length;
    const port = tried < count ? this.backends[(first + tried) % count] : undefined;
    if (port === undefined || this.blocked) {
      client.destroy();
      return;
    }
    client.pause();
    const upstream = createConnection({ port, host: '127.0.0.1' });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      // Blocked, or the client gave up, while this connection was being made.
      if (this.blocked || client.destroyed) {
        upstream.destroy();
        client.destroy();
        return;
      }
      this.track(client, upstream);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.once('error', () => {
      if (!connected) this.route(client, first, tried + 1);
    });
  }

  private track(client: Socket, upstream: Socket): void {
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /**
   * The network goes down: every open connection is dropped (as cut() does) and new ones
   * are dropped as soon as they arrive, until unblock(). Clients keep trying to reconnect.
   */
  block(): void {
    this.blocked = true;
    this.cut();
  }

  /** The network is back: new connections are routed to the backends again. */
  unblock(): void {
    this.blocked = false;
  }

  /** Drops every open connection without a close frame, as a network failure would. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
