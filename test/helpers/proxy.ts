/**
 * A TCP proxy in front of one or more gateways, standing in for a load balancer. It lets a
 * test cut every client socket at once (a flaky network) and routes new connections to the
 * first backend that accepts (so killing one gateway sends clients to the other).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  port = 0;

  constructor(public backends: number[]) {
    this.server = createServer((client) => this.route(client, 0));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  private route(client: Socket, index: number): void {
    const port = this.backends[index];
    if (port === undefined || this.blocked) {
      client.destroy();
      return;
    }
    client.pause();
    const upstream = createConnection({ port, host: '127.0.0.1' });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.track(client, upstream);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.once('error', () => {
      if (!connected) this.route(client, index + 1);
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
