/**
 * Subscribe, with recovery, in the fixed order of STYLE.md habit 3 / PROTOCOL.md D.3–D.4:
 *
 *   1. attach to the hub (buffering): from here on no live publication can be missed;
 *   2. read the channel position, and, when recovering, the publications after the
 *      client's offset (Redis first, PostgreSQL for what Redis no longer holds);
 *   3. write the reply (with the recovered publications);
 *   4. start the subscriber at the top it was given: the hub releases what it buffered,
 *      dropping what the reply already carried and filling any hole from history.
 *
 * A gap is an explicit outcome: `recovered` absent (or error 112 when the client asked for
 * that with flag 2), never a partial replay.
 *
 * The same steps serve client-side subscriptions (the `subscribe` command) and server-side
 * ones (the token's `channels` claim at connect, and the API's `subscribe`), which differ
 * only in how the result reaches the client.
 */
import { verifySubscriptionToken } from '../auth/jwt.js';
import type { BusPublication } from '../channels/bus.js';
import type { NamespaceOptions } from '../config/namespaces.js';
import type { ChannelPosition } from '../history/reader.js';
import { metrics } from '../observability/metrics.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import { checkSubscribe, tokenChecks } from './access.js';
import type { Connection, Subscription } from './connection.js';
import { channelOf, isObject, optionalInt, optionalOffset, optionalString } from './validate.js';

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
    token: optionalString(req, 'token'),
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
  const ns = checkSubscribe(conn, req.channel, req.token !== undefined);
  const grant = req.token ? await checkToken(conn, req.channel, req.token) : undefined;
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
    const pubs = position.recover && ns.recovery ? await recover(conn, channel, ns, position, pos) : undefined;
    if (ns.presence) await conn.deps.presence.add(channel, conn.clientId, sub.infoJson);
    if (conn.state === 'closed' || conn.subscriptions.get(channel) !== sub) {
      conn.dropSubscription(sub, false);
      return undefined;
    }
    sub.state = 'subscribed';
    return { sub, pos, recovered: pubs !== undefined, result: encodeResult(ns, position, pos, pubs, opts.expiresAt) };
  } catch (err) {
    conn.dropSubscription(sub, false);
    throw err;
  }
}

/** Step 4, after the result was written: the hub releases the buffer; others hear of the join. */
export function goLive(conn: Connection, opened: Opened): void {
  const { sub, pos } = opened;
  conn.deps.hub.start(sub.channel, sub, pos.top);
  if (sub.namespace.join_leave) conn.deps.events.announce(sub.channel, 'join', sub.infoJson);
}

/**
 * The publications the client missed, or undefined when they cannot all be given: another
 * epoch, an offset ahead of the stream, a gap larger than the recovery limit, or history
 * that no longer holds the start of the gap.
 */
async function recover(
  conn: Connection,
  channel: string,
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
): Promise<BusPublication[] | undefined> {
  const pubs = await recoverRange(conn, channel, ns, req, pos);
  metrics.recoveries.inc({ outcome: pubs === undefined ? 'not_recovered' : pubs.fromDb > 0 ? 'postgres' : 'cache' });
  return pubs?.pubs;
}

async function recoverRange(
  conn: Connection,
  channel: string,
  ns: NamespaceOptions,
  req: RecoveryRequest,
  pos: ChannelPosition,
): Promise<{ pubs: BusPublication[]; fromDb: number } | undefined> {
  if (req.epoch !== '' && req.epoch !== pos.epoch) return undefined;
  const missing = pos.top - req.offset;
  if (missing < 0 || missing > ns.recovery_max) return undefined;
  if (missing === 0) return { pubs: [], fromDb: 0 };
  const source = { fromDb: 0 };
  const pubs = await conn.deps.history.range(channel, pos.epoch, req.offset, pos.top, missing, source);
  return pubs.length === missing ? { pubs, fromDb: source.fromDb } : undefined;
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
