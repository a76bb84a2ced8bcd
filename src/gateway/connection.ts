/**
 * One client connection: a small state machine (connecting → connected → closed) that runs
 * the commands of the Centrifugo JSON protocol in the order they arrive, including several
 * in one frame (the SDK sends connect and its subscribes together).
 *
 * Commands run one after another; a publish only waits its turn to be *queued*, and its
 * reply is written when the worker acknowledges the commit, so a client can have many
 * publishes in flight and they keep their order (guarantee 3). Every await is followed by a
 * state check: the socket may have closed meanwhile.
 */
import type { WebSocket } from 'ws';
import type { Hub, Subscriber } from '../channels/hub.js';
import type { HistoryReader } from '../history/reader.js';
import type { IngestClient } from '../ingest/client.js';
import type { Logger } from '../observability/logger.js';
import { decodeFrame, encodeErrorReply } from '../protocol/codec.js';
import { Disconnect, DisconnectError, ProtocolError, Unsubscribe, replyErrorOf, type DisconnectInfo } from '../protocol/codes.js';
import type { Command, Method } from '../protocol/types.js';
import { Outbox, type FlushScheduler } from './outbox.js';
import { handlers } from './handlers.js';

export interface GatewaySettings {
  version: string;
  tokenSecret: string;
  pingIntervalS: number;
  pongTimeoutS: number;
  staleS: number;
  queueMaxBytes: number;
  channelsPerConnection: number;
  recoveryMax: number;
  historyMaxPerCall: number;
}

export interface GatewayDeps {
  settings: GatewaySettings;
  hub: Hub;
  history: HistoryReader;
  ingest: IngestClient;
  scheduler: FlushScheduler;
  log: Logger;
}

type State = 'connecting' | 'connected' | 'closed';

/** After a token's `exp`, how long a client has to refresh before it is closed (Go: 25 s). */
const EXPIRY_GRACE_MS = 25_000;

export interface Subscription extends Subscriber {
  channel: string;
  state: 'subscribing' | 'subscribed';
  chanInfo: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Connection {
  state: State = 'connecting';
  clientId = '';
  user = '';
  /** ClientInfo.conn_info (the token's `info` claim) as JSON text, encoded once. */
  connInfo: string | undefined;
  expiresAt: number | undefined;
  readonly subscriptions = new Map<string, Subscription>();
  private readonly outbox: Outbox;
  private chain: Promise<void> = Promise.resolve();
  private staleTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly deps: GatewayDeps,
    private readonly onClosed: (conn: Connection) => void,
  ) {
    this.log = deps.log;
    this.outbox = new Outbox(ws, deps.scheduler, deps.settings.queueMaxBytes);
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('close', () => this.teardown());
    ws.on('error', (err) => this.log.debug({ err }, 'socket error'));
    this.staleTimer = unref(setTimeout(() => this.closeIfStale(), deps.settings.staleS * 1000));
  }

  // ------------------------------------------------------------------ incoming

  private onFrame(data: Buffer, _isBinary: boolean): void {
    if (this.state === 'closed') return;
    let text: string;
    try {
      // Binary frames are accepted as JSON text too (the Go server does the same); we only
      // ever *send* text frames.
      text = utf8.decode(data);
    } catch {
      this.close(Disconnect.BadRequest, 'frame is not valid UTF-8');
      return;
    }
    for (const decoded of decodeFrame(text)) {
      if (!decoded.ok) {
        this.close(Disconnect.BadRequest, decoded.reason);
        return;
      }
      const { command, method } = decoded;
      this.chain = this.chain.then(() => this.dispatch(command, method));
    }
  }

  private async dispatch(command: Command, method: Method | null): Promise<void> {
    if (this.state === 'closed') return;
    if (method === null) return this.onPong(command);
    if (method !== 'send' && command.id === undefined) return this.close(Disconnect.BadRequest, 'command without id');
    if ((this.state === 'connecting') !== (method === 'connect')) {
      return this.close(Disconnect.BadRequest, method === 'connect' ? 'second connect' : 'command before connect');
    }
    try {
      const handler = handlers[method];
      const result = await handler(this, command[method] as never, command.id ?? 0);
      if (result !== undefined && command.id !== undefined) this.reply(command.id, method, result);
    } catch (err) {
      this.fail(command.id, err, method);
    }
  }

  /** The one boundary where a thrown error becomes an error reply or a close. */
  fail(id: number | undefined, err: unknown, method: string): void {
    if (err instanceof DisconnectError) {
      this.log.debug({ method, detail: err.detail }, 'closing after command');
      this.close(err.disconnect, err.detail);
      return;
    }
    if (!(err instanceof ProtocolError)) this.log.error({ err, method }, 'command failed');
    if (id !== undefined && this.state !== 'closed') this.outbox.push(encodeErrorReply(id, replyErrorOf(err)), false);
  }

  private onPong(command: Command): void {
    if (command.id !== undefined) return this.close(Disconnect.BadRequest, 'empty command with id');
    this.awaitingPong = false;
  }

  // ------------------------------------------------------------------ outgoing

  /** `result` is the reply body as JSON text, or an object to encode. */
  reply(id: number, method: string, result: string | object): void {
    if (this.state === 'closed') return;
    const body = typeof result === 'string' ? result : JSON.stringify(result);
    this.outbox.push(`{"id":${id},${JSON.stringify(method)}:${body}}`, false);
  }

  /** A live publication or push: bounded, so a client that does not read is dropped. */
  send(frame: Buffer | string): void {
    if (this.state === 'closed') return;
    if (!this.outbox.push(frame)) this.close(Disconnect.Slow, 'outgoing queue full');
  }

  // ------------------------------------------------------------------ lifecycle

  /** Called by the connect handler once the token checked out. */
  markConnected(): void {
    this.state = 'connected';
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.schedulePing();
    this.scheduleExpiry();
  }

  scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.expiresAt === undefined) return;
    const ms = this.expiresAt * 1000 - Date.now() + EXPIRY_GRACE_MS;
    this.expiryTimer = unref(setTimeout(() => this.close(Disconnect.Expired), Math.max(0, Math.min(ms, 2 ** 31 - 1))));
  }

  private schedulePing(): void {
    const { pingIntervalS, pongTimeoutS } = this.deps.settings;
    if (pingIntervalS <= 0) return;
    this.pingTimer = unref(
      setInterval(() => {
        this.send('{}');
        if (pongTimeoutS <= 0) return;
        this.awaitingPong = true;
        if (this.pongTimer) clearTimeout(this.pongTimer);
        this.pongTimer = unref(setTimeout(() => this.awaitingPong && this.close(Disconnect.NoPong), pongTimeoutS * 1000));
      }, pingIntervalS * 1000),
    );
  }

  private closeIfStale(): void {
    if (this.state === 'connecting') this.close(Disconnect.Stale);
  }

  /** Closes with a protocol close code; what was queued before (a reply, say) goes first. */
  close(disconnect: DisconnectInfo, detail?: string): void {
    if (this.state === 'closed') return;
    if (detail) this.log.debug({ code: disconnect.code, detail }, 'closing connection');
    this.outbox.flushNow();
    this.teardown();
    this.ws.close(disconnect.code, disconnect.reason);
  }

  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.outbox.close();
    for (const timer of [this.staleTimer, this.pingTimer, this.pongTimer, this.expiryTimer]) clearTimeout(timer);
    for (const sub of this.subscriptions.values()) this.deps.hub.detach(sub.channel, sub);
    this.subscriptions.clear();
    this.onClosed(this);
  }

  // ------------------------------------------------------------------ subscriptions

  newSubscription(channel: string, chanInfo: string | undefined): Subscription {
    const sub: Subscription = {
      channel,
      state: 'subscribing',
      chanInfo,
      deliver: (frame) => this.send(frame),
      onGap: (ch) => this.forceResubscribe(ch, sub),
    };
    return sub;
  }

  /**
   * Server-side unsubscribe (API `unsubscribe`): drop the subscription here first, then tell
   * the client. Code 2000 keeps it unsubscribed; codes >= 2500 make it resubscribe.
   */
  serverUnsubscribe(channel: string, info: { code: number; reason: string } = Unsubscribe.ServerUnsubscribe): boolean {
    const sub = this.subscriptions.get(channel);
    if (!sub || this.state === 'closed') return false;
    this.subscriptions.delete(channel);
    this.deps.hub.detach(channel, sub);
    this.send(`{"push":{"channel":${JSON.stringify(channel)},"unsubscribe":${JSON.stringify(info)}}}`);
    return true;
  }

  /**
   * The hub lost track of this subscription's position: drop it here first (so the
   * client's immediate resubscribe is not refused as a duplicate), then push 2500 so the
   * client resubscribes with recovery from what it really has.
   */
  private forceResubscribe(channel: string, sub: Subscription): void {
    if (this.subscriptions.get(channel) !== sub) return;
    this.serverUnsubscribe(channel, Unsubscribe.InsufficientState);
  }
}

function unref<T extends NodeJS.Timeout>(timer: T): T {
  timer.unref();
  return timer;
}
