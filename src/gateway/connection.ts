/**
 * One client connection: a small state machine (connecting → connected → closed) that runs
 * the commands of the Centrifugo JSON protocol in the order they arrive, including several
 * in one frame (the SDK sends connect and its subscribes together).
 *
 * Commands run one after another; a publish only waits its turn to be *queued*, and its
 * reply is written when the worker acknowledges the commit, so a client can have many
 * publishes in flight and they keep their order (guarantee 3). Every await is followed by a
 * state check: the socket may have closed meanwhile.
 *
 * Nothing a client sends or fails to read grows without bound (issue 9). A command runs only
 * once the client has read what the ones before produced (its queue is within its bound):
 * replies are paced, not dropped, so a client that stops reading simply stops being served.
 * The commands waiting meanwhile are counted (./backlog.ts): past a high-water mark the
 * socket is not read any more, and only a client that keeps piling on past a hard limit is
 * closed. Replies themselves are bounded in bytes (`replyMaxBytes`), and history and
 * recovery reads are bounded per gateway (src/history/permits.ts).
 */
import type { WebSocket } from 'ws';
import type { ChannelEvents } from '../bus/events.js';
import type { Hub, Subscriber } from '../channels/hub.js';
import { clientInfoJson } from '../protocol/publication.js';
import type { Namespaces, NamespaceOptions } from '../config/namespaces.js';
import type { PresenceStore } from '../presence/store.js';
import type { HistoryReader } from '../history/reader.js';
import type { IngestClient } from '../ingest/client.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { decodeFrame, encodeErrorReply, type DecodedCommand } from '../protocol/codec.js';
import {
  Disconnect,
  DisconnectError,
  Errors,
  ProtocolError,
  Unsubscribe,
  replyErrorOf,
  type DisconnectInfo,
} from '../protocol/codes.js';
import type { Command, Method } from '../protocol/types.js';
import { Backlog } from './backlog.js';
import { Outbox, type FlushScheduler } from './outbox.js';
import { handlers } from './handlers.js';
import { TokenBucket } from './limiter.js';
import { serverSubscribe } from './server-subs.js';

export interface GatewaySettings {
  version: string;
  tokenSecret: string;
  /** Checked in every token when set (invalid otherwise). */
  tokenAudience?: string | undefined;
  tokenIssuer?: string | undefined;
  pingIntervalS: number;
  pongTimeoutS: number;
  staleS: number;
  queueMaxBytes: number;
  /**
   * Bytes of publications in one reply (history, a subscribe's recovery) or one recovery
   * chunk: TIDINGS_REPLY_MAX_BYTES, held to `queueMaxBytes` (see src/app/gateway.ts).
   */
  replyMaxBytes: number;
  channelsPerConnection: number;
  historyMaxPerCall: number;
  rate: number;
  burst: number;
}

export interface GatewayDeps {
  settings: GatewaySettings;
  namespaces: Namespaces;
  presence: PresenceStore;
  events: ChannelEvents;
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
  readonly channel: string;
  readonly namespace: NamespaceOptions;
  state: 'subscribing' | 'subscribed';
  readonly chanInfo: string | undefined;
  /** ClientInfo of this connection on this channel, for presence and join/leave. */
  readonly infoJson: string;
  readonly joinLeave: boolean;
  /** Server-side subscriptions (token `channels` claim, API subscribe) recover through connect. */
  readonly serverSide: boolean;
  expiryTimer?: NodeJS.Timeout;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

type DecodedOk = Extract<DecodedCommand, { ok: true }>;

export class Connection {
  state: State = 'connecting';
  clientId = '';
  user = '';
  /** ClientInfo.conn_info (the token's `info` claim) as JSON text, encoded once. */
  connInfo: string | undefined;
  expiresAt: number | undefined;
  readonly subscriptions = new Map<string, Subscription>();
  private readonly outbox: Outbox;
  private readonly bucket: TokenBucket;
  private chain: Promise<void> = Promise.resolve();
  private readonly backlog: Backlog;
  private staleTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  /** A connect was already tried: after one that failed (109, say) the socket is unusable. */
  private connectTried = false;
  readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly deps: GatewayDeps,
    private readonly onClosed: (conn: Connection) => void,
  ) {
    this.log = deps.log;
    this.outbox = new Outbox(ws, deps.scheduler, deps.settings.queueMaxBytes);
    this.bucket = new TokenBucket(deps.settings.rate, deps.settings.burst);
    this.backlog = new Backlog(ws);
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('close', () => this.teardown());
    ws.on('error', (err) => this.log.debug({ err }, 'socket error'));
    this.staleTimer = unref(setTimeout(() => this.closeIfStale(), deps.settings.staleS * 1000));
  }

  /** A getter, so TypeScript does not carry a narrowed `state` across an await. */
  get closed(): boolean {
    return this.state === 'closed';
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
    const commands = decodeFrame(text);
    for (const decoded of commands) {
      if (!decoded.ok) {
        this.close(Disconnect.BadRequest, decoded.reason);
        return;
      }
    }
    // A pong answers the server's ping and has no place in the command order: it must not
    // wait behind commands that wait for the client to read (that would close it, 3012).
    if ((commands as DecodedOk[]).every((c) => c.method === null)) {
      for (const { command } of commands as DecodedOk[]) this.onPong(command);
      return;
    }
    if (!this.backlog.add(commands.length, data.length)) {
      this.close(Disconnect.TooManyRequests, 'command backlog over its hard limit');
      return;
    }
    // One link of the chain per frame, not per command: a frame of 500 pipelined publishes
    // would otherwise cost 500 chained promises before the first one runs.
    this.chain = this.chain.then(() => this.dispatchAll(commands as DecodedOk[], data.length));
  }

  private async dispatchAll(commands: DecodedOk[], bytes: number): Promise<void> {
    try {
      for (const { command, method } of commands) await this.dispatch(command, method);
    } finally {
      this.backlog.remove(commands.length, bytes);
    }
  }

  private async dispatch(command: Command, method: Method | null): Promise<void> {
    if (this.state === 'closed') return;
    if (method === null) return this.onPong(command);
    // Backpressure: a client that has not read what earlier commands produced gets nothing
    // more until it does (a heavy reply would otherwise pile on an unread one).
    await this.outbox.writable();
    if (this.closed) return;
    if (method !== 'send' && command.id === undefined) return this.close(Disconnect.BadRequest, 'command without id');
    if ((this.state === 'connecting') !== (method === 'connect') || (method === 'connect' && this.connectTried)) {
      return this.close(Disconnect.BadRequest, method === 'connect' ? 'second connect' : 'command before connect');
    }
    if (method === 'connect') this.connectTried = true;
    if (!this.withinRate(command.id)) return;
    try {
      const handler = handlers[method];
      const result = await handler(this, command[method] as never, command.id ?? 0);
      if (result !== undefined && command.id !== undefined) this.reply(command.id, method, result);
      metrics.commands.inc({ method, result: 'ok' });
    } catch (err) {
      metrics.commands.inc({ method, result: 'error' });
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

  private withinRate(id: number | undefined): boolean {
    const verdict = this.bucket.take();
    if (verdict === 'ok') return true;
    if (verdict === 'abusive') this.close(Disconnect.TooManyRequests, 'rate limit exceeded repeatedly');
    else if (id !== undefined) this.outbox.push(encodeErrorReply(id, Errors.tooManyRequests), false);
    return false;
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

  /**
   * A live publication or push: bounded, so a client that does not read is dropped. `paced`:
   * a recovery frame whose producer waited for `writable()`, so not held to the bound.
   */
  send(frame: Buffer | string, paced = false): void {
    if (this.state === 'closed') return;
    if (!this.outbox.push(frame, !paced)) this.close(Disconnect.Slow, 'outgoing queue full');
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
    metrics.disconnects.inc({ code: String(disconnect.code) });
    this.outbox.flushNow();
    this.teardown();
    this.ws.close(disconnect.code, disconnect.reason);
  }

  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.outbox.close();
    for (const timer of [this.staleTimer, this.pingTimer, this.pongTimer, this.expiryTimer]) clearTimeout(timer);
    for (const sub of [...this.subscriptions.values()]) this.dropSubscription(sub, true);
    this.onClosed(this);
  }

  // ------------------------------------------------------------------ subscriptions

  newSubscription(
    channel: string,
    namespace: NamespaceOptions,
    opts: { chanInfo?: string | undefined; expiresAt?: number | undefined; joinLeave?: boolean; serverSide?: boolean },
  ): Subscription {
    const sub: Subscription = {
      channel,
      namespace,
      state: 'subscribing',
      chanInfo: opts.chanInfo,
      infoJson: clientInfoJson({
        offset: 0,
        data: '',
        user: this.user,
        client: this.clientId,
        connInfo: this.connInfo,
        chanInfo: opts.chanInfo,
      })!,
      joinLeave: opts.joinLeave ?? false,
      serverSide: opts.serverSide ?? false,
      deliver: (frame, paced) => this.send(frame, paced),
      writable: () => this.outbox.writable(),
      recoveryMax: namespace.recovery_max,
      onGap: (ch) => this.forceResubscribe(ch, sub),
    };
    this.scheduleSubscriptionExpiry(sub, opts.expiresAt);
    return sub;
  }

  /** A subscription token's expiry: without a sub_refresh in time, the subscription lapses (2501). */
  scheduleSubscriptionExpiry(sub: Subscription, expiresAt: number | undefined): void {
    if (sub.expiryTimer) clearTimeout(sub.expiryTimer);
    if (expiresAt === undefined) return;
    const ms = Math.max(0, Math.min(expiresAt * 1000 - Date.now() + EXPIRY_GRACE_MS, 2 ** 31 - 1));
    sub.expiryTimer = unref(setTimeout(() => this.serverUnsubscribe(sub.channel, Unsubscribe.SubscriptionExpired), ms));
  }

  /**
   * Forgets a subscription everywhere: here, in the hub, in presence. `announce` sends the
   * leave event to the channel (not for a subscribe that never completed).
   */
  dropSubscription(sub: Subscription, announce: boolean): void {
    if (this.subscriptions.get(sub.channel) === sub) this.subscriptions.delete(sub.channel);
    if (sub.expiryTimer) clearTimeout(sub.expiryTimer);
    this.deps.hub.detach(sub.channel, sub);
    if (sub.namespace.presence) {
      this.deps.presence.remove(sub.channel, this.clientId).catch((err: unknown) => {
        this.log.debug({ err }, 'presence removal failed; the entry expires on its own');
      });
    }
    if (announce && sub.state === 'subscribed' && sub.namespace.join_leave) {
      this.deps.events.announce(sub.channel, 'leave', sub.infoJson);
    }
  }

  /** API `subscribe`: a server-side subscription added while connected. */
  serverSubscribe(channel: string): Promise<boolean> {
    return serverSubscribe(this, channel);
  }

  /**
   * Server-side unsubscribe (API `unsubscribe`): drop the subscription here first, then tell
   * the client. Code 2000 keeps it unsubscribed; codes >= 2500 make it resubscribe.
   */
  serverUnsubscribe(channel: string, info: { code: number; reason: string } = Unsubscribe.ServerUnsubscribe): boolean {
    const sub = this.subscriptions.get(channel);
    if (!sub || this.state === 'closed') return false;
    this.dropSubscription(sub, true);
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
    // A server-side subscription recovers through the connect command: reconnect (3010).
    if (sub.serverSide) this.close(Disconnect.InsufficientState, 'server-side subscription lost its position');
    else this.serverUnsubscribe(channel, Unsubscribe.InsufficientState);
  }
}

function unref<T extends NodeJS.Timeout>(timer: T): T {
  timer.unref();
  return timer;
}
