/**
 * The WebSocket endpoint: accepts upgrades on /connection/websocket, and keeps the set of
 * live connections for shutdown and stats. It wires each connection to the command table
 * (./dispatch.ts), so that the connection does not import its handlers.
 *
 * The wire format is chosen here, once, as the Go server chooses it (handler_websocket.go):
 * Protobuf when the client asks for the `centrifuge-protobuf` subprotocol (the Protobuf SDKs
 * do) or sets `?cf_protocol=protobuf` (or Go's older `?format=protobuf`); JSON otherwise,
 * with or without the `centrifuge-json` subprotocol.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { metrics } from '../observability/metrics.js';
import { Disconnect } from '../protocol/codes.js';
import { JSON_FORMAT, PROTOBUF_FORMAT, type WireFormat } from '../protocol/wire.js';
import { Admission, type AdmissionSettings } from './admission.js';
import { Connection } from './connection.js';
import type { GatewayDeps } from './deps.js';
import { commands } from './dispatch.js';

export const WEBSOCKET_PATH = '/connection/websocket';

const PROTOBUF_SUBPROTOCOL = 'centrifuge-protobuf';
const JSON_SUBPROTOCOL = 'centrifuge-json';

/** The format a handshake asks for (see the module comment). */
export function formatOf(req: IncomingMessage): WireFormat {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (offered.includes(PROTOBUF_SUBPROTOCOL)) return PROTOBUF_FORMAT;
  const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
  const asked = query.get('cf_protocol') ?? query.get('format');
  return asked === 'protobuf' ? PROTOBUF_FORMAT : JSON_FORMAT;
}

/** The subprotocol to answer with: the one of the chosen format, when the client offered it. */
function subprotocolOf(offered: Set<string>, format: WireFormat): string | false {
  const wanted = format === PROTOBUF_FORMAT ? PROTOBUF_SUBPROTOCOL : JSON_SUBPROTOCOL;
  return offered.has(wanted) ? wanted : false;
}

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
      handleProtocols: (protocols, req) => subprotocolOf(protocols, formatOf(req)),
    });
  }

  /** Returns false when the request is not ours (another path), so the caller can 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WEBSOCKET_PATH) return false;
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return true;
    }
    const verdict = this.admission.check(req);
    if (!verdict.ok) {
      socket.end(`HTTP/1.1 ${verdict.status} ${verdict.reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return true;
    }
    const proxyHeaders = this.deps.proxy.forwardable(req.headers);
    const format = formatOf(req);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, verdict.ip, proxyHeaders, format));
    return true;
  }

  private accept(ws: WebSocket, ip: string, proxyHeaders: Record<string, string>, format: WireFormat): void {
    this.admission.opened(ip);
    metrics.connectionsAccepted.inc({ protocol: format.name });
    const conn = new Connection(
      ws,
      this.deps,
      commands,
      (c) => {
        this.connections.delete(c);
        this.admission.closed(ip);
      },
      proxyHeaders,
      format,
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
