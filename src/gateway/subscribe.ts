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
 */
import { verifySubscriptionToken } from '../auth/jwt.js';
import type { BusPublication } from '../channels/bus.js';
import type { ChannelPosition } from '../history/reader.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import type { Connection } from './connection.js';
import { channelOf, optionalInt, optionalOffset, optionalString } from './validate.js';

/** Subscribe flag bit: the client (getState) wants error 112 instead of an unrecovered reply. */
const FLAG_REJECT_UNRECOVERED = 2;

interface SubscribeRequestChecked {
  channel: string;
  recover: boolean;
  offset: number;
  epoch: string;
  rejectUnrecovered: boolean;
  token: string | undefined;
}

function checkRequest(conn: Connection, request: unknown): SubscribeRequestChecked {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  if ((optionalInt(req.type, 'type') ?? 0) !== 0) throw new ProtocolError(Errors.notAvailable, 'only stream subscriptions');
  if (req.tf !== undefined) throw new ProtocolError(Errors.notAvailable, 'tag filters are not supported');
  if (conn.subscriptions.has(channel)) throw new ProtocolError(Errors.alreadySubscribed);
  if (conn.subscriptions.size >= conn.deps.settings.channelsPerConnection) throw new ProtocolError(Errors.limitExceeded);
  return {
    channel,
    recover: req.recover === true,
    offset: optionalOffset(req.offset, 'offset') ?? 0,
    epoch: optionalString(req, 'epoch') ?? '',
    rejectUnrecovered: ((optionalInt(req.flag, 'flag') ?? 0) & FLAG_REJECT_UNRECOVERED) !== 0,
    token: optionalString(req, 'token'),
  };
}

export async function subscribe(conn: Connection, request: unknown, id: number): Promise<undefined> {
  const req = checkRequest(conn, request);
  const chanInfo = req.token ? await channelInfoFromToken(conn, req) : undefined;
  const sub = conn.newSubscription(req.channel, chanInfo);
  conn.subscriptions.set(req.channel, sub);
  const { hub } = conn.deps;
  try {
    await hub.attach(req.channel, sub);
    const pos = await conn.deps.history.position(req.channel, req.recover ? req.offset : 0);
    const recovered = req.recover ? await recover(conn, req, pos) : undefined;
    if (conn.state === 'closed' || conn.subscriptions.get(req.channel) !== sub) {
      hub.detach(req.channel, sub);
      return undefined;
    }
    if (req.recover && !recovered && req.rejectUnrecovered) throw new ProtocolError(Errors.unrecoverablePosition);
    sub.state = 'subscribed';
    // Reply first, then release the buffer: the client drops publications that arrive
    // before its subscribe reply.
    conn.reply(id, 'subscribe', encodeSubscribeResult(req, pos, recovered));
    hub.start(req.channel, sub, pos.top);
    return undefined;
  } catch (err) {
    if (conn.subscriptions.get(req.channel) === sub) conn.subscriptions.delete(req.channel);
    hub.detach(req.channel, sub);
    throw err;
  }
}

/**
 * The publications the client missed, or undefined when they cannot all be given: another
 * epoch, an offset ahead of the stream, a gap larger than the recovery limit, or history
 * that no longer holds the start of the gap.
 */
async function recover(
  conn: Connection,
  req: SubscribeRequestChecked,
  pos: ChannelPosition,
): Promise<BusPublication[] | undefined> {
  if (req.epoch !== '' && req.epoch !== pos.epoch) return undefined;
  const missing = pos.top - req.offset;
  if (missing < 0 || missing > conn.deps.settings.recoveryMax) return undefined;
  if (missing === 0) return [];
  const pubs = await conn.deps.history.range(req.channel, pos.epoch, req.offset, pos.top, missing);
  return pubs.length === missing ? pubs : undefined;
}

function encodeSubscribeResult(
  req: SubscribeRequestChecked,
  pos: ChannelPosition,
  recovered: BusPublication[] | undefined,
): string {
  let out = '{"recoverable":true,"positioned":true';
  if (pos.epoch) out += `,"epoch":${JSON.stringify(pos.epoch)}`;
  // After a successful recovery the reply carries the client's own offset and the
  // publications after it; the client walks them up to the top (Go does the same).
  const offset = recovered ? req.offset : pos.top;
  if (offset > 0) out += `,"offset":${offset}`;
  if (req.recover) out += ',"was_recovering":true';
  if (recovered) out += ',"recovered":true';
  if (recovered && recovered.length > 0) out += `,"publications":[${recovered.map((p) => p.json).join(',')}]`;
  return `${out}}`;
}

async function channelInfoFromToken(conn: Connection, req: SubscribeRequestChecked): Promise<string | undefined> {
  const claims = await verifySubscriptionToken(req.token!, conn.deps.settings.tokenSecret, {
    channel: req.channel,
    user: conn.user,
    client: conn.clientId,
  });
  return claims.info === undefined ? undefined : JSON.stringify(claims.info);
}
