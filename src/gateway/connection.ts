/**
 * One client connection: a small state machine (connecting → connected → closed, changed only
 * by `setState`) that runs the commands of the Centrifugo client protocol in the order they
 * arrive, including several in one frame (the SDK sends connect and its subscribes together).
 * The wire format (JSON or Protobuf, src/protocol/wire.ts) is fixed at the handshake and is
 * the only thing that differs between the two: it decodes frames and encodes what is written.
 * It owns its state: the identity a connect established, its subscriptions, its timers.
 * Handlers see it as a `Session` (./session.ts) and reach it through the command table that
 * server.ts hands it (./dispatch.ts); it imports none of them.
 *
 * Commands run one after another; a publish only waits its turn to be *queued*, and its
 * reply is written when the worker acknowledges the commit, so a client can have many
 * publishes in flight and they keep their order (guarantee 3). Every await is followed by a
 * state check: the socket may have closed meanwhile.
 *
 * Nothing a client sends or fails to read grows without bound (issue 9). A command runs only
 * once the client has read what the ones before produced (its queue is within its bound):
 * replies are paced, not dropped, so a client that stops reading simply stops being served.
 * The commands waiting meanwhile, and the publishes awaiting their commit ack, are counted
 * (./backlog.ts): past a high-water mark the socket is not read any more, and only a client
 * that keeps piling on past a hard limit is closed. Replies themselves are bounded in bytes
 * (`replyMaxBytes`), and history and recovery reads are bounded per gateway
 * (src/history/permits.ts).
 *
 * Flow control, not refusals (issue 12): a publish is never answered 111 for going fast. Its
 * connection's backlog and its partition's (src/ingest/flow.ts) slow the client down through
 * TCP instead; the rate limit (./limiter.ts) counts the other commands, which nothing else
 * paces, and publishes refused before they were queued.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { NamespaceOptions } from '../config/namespaces.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import {
  encodeErrorReply,
  encodeResultReply,
  encodeUnsubscribePush,
  type DecodedCommand,
} from '../protocol/codec.js';
import {
  Disconnect,
  DisconnectError,
  Errors,
  ProtocolError,
  Unsubscribe,
  replyErrorOf,
  type DisconnectInfo,
  type UnsubscribeInfo,
} from '../protocol/codes.js';
import { clientInfoJson } from '../protocol/publication.js';
import type { Command, Method } from '../protocol/types.js';
import { JSON_FORMAT, type WireFormat } from '../protocol/wire.js';
import { Backlog } from './backlog.js';
import type { GatewayDeps } from './deps.js';
import { Deadline, dueTimer, lapseTimer } from './expiry.js';
import { Heartbeat } from './heartbeat.js';
import { TokenBucket } from './limiter.js';
import { Outbox } from './outbox.js';
import { refreshByProxy, subRefreshByProxy } from './proxied.js';
import type { Commands, ConnectionState, Identity, ServerSubscribeOptions, Session } from './session.js';
import { Subscription, type SubscriptionOptions, type SubscriptionOwner } from './subscription.js';

/** The moves the state machine has (./session.ts draws it). */
const NEXT: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  connecting: ['connected', 'closed'],
  connected: ['closed'],
  closed: [],
};

/** How soon a refresh that the backend failed to answer is asked again. */
const PROXY_RETRY_MS = 5000;

const ANONYMOUS: Identity = { user: '', connInfo: undefined, expiresAt: undefined };

type DecodedOk = Extract<DecodedCommand, { ok: true }>;

/** A disconnect webhook's `reason`: the close code and its reason text, e.g. "3012 no pong". */
function closeReasonOf(code: number, reason: string): string {
  return reason === '' ? String(code) : `${code} ${reason}`;
}

export class Connection implements Session {
  private current: ConnectionState = 'connecting';
  private id = '';
  readonly reservedClientId = randomUUID();
  private identity: Identity = ANONYMOUS;
  private readonly subs = new Map<string, Subscription>();
  private readonly outbox: Outbox;
  private readonly bucket: TokenBucket;
  private readonly backlog: Backlog;
  private readonly heartbeat: Heartbeat;
  private readonly subscriptionOwner: SubscriptionOwner;
  private chain: Promise<void> = Promise.resolve();
  /** performance.now() when the frame of the command running now was read. */
  private frameReceivedAt = 0;
  private readonly staleTimer: NodeJS.Timeout;
  private expiryTimer: Deadline | undefined;
  /** A connect was already tried: after one that failed (109, say) the socket is unusable. */
  private connectTried = false;
  readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly deps: GatewayDeps,
    private readonly commands: Commands,
    private readonly onClosed: (conn: Connection) => void,
    readonly proxyHeaders: Readonly<Record<string, string>> = {},
    readonly format: WireFormat = JSON_FORMAT,
  ) {
    const { settings } = deps;
    this.log = format === JSON_FORMAT ? deps.log : deps.log.child({ protocol: format.name });
    this.outbox = new Outbox(ws, deps.scheduler, settings.queueMaxBytes, format.binary);
    this.bucket = new TokenBucket(settings.rate, settings.burst);
    this.backlog = new Backlog(ws);
    this.heartbeat = new Heartbeat(
      settings.pingIntervalS,
      settings.pongTimeoutS,
      () => this.write(format.ping, true),
      () => this.close(Disconnect.NoPong),
    );
    this.subscriptionOwner = {
      send: (frame, paced) => this.send(frame, paced),
      writable: () => this.outbox.writable(),
      lostPosition: (sub) => this.lostPosition(sub),
      expired: (sub) => this.subscriptionExpired(sub),
      due: (sub) => void this.renewSubscription(sub),
    };
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.teardown(closeReasonOf(code, reason.toString('utf8'))));
    ws.on('error', (err) => this.log.debug({ err }, 'socket error'));
    this.staleTimer = setTimeout(() => this.closeIfStale(), settings.staleS * 1000).unref();
  }

  get state(): ConnectionState {
    return this.current;
  }

  get closed(): boolean {
    return this.current === 'closed';
  }

  get clientId(): string {
    return this.id;
  }

  get user(): string {
    return this.identity.user;
  }

  get connInfo(): string | undefined {
    return this.identity.connInfo;
  }

  get expiresAt(): number | undefined {
    return this.identity.expiresAt;
  }

  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.subs;
  }

  /** Its socket is not being read: too many commands waiting or publishes in flight (./backlog.ts). */
  get paused(): boolean {
    return this.backlog.isPaused;
  }

  get receivedAt(): number {
    return this.frameReceivedAt;
  }

  holdInflight(bytes: number): () => void {
    return this.backlog.hold(bytes);
  }

  /** The one place the state changes; false, and nothing changed, for a move the machine does not have. */
  private setState(next: ConnectionState): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    return true;
  }

  // ------------------------------------------------------------------ incoming

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    // A text frame on a Protobuf connection is a client speaking JSON, which would only
    // misread everything that follows. Binary frames on a JSON connection are read as JSON
    // text, as the Go server reads them: some clients send JSON that way.
    if (!isBinary && this.format.binary) {
      this.close(Disconnect.BadRequest, `text frame on a ${this.format.name} connection`);
      return;
    }
    const commands = this.decode(data);
    if (commands === undefined) return;
    // A pong answers the server's ping and has no place in the command order: it must not
    // wait behind commands that wait for the client to read (that would close it, 3012).
    // Pongs still take from the rate limit: one is due per server ping, and a flood of
    // 64 KiB frames of empty commands (21,000 each) otherwise stalled the gateway unchecked,
    // before connect too.
    if (commands.every((c) => c.method === null)) {
      for (const { command } of commands) {
        if (this.closed) return;
        if (this.bucket.take() === 'abusive') return this.close(Disconnect.TooManyRequests, 'pongs over the rate limit');
        this.onPong(command);
      }
      return;
    }
    if (!this.backlog.add(commands.length, data.length)) {
      this.close(Disconnect.TooManyRequests, 'command backlog over its hard limit');
      return;
    }
    // One link of the chain per frame, not per command: a frame of 500 pipelined publishes
    // would otherwise cost 500 chained promises before the first one runs.
    const receivedAt = performance.now();
    this.chain = this.chain.then(() => this.dispatchAll(commands, data.length, receivedAt));
  }

  /** The frame's commands; undefined, and the connection closed (3501), when any is not one. */
  private decode(data: Buffer): DecodedOk[] | undefined {
    const commands = this.format.decode(data);
    if (typeof commands === 'string') {
      this.close(Disconnect.BadRequest, commands);
      return undefined;
    }
    for (const decoded of commands) {
      if (!decoded.ok) {
        this.close(Disconnect.BadRequest, decoded.reason);
        return undefined;
      }
    }
    return commands as DecodedOk[];
  }

  private async dispatchAll(commands: DecodedOk[], bytes: number, receivedAt: number): Promise<void> {
    this.frameReceivedAt = receivedAt;
    try {
      for (const { command, method, refusal } of commands) await this.dispatch(command, method, refusal);
    } finally {
      this.backlog.remove(commands.length, bytes);
    }
  }

  private async dispatch(command: Command, method: Method | null, refusal?: string): Promise<void> {
    if (this.closed) return;
    if (method === null) return this.onPong(command);
    // Backpressure: a client that has not read what earlier commands produced gets nothing
    // more until it does (a heavy reply would otherwise pile on an unread one).
    await this.outbox.writable();
    if (this.closed || !this.admit(command, method)) return;
    await this.run(command, method, refusal);
  }

  /**
   * The protocol's order (an id on every command but `send`; connect first, and once: after
   * one that failed the socket is unusable, as in Go) and the rate limit. False when the
   * command is not to run: the connection was closed, or the client answered 111. A publish
   * takes no token here: it is flow-controlled (bounded in flight, ./backlog.ts), and only
   * one refused before it was queued takes one (`run`).
   */
  private admit(command: Command, method: Method): boolean {
    if (method !== 'send' && command.id === undefined) {
      this.close(Disconnect.BadRequest, 'command without id');
      return false;
    }
    if ((this.state === 'connecting') !== (method === 'connect') || (method === 'connect' && this.connectTried)) {
      this.close(Disconnect.BadRequest, method === 'connect' ? 'second connect' : 'command before connect');
      return false;
    }
    if (method === 'connect') this.connectTried = true;
    return method === 'publish' || this.withinRate(command.id);
  }

  /** `refusal`: the decoder found the command's payload unservable (107, in its turn). */
  private async run(command: Command, method: Method, refusal?: string): Promise<void> {
    try {
      if (refusal !== undefined) throw new ProtocolError(Errors.badRequest, refusal);
      const result = await this.commands.handlers[method](this, command[method], command.id ?? 0);
      if (result !== undefined && command.id !== undefined) this.reply(command.id, method, result);
      metrics.commands.inc({ method, result: 'ok' });
    } catch (err) {
      metrics.commands.inc({ method, result: 'error' });
      this.fail(command.id, err, method);
      if (method === 'publish' && !(err instanceof ProtocolError && err.error.temporary)) this.chargeRefused();
    }
  }

  /** The one boundary where a thrown error becomes an error reply or a close. */
  fail(id: number | undefined, err: unknown, method: Method): void {
    if (err instanceof DisconnectError) {
      this.log.debug({ method, detail: err.detail }, 'closing after command');
      this.close(err.disconnect, err.detail);
      return;
    }
    if (!(err instanceof ProtocolError)) this.log.error({ err, method }, 'command failed');
    if (id !== undefined && !this.closed) this.write(this.format.encode(encodeErrorReply(id, replyErrorOf(err))), false);
  }

  /**
   * A publish refused before it was queued (bad request, permission) costs a token like any
   * other command: it was answered with its own error, and one who keeps sending them past
   * the limit is closed (3013). A temporary refusal (no room in time) is flow control's, not
   * the client's doing, and costs nothing.
   */
  private chargeRefused(): void {
    if (this.closed || this.bucket.take() !== 'abusive') return;
    this.close(Disconnect.TooManyRequests, 'refused publishes over the rate limit');
  }

  private withinRate(id: number | undefined): boolean {
    const verdict = this.bucket.take();
    if (verdict === 'ok') return true;
    if (verdict === 'abusive') this.close(Disconnect.TooManyRequests, 'rate limit exceeded repeatedly');
    else if (id !== undefined) this.write(this.format.encode(encodeErrorReply(id, Errors.tooManyRequests)), false);
    return false;
  }

  private onPong(command: Command): void {
    if (command.id !== undefined) return this.close(Disconnect.BadRequest, 'empty command with id');
    this.heartbeat.pong();
  }

  // ------------------------------------------------------------------ outgoing

  /** A reply: paced (its command waited for `writable()`), so not held to the bound. */
  reply(id: number, method: Method, resultJson: string): void {
    if (this.closed) return;
    this.write(this.format.encode(encodeResultReply(id, method, resultJson)), false);
  }

  /**
   * A live publication or push: bounded, so a client that does not read is dropped. `paced`:
   * a recovery frame whose producer waited for `writable()`, so not held to the bound.
   */
  send(frame: Buffer | string, paced = false): void {
    if (this.closed) return;
    this.write(this.format.encode(frame), !paced);
  }

  /**
   * Queues a message already in this connection's format; a bounded one past the bound
   * closes the client as slow (3008).
   */
  private write(message: Uint8Array | string, bounded: boolean): void {
    if (this.closed) return;
    if (!this.outbox.push(message, bounded)) this.close(Disconnect.Slow, 'outgoing queue full');
  }

  // ------------------------------------------------------------------ lifecycle

  authenticate(identity: Identity): boolean {
    if (!this.setState('connected')) return false;
    this.id = this.reservedClientId;
    this.identity = { ...identity };
    clearTimeout(this.staleTimer);
    this.heartbeat.start();
    this.scheduleExpiry();
    this.deps.webhooks.connected(this.id, this.identity.user);
    return true;
  }

  refreshExpiry(expiresAt: number | undefined): void {
    if (this.closed) return;
    this.identity = { ...this.identity, expiresAt };
    this.scheduleExpiry();
  }

  /**
   * Without a refresh before the grace after the token's expiry runs out, the client is closed
   * (3005). With a refresh proxy the server renews the connection itself at its expiry.
   */
  private scheduleExpiry(): void {
    this.expiryTimer?.clear();
    const { expiresAt } = this.identity;
    if (expiresAt === undefined) this.expiryTimer = undefined;
    else if (this.deps.proxy.has('refresh')) this.expiryTimer = dueTimer(expiresAt, () => void this.renew());
    else this.expiryTimer = lapseTimer(expiresAt, () => this.close(Disconnect.Expired));
  }

  /**
   * The refresh proxy's answer: lapse (3005), live on, or its disconnect. A failed call keeps
   * the connection and asks again shortly, as Centrifugo does: a backend that is down must
   * not disconnect everyone whose session came due meanwhile.
   */
  private async renew(): Promise<void> {
    if (this.closed) return;
    try {
      const renewal = await refreshByProxy(this);
      if (this.closed) return;
      if (renewal.expired) return this.close(Disconnect.Expired, 'refresh proxy: expired');
      this.identity = { ...this.identity, expiresAt: renewal.expiresAt, connInfo: renewal.info ?? this.identity.connInfo };
      this.scheduleExpiry();
    } catch (err) {
      if (err instanceof DisconnectError) return this.close(err.disconnect, err.detail);
      if (!this.closed) this.expiryTimer = new Deadline(Date.now() + PROXY_RETRY_MS, () => void this.renew());
    }
  }

  /** The same for a subscription of a `proxy_sub_refresh` namespace: lapsing sends 2501, and the client resubscribes. */
  private async renewSubscription(sub: Subscription): Promise<void> {
    if (this.closed || this.subs.get(sub.channel) !== sub) return;
    try {
      const renewal = await subRefreshByProxy(this, sub.channel);
      if (this.subs.get(sub.channel) !== sub) return;
      if (renewal.expired) this.subscriptionExpired(sub);
      else sub.expireAt(renewal.expiresAt);
    } catch (err) {
      if (err instanceof DisconnectError) return this.close(err.disconnect, err.detail);
      if (this.subs.get(sub.channel) === sub) setTimeout(() => void this.renewSubscription(sub), PROXY_RETRY_MS).unref();
    }
  }

  private closeIfStale(): void {
    if (this.state === 'connecting') this.close(Disconnect.Stale);
  }

  /** Closes with a protocol close code; what was queued before (a reply, say) goes first. */
  close(disconnect: DisconnectInfo, detail?: string): void {
    if (this.closed) return;
    if (detail) this.log.debug({ code: disconnect.code, detail }, 'closing connection');
    metrics.disconnects.inc({ code: String(disconnect.code) });
    this.outbox.flushNow();
    this.teardown(closeReasonOf(disconnect.code, disconnect.reason));
    this.ws.close(disconnect.code, disconnect.reason);
  }

  /** The one teardown funnel: a close of ours, or the socket's; `reason` goes to the disconnect webhook. */
  private teardown(reason: string): void {
    const wasConnected = this.current === 'connected';
    if (!this.setState('closed')) return;
    this.outbox.close();
    clearTimeout(this.staleTimer);
    this.expiryTimer?.clear();
    this.heartbeat.stop();
    for (const sub of [...this.subs.values()]) this.dropSubscription(sub, true);
    // After the unsubscribes, so a backend sees a client's subscriptions end before it does.
    if (wasConnected) this.deps.webhooks.disconnected(this.id, this.identity.user, reason);
    this.onClosed(this);
  }

  // ------------------------------------------------------------------ subscriptions

  addSubscription(channel: string, namespace: NamespaceOptions, opts: SubscriptionOptions): Subscription {
    const infoJson = clientInfoJson({
      offset: 0,
      data: '',
      user: this.user,
      client: this.clientId,
      connInfo: this.connInfo,
      chanInfo: opts.chanInfo,
    })!;
    const sub = new Subscription(channel, namespace, infoJson, opts, this.subscriptionOwner);
    this.subs.set(channel, sub);
    return sub;
  }

  dropSubscription(sub: Subscription, announce: boolean): void {
    const wasSubscribed = sub.state === 'subscribed';
    sub.setState('unsubscribed');
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
    this.deps.hub.detach(sub.channel, sub);
    if (sub.namespace.presence) {
      this.deps.presence.remove(sub.channel, this.clientId).catch((err: unknown) => {
        this.log.debug({ err }, 'presence removal failed; the entry expires on its own');
      });
    }
    if (announce && wasSubscribed && sub.namespace.join_leave) {
      this.deps.events.announce(sub.channel, 'leave', sub.infoJson);
    }
    // Only a subscription that went live had its subscribe webhook (src/gateway/subscribe.ts goLive).
    if (wasSubscribed && sub.live) this.deps.webhooks.unsubscribed(this.id, this.identity.user, sub.channel);
  }

  /** API `subscribe`: a server-side subscription added while connected. */
  serverSubscribe(channel: string, options: ServerSubscribeOptions = {}): Promise<boolean> {
    return this.commands.serverSubscribe(this, channel, options);
  }

  /**
   * API `refresh`: the backend sets the connection's expiry (none: it no longer expires) and,
   * when given, its conn_info for what it does from now on.
   */
  serverRefresh(expiresAt: number | undefined, connInfo: string | undefined): void {
    if (this.closed) return;
    this.identity = { ...this.identity, connInfo: connInfo ?? this.identity.connInfo };
    this.refreshExpiry(expiresAt);
  }

  /**
   * Server-side unsubscribe (API `unsubscribe`): drop the subscription here first, then tell
   * the client. Code 2000 keeps it unsubscribed; codes >= 2500 make it resubscribe.
   */
  serverUnsubscribe(channel: string, info: UnsubscribeInfo = Unsubscribe.ServerUnsubscribe): boolean {
    const sub = this.subs.get(channel);
    if (!sub || this.closed) return false;
    this.dropSubscription(sub, true);
    this.send(encodeUnsubscribePush(channel, info));
    return true;
  }

  /**
   * The hub lost track of this subscription's position: drop it here first (so the
   * client's immediate resubscribe is not refused as a duplicate), then push 2500 so the
   * client resubscribes with recovery from what it really has.
   */
  private lostPosition(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    // A server-side subscription recovers through the connect command: reconnect (3010).
    if (sub.serverSide) this.close(Disconnect.InsufficientState, 'server-side subscription lost its position');
    else this.serverUnsubscribe(sub.channel, Unsubscribe.InsufficientState);
  }

  /** A subscription token lapsed without a sub_refresh: the client resubscribes with a new one (2501). */
  private subscriptionExpired(sub: Subscription): void {
    if (this.subs.get(sub.channel) === sub) this.serverUnsubscribe(sub.channel, Unsubscribe.SubscriptionExpired);
  }
}
