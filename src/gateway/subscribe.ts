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
 *
 * A gap is an explicit outcome: `recovered` absent (or error 112 when the client asked for
 * that with flag 2), never a partial replay; if history loses the rest of a gap while it
 * streams, the hub makes the client resubscribe (2500) and recover from where it got to.
 *
 * The same steps serve client-side subscriptions (the `subscribe` command) and server-side
 * ones (the token's `channels` claim at connect, and the API's `subscribe`), which differ
 * only in how the result reaches the client.
 */
import { verifySubscriptionToken } from '../auth/jwt.js';
import type { BusPublication } from '../bus/topic.js';
import type { NamespaceOptions } from '../config/namespaces.js';
import type { ChannelPosition } from '../history/reader.js';
import { metrics } from '../observability/metrics.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import { checkSubscribe, tokenChecks } from './access.js';
import type { Connection, Subscription } from './connection.js';
import { channelOf, isObject, optionalInt, optionalOffset, optionalString, optionalToken } from './validate.js';

/** Subscribe flag bit: the client (getState) wants error 112 instead of an unrecovered reply. */
const FLAG_REJECT_UNRECOVERED = 2;

/** Where the client says it is: recovery is asked for when `recover` is set. */
export interface RecoveryRequest {
  recover: boolean;
  offset: number;
  epoch: string;
}

export interface SubscriptionOptions {
  chanInfo?: string | undefined;
  expiresAt?: number | undefined;
  joinLeave?: boolean;
  serverSide?: boolean;
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

function checkRequest(conn: Connection, request: unknown): ClientRequest {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  if ((optionalInt(req.type, 'type') ?? 0) !== 0) throw new ProtocolError(Errors.notAvailable, 'only stream subscriptions');
  if (req.tf !== undefined) throw new ProtocolError(Errors.notAvailable, 'tag filters are not supported');
  if (conn.subscriptions.has(channel)) throw new ProtocolError(Errors.alreadySubscribed);
  if (conn.subscriptions.size >= conn.deps.settings.channelsPerConnection) throw new ProtocolError(Errors.limitExceeded);
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

/** The `subscribe` command. */
export async function subscribe(conn: Connection, request: unknown, id: number): Promise<undefined> {
  const req = checkRequest(conn, request);
  // A given token is verified whatever the channel (Centrifugo does the same), and only the
  // verified grant entitles the connection to a private one: never the field's presence.
  const grant = req.token === undefined ? undefined : await checkToken(conn, req.channel, req.token);
  const ns = checkSubscribe(conn, req.channel, grant === undefined ? 'none' : 'token');
  const opened = await openSubscription(conn, req.channel, ns, req, {
    chanInfo: grant?.info,
    expiresAt: grant?.expiresAt,
    joinLeave: req.joinLeave && ns.join_leave,
  });
  if (!opened) return undefined;
  if (req.recover && !opened.recovered && req.rejectUnrecovered) {
    conn.dropSubscription(opened.sub, false);
    throw new ProtocolError(Errors.unrecoverablePosition);
  }
  // Reply first, then release the buffer: the client drops publications that arrive
  // before its subscribe reply.
  conn.reply(id, 'subscribe', opened.result);
  goLive(conn, opened);
  return undefined;
}

/**
 * Steps 1–2: registers the subscription, attaches it to the hub and computes its result.
 * Undefined when the connection closed meanwhile. On failure nothing is left behind.
 */
export async function openSubscription(
  conn: Connection,
  channel: string,
  ns: NamespaceOptions,
  position: RecoveryRequest,
  opts: SubscriptionOptions,
): Promise<Opened | undefined> {
  const sub = conn.newSubscription(channel, ns, opts);
  conn.subscriptions.set(channel, sub);
  try {
    await conn.deps.hub.attach(channel, sub);
    const pos = await conn.deps.history.position(channel, position.recover ? position.offset : 0);
    const pubs = position.recover && ns.recovery ? await recover(conn, channel, ns, position, pos, opts) : undefined;
    if (ns.presence) await conn.deps.presence.add(channel, conn.clientId, sub.infoJson);
    if (conn.state === 'closed' || conn.subscriptions.get(channel) !== sub) {
      conn.dropSubscription(sub, false);
      return undefined;
    }
    sub.state = 'subscribed';
    const startAt = pubs === undefined ? pos.top : position.offset + pubs.length;
    return { sub, pos, startAt, recovered: pubs !== undefined, result: encodeResult(ns, position, pos, pubs, opts.expiresAt) };
  } catch (err) {
    conn.dropSubscription(sub, false);
    throw err;
  }
}

/**
 * Step 4, after the result was written: the hub streams what the reply did not carry up to
 * the top, then releases the buffer; others hear of the join.
 */
export function goLive(conn: Connection, opened: Opened): void {
  const { sub, pos } = opened;
  conn.deps.hub.start(sub.channel, sub, opened.startAt, pos.top);
  if (sub.namespace.join_leave) conn.deps.events.announce(sub.channel, 'join', sub.infoJson);
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
  conn: Connection,
  channel: string,
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
  opts: SubscriptionOptions,
): Promise<BusPublication[] | undefined> {
  const maxBytes = opts.serverSide ? 0 : conn.deps.settings.replyMaxBytes;
  const first = await recoverRange(conn, channel, ns, req, pos, maxBytes);
  metrics.recoveries.inc({ outcome: first === undefined ? 'not_recovered' : first.fromDb > 0 ? 'postgres' : 'cache' });
  if (first === undefined) return undefined;
  return opts.serverSide ? [] : first.pubs;
}

async function recoverRange(
  conn: Connection,
  channel: string,
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
  maxBytes: number,
): Promise<{ pubs: BusPublication[]; fromDb: number } | undefined> {
  // An empty epoch is accepted, as Centrifugo does (`node.go` history, `isStreamRecovered`):
  // a client that subscribed before the channel's first publication never got one. It is no
  // way around the bounds: the gap is held to `recovery_max` and streamed like any other.
  if (req.epoch !== '' && req.epoch !== pos.epoch) return undefined;
  const missing = pos.top - req.offset;
  if (missing < 0 || missing > ns.recovery_max) return undefined;
  if (missing === 0) return { pubs: [], fromDb: 0 };
  const source = { fromDb: 0 };
  const pubs = await conn.deps.history.chunk(channel, pos.epoch, req.offset, pos.top, maxBytes, source);
  // A chunk is contiguous from offset+1: empty means the start of the gap is gone.
  return pubs.length > 0 ? { pubs, fromDb: source.fromDb } : undefined;
}

function encodeResult(
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
  recovered: BusPublication[] | undefined,
  expiresAt: number | undefined,
): string {
  let out = `{"recoverable":${ns.recovery},"positioned":true`;
  if (expiresAt !== undefined) out += `,"expires":true,"ttl":${Math.max(1, expiresAt - Math.floor(Date.now() / 1000))}`;
  if (pos.epoch) out += `,"epoch":${JSON.stringify(pos.epoch)}`;
  // After a successful recovery the result carries the client's own offset and the
  // publications after it; the client walks them up to the top (Go does the same).
  const offset = recovered ? req.offset : pos.top;
  if (offset > 0) out += `,"offset":${offset}`;
  if (req.recover) out += ',"was_recovering":true';
  if (recovered) out += ',"recovered":true';
  if (recovered && recovered.length > 0) out += `,"publications":[${recovered.map((p) => p.json).join(',')}]`;
  return `${out}}`;
}

export async function checkToken(conn: Connection, channel: string, token: string) {
  const grant = await verifySubscriptionToken(token, conn.deps.settings.tokenSecret, {
    channel,
    user: conn.user,
    client: conn.clientId,
    ...tokenChecks(conn),
  });
  return { expiresAt: grant.expiresAt, info: grant.info === undefined ? undefined : JSON.stringify(grant.info) };
}
