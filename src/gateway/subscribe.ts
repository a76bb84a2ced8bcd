/**
 * Subscribe, with recovery, in the fixed order of STYLE.md habit 3 / PROTOCOL.md D.3–D.4:
 *
 *   1. attach to the hub (buffering): from here on no live publication can be missed;
 *   2. read the channel position, and, when recovering, the first chunk of the publications
 *      after the client's offset (Redis first, PostgreSQL for what Redis no longer holds);
 *   3. write the reply (with that chunk);
 *   4. start the subscriber at the last offset the reply carried: the hub streams the rest
 *      of the gap up to the top from history, then releases what it buffered, dropping what
 *      was already given and filling any hole.
 *
 * Recovery is bounded (issue 9): the reply carries at most one chunk of
 * `settings.replyMaxBytes`, and the hub sends the rest as publication pushes, in offset order
 * before any live one, a chunk at a time as the client reads (src/channels/hub.ts). The
 * namespace's `recovery_max` still bounds how many publications one recovery may span.
 * What is decided and read at each step is src/history/recovery.ts; this file runs the steps.
 *
 * A gap is an explicit outcome: `recovered` absent (or error 112 when the client asked for
 * that with flag 2), never a partial replay; if history loses the rest of a gap while it
 * streams, the hub makes the client resubscribe (2500) and recover from where it got to.
 *
 * The same steps serve client-side subscriptions (the `subscribe` command) and server-side
 * ones (the token's `channels` claim at connect, and the API's `subscribe`), which differ
 * only in how the result reaches the client.
 */
import type { BusPublication } from '../bus/topic.js';
import type { NamespaceOptions } from '../config/namespaces.js';
import type { ChannelPosition } from '../history/reader.js';
import { recoverFirstChunk, replyPosition } from '../history/recovery.js';
import { encodeSubscribeResult } from '../protocol/codec.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import { checkSubscribe, checkSubscriptionToken } from './access.js';
import { ttlOf } from './expiry.js';
import { subscribeByProxy, type ProxiedGrant } from './proxied.js';
import type { CommandHandler, Session } from './session.js';
import type { Subscription, SubscriptionOptions } from './subscription.js';
import { channelOf, isObject, optionalInt, optionalOffset, optionalString, optionalToken } from './validate.js';

/** Subscribe flag bit: the client (getState) wants error 112 instead of an unrecovered reply. */
const FLAG_REJECT_UNRECOVERED = 2;

/** Where the client says it is: recovery is asked for when `recover` is set. */
export interface RecoveryRequest {
  recover: boolean;
  offset: number;
  epoch: string;
}

/** A subscription ready to go live: attached and buffering, its reply computed. */
export interface Opened {
  sub: Subscription;
  pos: ChannelPosition;
  /** The offset the reply leaves the client at: the top, or the last one a recovery carried. */
  startAt: number;
  result: string;
  recovered: boolean;
}

interface ClientRequest extends RecoveryRequest {
  channel: string;
  rejectUnrecovered: boolean;
  token: string | undefined;
  joinLeave: boolean;
}

function checkRequest(session: Session, request: unknown): ClientRequest {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  if ((optionalInt(req.type, 'type') ?? 0) !== 0) throw new ProtocolError(Errors.notAvailable, 'only stream subscriptions');
  if (req.tf !== undefined) throw new ProtocolError(Errors.notAvailable, 'tag filters are not supported');
  if (session.subscriptions.has(channel)) throw new ProtocolError(Errors.alreadySubscribed);
  if (session.subscriptions.size >= session.deps.settings.channelsPerConnection) throw new ProtocolError(Errors.limitExceeded);
  return {
    channel,
    ...recoveryRequestOf(req),
    rejectUnrecovered: ((optionalInt(req.flag, 'flag') ?? 0) & FLAG_REJECT_UNRECOVERED) !== 0,
    token: optionalToken(req),
    joinLeave: req.join_leave === true,
  };
}

export function recoveryRequestOf(req: unknown): RecoveryRequest {
  if (!isObject(req)) return { recover: false, offset: 0, epoch: '' };
  return {
    recover: req.recover === true,
    offset: optionalOffset(req.offset, 'offset') ?? 0,
    epoch: optionalString(req, 'epoch') ?? '',
  };
}

/**
 * What entitles the subscription beyond the namespace's rules: a subscription token, which is
 * always verified when given; or, without one in a `proxy_subscribe` namespace, the
 * subscribe proxy's yes (issue 14), which it must give (its no, or a failed call, refuses).
 */
async function grantOf(session: Session, req: ClientRequest, request: unknown): Promise<Partial<ProxiedGrant> | undefined> {
  if (req.token !== undefined) return checkSubscriptionToken(session, req.channel, req.token);
  const ns = session.deps.namespaces.of(req.channel);
  if (!ns?.proxy_subscribe) return undefined;
  const data = isObject(request) ? request.data : undefined;
  return subscribeByProxy(session, req.channel, data);
}

/** The `subscribe` command. */
export const subscribe: CommandHandler = async (session, request, id) => {
  const req = checkRequest(session, request);
  // A given token is verified whatever the channel (Centrifugo does the same), and only the
  // verified grant entitles the connection to a private one: never the field's presence.
  const grant = await grantOf(session, req, request);
  const ns = checkSubscribe(session, req.channel, grant === undefined ? 'none' : 'token');
  const opened = await openSubscription(session, req.channel, ns, req, {
    chanInfo: grant?.info,
    expiresAt: grant?.expiresAt,
    joinLeave: req.joinLeave && ns.join_leave,
    dataJson: grant?.dataJson,
    refreshedByServer: ns.proxy_sub_refresh,
  });
  if (!opened) return undefined;
  if (req.recover && !opened.recovered && req.rejectUnrecovered) {
    session.dropSubscription(opened.sub, false);
    throw new ProtocolError(Errors.unrecoverablePosition);
  }
  // Reply first, then release the buffer: the client drops publications that arrive
  // before its subscribe reply.
  session.reply(id, 'subscribe', opened.result);
  goLive(session, opened);
  return undefined;
};

/**
 * Steps 1–2: registers the subscription, attaches it to the hub and computes its result.
 * Undefined when the connection closed, or the subscription was dropped (an API
 * unsubscribe), meanwhile. On failure nothing is left behind.
 */
export async function openSubscription(
  session: Session,
  channel: string,
  ns: NamespaceOptions,
  position: RecoveryRequest,
  opts: SubscriptionOptions,
): Promise<Opened | undefined> {
  if (session.closed) return undefined;
  const sub = session.addSubscription(channel, ns, opts);
  try {
    const opened = await attachAndRead(session, sub, position, opts);
    if (session.closed || !sub.setState('subscribed')) {
      session.dropSubscription(sub, false);
      return undefined;
    }
    return opened;
  } catch (err) {
    session.dropSubscription(sub, false);
    throw err;
  }
}

/** Steps 1–2 proper: buffering from the hub, the position (and a recovery's first chunk), presence. */
async function attachAndRead(
  session: Session,
  sub: Subscription,
  position: RecoveryRequest,
  opts: SubscriptionOptions,
): Promise<Opened> {
  const { channel, namespace: ns } = sub;
  await session.deps.hub.attach(channel, sub);
  // Buffering from here on: the position must come from a read sent after this point, or a
  // publication committed just before could be missing from both (src/history/reader.ts SharedReads).
  const buffering = session.deps.history.mark();
  const pos = await session.deps.history.position(channel, position.recover ? position.offset : 0, buffering);
  const pubs = position.recover && ns.recovery ? await recover(session, channel, ns, position, pos, opts) : undefined;
  if (ns.presence) await session.deps.presence.add(channel, session.clientId, sub.infoJson);
  const startAt = replyPosition(position, pos, pubs);
  return { sub, pos, startAt, recovered: pubs !== undefined, result: resultOf(ns, position, pos, pubs, opts) };
}

/**
 * Step 4, after the result was written: the hub streams what the reply did not carry up to
 * the top, then releases the buffer; others hear of the join, and the backend of the
 * subscription (webhook `subscribe`, when selected).
 */
export function goLive(session: Session, opened: Opened): void {
  const { sub, pos } = opened;
  session.deps.hub.start(sub.channel, sub, opened.startAt, pos.top);
  if (sub.namespace.join_leave) session.deps.events.announce(sub.channel, 'join', sub.infoJson);
  if (sub.state === 'subscribed' && !sub.live) {
    sub.markLive();
    session.deps.webhooks.subscribed(session.clientId, session.user, sub.channel);
  }
}

/**
 * The first chunk of what the client missed, for the reply, or undefined when it cannot be
 * recovered: another epoch, an offset ahead of the stream, a gap larger than the namespace's
 * `recovery_max`, or history that no longer holds the start of the gap.
 *
 * A server-side subscription's result shares the connect reply with up to a channel limit
 * of others, so it carries no publications: its whole gap streams from the hub. Its first
 * publication is still read, to prove history holds the start of the gap.
 */
async function recover(
  conn: Session,
  channel: string,
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
  opts: SubscriptionOptions,
): Promise<BusPublication[] | undefined> {
  const maxBytes = opts.serverSide ? 0 : conn.deps.settings.replyMaxBytes;
  const first = await recoverFirstChunk(conn.deps.history, channel, req, pos, ns.recovery_max, maxBytes);
  if (first === undefined) return undefined;
  return opts.serverSide ? [] : first.publications;
}

/**
 * The subscribe result. After a recovery it carries the client's own offset and the
 * publications after it; the client walks them up to the top (Go does the same).
 */
function resultOf(
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
  recovered: BusPublication[] | undefined,
  opts: SubscriptionOptions,
): string {
  return encodeSubscribeResult({
    recoverable: ns.recovery,
    ttl: opts.refreshedByServer ? undefined : ttlOf(opts.expiresAt),
    epoch: pos.epoch,
    offset: recovered ? req.offset : pos.top,
    wasRecovering: req.recover,
    recovered: recovered !== undefined,
    publications: recovered,
    dataJson: opts.dataJson,
  });
}
