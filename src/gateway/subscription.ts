/**
 * One channel subscription of a connection: what the hub delivers to (a `Subscriber`), and a
 * small state machine of its own, changed only through `setState` (STYLE habit 5):
 *
 *   subscribing ──► subscribed ──► unsubscribed
 *        └──────────────────────────────▲
 *
 * 'subscribing' while its result is computed (attached to the hub, buffering); 'subscribed'
 * once it is, until it is dropped; 'unsubscribed' for good. Code that awaited something about
 * a subscription re-checks its state before acting on what it awaited.
 */
import type { Subscriber } from '../channels/hub.js';
import type { NamespaceOptions } from '../config/namespaces.js';
import { dueTimer, lapseTimer, type Deadline } from './expiry.js';

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

const NEXT: Readonly<Record<SubscriptionState, readonly SubscriptionState[]>> = {
  subscribing: ['subscribed', 'unsubscribed'],
  subscribed: ['unsubscribed'],
  unsubscribed: [],
};

export interface SubscriptionOptions {
  /** ClientInfo.chan_info (a subscription token's `info` claim) as JSON text. */
  chanInfo?: string | undefined;
  /** When the subscription token expires (unix seconds); undefined: never. */
  expiresAt?: number | undefined;
  /** The client asked for join/leave pushes and the namespace allows them. */
  joinLeave?: boolean;
  /** Server-side subscriptions (token `channels` claim, API subscribe) recover through connect. */
  serverSide?: boolean;
  /** The subscribe proxy's `data` for the subscribe reply, as JSON text. */
  dataJson?: string | undefined;
  /** The sub_refresh proxy renews it at its expiry (the client is not asked to). */
  refreshedByServer?: boolean;
}

/** What a subscription needs from the connection that owns it. */
export interface SubscriptionOwner {
  /** Writes a push; see Connection.send for `paced`. */
  send(frame: Buffer | string, paced?: boolean): void;
  writable(): Promise<void>;
  /** The hub could not close a gap: the subscription must be dropped and recovered. */
  lostPosition(sub: Subscription): void;
  /** The subscription token expired and no sub_refresh came within the grace. */
  expired(sub: Subscription): void;
  /** A subscription renewed by the server is due: its owner asks the sub_refresh proxy. */
  due(sub: Subscription): void;
}

export class Subscription implements Subscriber {
  private current: SubscriptionState = 'subscribing';
  private expiryTimer: Deadline | undefined;
  /** It went live (subscribe.ts goLive), so its end is a webhook `unsubscribe`. */
  private wentLive = false;
  readonly chanInfo: string | undefined;
  readonly joinLeave: boolean;
  readonly serverSide: boolean;
  /** Renewed at its expiry by the sub_refresh proxy (issue 14), not by the client. */
  readonly refreshedByServer: boolean;
  readonly recoveryMax: number;

  constructor(
    readonly channel: string,
    readonly namespace: NamespaceOptions,
    /** ClientInfo of the connection on this channel, for presence and join/leave. */
    readonly infoJson: string,
    opts: SubscriptionOptions,
    private readonly owner: SubscriptionOwner,
  ) {
    this.chanInfo = opts.chanInfo;
    this.joinLeave = opts.joinLeave ?? false;
    this.serverSide = opts.serverSide ?? false;
    this.recoveryMax = namespace.recovery_max;
    this.refreshedByServer = opts.refreshedByServer ?? false;
    this.expireAt(opts.expiresAt);
  }

  get state(): SubscriptionState {
    return this.current;
  }

  get live(): boolean {
    return this.wentLive;
  }

  markLive(): void {
    this.wentLive = true;
  }

  /** The one place the state changes; false, and nothing changed, for a move the machine does not have. */
  setState(next: SubscriptionState): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    if (next === 'unsubscribed') this.expiryTimer?.clear();
    return true;
  }

  /**
   * Arms the expiry of a (new) subscription token: without a sub_refresh before the grace runs
   * out, the subscription lapses. Undefined clears it. Nothing is armed once unsubscribed.
   */
  expireAt(expiresAt: number | undefined): void {
    this.expiryTimer?.clear();
    this.expiryTimer = undefined;
    if (expiresAt === undefined || this.current === 'unsubscribed') return;
    this.expiryTimer = this.refreshedByServer
      ? dueTimer(expiresAt, () => this.owner.due(this))
      : lapseTimer(expiresAt, () => this.owner.expired(this));
  }

  // The hub's side (Subscriber).

  deliver(frame: Buffer, paced?: boolean): void {
    this.owner.send(frame, paced);
  }

  writable(): Promise<void> {
    return this.owner.writable();
  }

  onGap(): void {
    this.owner.lostPosition(this);
  }
}
