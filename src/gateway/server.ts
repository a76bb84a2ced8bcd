/**
 * The WebSocket endpoint: accepts upgrades on /connection/websocket (no subprotocol needed;
 * only the JSON protocol is spoken, so a client asking for protobuf is refused), and keeps
 * the set of live connections for shutdown and stats. It wires each connection to the
 * command table (./dispatch.ts), so that the connection does not import its handlers.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Disconnect } from '../protocol/codes.js';
import { Admission, type AdmissionSettings } from './admission.js';
import { Connection } from './connection.js';
import type { GatewayDeps } from './deps.js';
import { commands } from './dispatch.js';

export const WEBSOCKET_PATH = '/connection/websocket';

export class WebSocketGateway {
  readonly connections = new Set<Connection>();
  private readonly wss: WebSocketServer;
  private readonly admission: Admission;
  private accepting = true;

  constructor(
    private readonly deps: GatewayDeps,
    maxMessageBytes: number,
    admission: AdmissionSettings,
  ) {
    this.admission = new Admission(admission);
    this.wss = new WebSocketServer({
      noServer: true,
      // ws answers a larger incoming message with close 1009, which the SDK treats as final.
      maxPayload: maxMessageBytes,
      perMessageDeflate: false,
      // Connection.onFrame checks UTF-8 itself and closes with 3501 (terminal); ws would close
      // an invalid text frame with 1007, which the SDK answers by reconnecting forever.
      skipUTF8Validation: true,
      handleProtocols: (protocols) => (protocols.has('centrifuge-json') ? 'centrifuge-json' : false),
    });
  }

  /** Returns false when the request is not ours (another path), so the caller can 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WEBSOCKET_PATH) return false;
    if (!this.accepting || (req.headers['sec-websocket-protocol'] ?? '').includes('centrifuge-protobuf')) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return true;
    }
    const verdict = this.admission.check(req);
    if (!verdict.ok) {
      socket.end(`HTTP/1.1 ${verdict.status} ${verdict.reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return true;
    }
    const proxyHeaders = this.deps.proxy.forwardable(req.headers);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, verdict.ip, proxyHeaders));
    return true;
  }

  private accept(ws: WebSocket, ip: string, proxyHeaders: Record<string, string>): void {
    this.admission.opened(ip);
    const conn = new Connection(
      ws,
      this.deps,
      commands,
      (c) => {
        this.connections.delete(c);
        this.admission.closed(ip);
      },
      proxyHeaders,
    );
    this.connections.add(conn);
  }

  /** New WebSockets are refused from now on (the load balancer sends them elsewhere). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Stops accepting and asks every client to reconnect (to another gateway): 3001. */
  closeAll(): void {
    this.stopAccepting();
    for (const conn of [...this.connections]) conn.close(Disconnect.Shutdown);
    this.wss.close();
  }

  /** Re-adds this gateway's presence entries so they outlive the TTL while connected. */
  refreshPresence(): void {
    for (const conn of this.connections) {
      for (const sub of conn.subscriptions.values()) {
        if (sub.state !== 'subscribed' || !sub.namespace.presence) continue;
        this.deps.presence.add(sub.channel, conn.clientId, sub.infoJson).catch(() => {});
      }
    }
  }

  get userCount(): number {
    const users = new Set<string>();
    for (const conn of this.connections) if (conn.state === 'connected') users.add(conn.user);
    return users.size;
  }
}
