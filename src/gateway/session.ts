/**
 * What a command handler sees of the connection it serves. src/gateway/connection.ts
 * implements it; handlers (./handlers.ts, ./subscribe.ts, ./server-subs.ts, ./access.ts) know
 * only this, so they never import the Connection, and never write its fields: they read its
 * identity and subscriptions, and ask it to change them. The Connection is the one owner of
 * its state (STYLE habit 5).
 *
 * A handler that awaited something re-checks before acting on it: `closed`, the boolean a
 * method returns, or the subscription's own state. The methods that change state also check
 * it, and do nothing on a connection that closed meanwhile.
 *
 * The command table (./dispatch.ts) reaches each connection from server.ts through `Commands`.
 */
import type { NamespaceOptions } from '../config/namespaces.js';
import type { Logger } from '../observability/logger.js';
import type { Method } from '../protocol/types.js';
import type { GatewayDeps } from './deps.js';
import type { Subscription, SubscriptionOptions } from './subscription.js';

/**
 *   connecting ──► connected ──► closed
 *        └──────────────────────────▲
 * 'connecting' until a connect command's token checks out; 'closed' for good.
 */
export type ConnectionState = 'connecting' | 'connected' | 'closed';

/** Who the connection token says the client is. */
export interface Identity {
  /** The token's `sub`; '' for anonymous. */
  user: string;
  /** ClientInfo.conn_info (the token's `info` claim) as JSON text, encoded once. */
  connInfo: string | undefined;
  /** The token's expiry (unix seconds); undefined: never. */
  expiresAt: number | undefined;
}

/** What API subscribe may set on the subscriptions it makes (src/api/users.ts checks it). */
export interface ServerSubscribeOptions {
  /** chan_info and the subscribe push's `data`, as JSON text. */
  infoJson?: string | undefined;
  dataJson?: string | undefined;
  /** Recover from this position, as a client's resubscribe would. */
  recoverSince?: { offset: number; epoch: string } | undefined;
  /** Unix seconds; the subscription lapses then. */
  expiresAt?: number | undefined;
  /** Centrifugo's `override`: this subscription's presence and join/leave, and recovery forced on. */
  presence?: boolean | undefined;
  joinLeave?: boolean | undefined;
  forceRecovery?: boolean | undefined;
}

export interface Session {
  readonly deps: GatewayDeps;
  readonly log: Logger;
  readonly state: ConnectionState;
  /** A getter, so TypeScript does not carry a narrowed `state` across an await. */
  readonly closed: boolean;
  /** '' until connected. */
  readonly clientId: string;
  /** The id `authenticate` will give the connection: the connect proxy names the client by it. */
  readonly reservedClientId: string;
  /** The client's upgrade request headers that may go to the app backend's proxies (TIDINGS_PROXY_HTTP_HEADERS). */
  readonly proxyHeaders: Readonly<Record<string, string>>;
  readonly user: string;
  readonly connInfo: string | undefined;
  readonly subscriptions: ReadonlyMap<string, Subscription>;
  /** performance.now() when the frame carrying the running command was read (flow control's clock). */
  readonly receivedAt: number;

  /** connecting → connected with a new client id; false, and nothing done, unless connecting. */
  authenticate(identity: Identity): boolean;
  /** A refresh: the new token's expiry replaces the old one. */
  refreshExpiry(expiresAt: number | undefined): void;

  /** Registers a subscription in state 'subscribing'; ./subscribe.ts takes it from there. */
  addSubscription(channel: string, namespace: NamespaceOptions, opts: SubscriptionOptions): Subscription;
  /**
   * Forgets a subscription everywhere: here, in the hub, in presence. `announce` sends the
   * leave event (only for one that was subscribed). Safe to repeat: every cleanup runs again.
   */
  dropSubscription(sub: Subscription, announce: boolean): void;

  /** Writes the reply to command `id`; `resultJson` from an encoder of protocol/codec.ts. */
  reply(id: number, method: Method, resultJson: string): void;
  /** Writes a push, held to the connection's bound (a client that does not read is closed). */
  send(frame: Buffer | string): void;
  /** The one mapping from a thrown error to an error reply or a close, for replies written later. */
  fail(id: number | undefined, err: unknown, method: Method): void;
  /**
   * Counts a queued publish of `bytes` in the connection's backlog until the returned function
   * is called (its ack or error came back): publishes in flight slow the client down as
   * commands waiting do (./backlog.ts).
   */
  holdInflight(bytes: number): () => void;
}

/** One command: its reply's result as JSON text, or undefined when there is none or it is written later. */
export type CommandHandler = (session: Session, request: unknown, id: number) => Promise<string | undefined>;

/** What a connection runs, given to it by server.ts (./dispatch.ts builds it). */
export interface Commands {
  readonly handlers: Readonly<Record<Method, CommandHandler>>;
  /** API `subscribe`: a server-side subscription added while connected. */
  serverSubscribe(session: Session, channel: string, options: ServerSubscribeOptions): Promise<boolean>;
}
