/**
 * One function per client command, but subscribe (./subscribe.ts). Each returns the reply's
 * result as JSON text, from an encoder of protocol/codec.ts, or undefined when the reply is
 * written later (publish) or there is none (send). Errors are thrown as ProtocolError /
 * DisconnectError and mapped in one place, Connection.fail. ./dispatch.ts puts them in the
 * command table.
 */
import { verifyConnectionToken, type ConnectionCredentials } from '../auth/jwt.js';
import {
  EMPTY_RESULT,
  encodeConnectResult,
  encodeHistoryResult,
  encodePresenceStatsResult,
  encodeRefreshResult,
  encodeSubRefreshResult,
} from '../protocol/codec.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';
import { checkHistory, checkPresence, checkPublish, checkSubscriptionToken, tokenChecks } from './access.js';
import { ttlOf } from './expiry.js';
import { claimedChannels, subscribeServerSide } from './server-subs.js';
import { connectByProxy, publishByProxy, rpcByProxy, type ProxiedConnect } from './proxied.js';
import { isOwnRpc, ownRpc } from './sync.js';
import type { CommandHandler, Identity, Session } from './session.js';
import { channelOf, isObject, optionalInt, optionalOffset, optionalString, optionalToken, requestObject } from './validate.js';

export const connect: CommandHandler = async (session, request, id) => {
  const req = requestObject(request);
  const token = optionalToken(req);
  const byProxy = token === undefined || session.deps.proxy.connectWithToken;
  const creds = byProxy ? await withoutToken(session, req, token) : await verifyConnectionToken(token, session.deps.settings.tokenSecret, tokenChecks(session));
  const channels = claimedChannels(session, creds.channels);
  if (!session.authenticate(identityOf(creds))) return undefined;
  const subs = await subscribeServerSide(session, channels, req.subs);
  if (session.closed) return undefined;
  // The reply goes out before the server-side subscriptions go live (same rule as subscribe).
  const { version, pingIntervalS } = session.deps.settings;
  const result = {
    client: session.clientId,
    version,
    // With a refresh proxy the server renews the connection: the client is not told to.
    ttl: session.deps.proxy.has('refresh') ? undefined : ttlOf(creds.expiresAt),
    ping: pingIntervalS > 0 ? pingIntervalS : undefined,
    dataJson: 'dataJson' in creds ? creds.dataJson : undefined,
  };
  session.reply(id, 'connect', encodeConnectResult(result, subs.results));
  subs.goLive();
  return undefined;
};

/** No token (or TIDINGS_PROXY_CONNECT_WITH_TOKEN): the connect proxy decides, when there is one (issue 14). */
async function withoutToken(session: Session, req: Record<string, unknown>, token: string | undefined): Promise<ProxiedConnect> {
  if (!session.deps.proxy.has('connect')) throw new DisconnectError(Disconnect.BadRequest, 'client credentials not found');
  return connectByProxy(session, req, token);
}

function identityOf(creds: Omit<ConnectionCredentials, 'claims'>): Identity {
  const connInfo = creds.info === undefined || creds.info === null ? undefined : JSON.stringify(creds.info);
  return { user: creds.user, connInfo, expiresAt: creds.expiresAt };
}

export const refresh: CommandHandler = async (session, request) => {
  const token = optionalToken(requestObject(request));
  if (token === undefined) throw new DisconnectError(Disconnect.BadRequest, 'empty refresh token');
  const creds = await verifyConnectionToken(token, session.deps.settings.tokenSecret, tokenChecks(session)).catch(
    (err: unknown) => {
      // An expired token in a refresh means the client could not get a fresh one: let it
      // reconnect (3005) rather than keep a connection whose credentials lapsed.
      if (err instanceof ProtocolError) throw new DisconnectError(Disconnect.Expired, 'refresh token expired');
      throw err;
    },
  );
  if (creds.user !== session.user) throw new DisconnectError(Disconnect.InvalidToken, 'refresh for another user');
  session.refreshExpiry(creds.expiresAt);
  const { version } = session.deps.settings;
  return encodeRefreshResult({ client: session.clientId, version, ttl: ttlOf(creds.expiresAt) });
};

export const unsubscribe: CommandHandler = async (session, request) => {
  // Always a success, even for a channel we do not know: any error makes the SDK reconnect.
  const channel = isObject(request) && typeof request.channel === 'string' ? request.channel : undefined;
  const sub = channel === undefined ? undefined : session.subscriptions.get(channel);
  if (sub) session.dropSubscription(sub, true);
  return EMPTY_RESULT;
};

export const publish: CommandHandler = async (session, request, id) => {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  if (req.data === undefined) throw new ProtocolError(Errors.badRequest, 'publish without data');
  const ns = checkPublish(session, channel);
  let payload: unknown = req.data;
  if (ns.proxy_publish) {
    // Awaited in command order, so the backend sees a connection's publishes as they are
    // queued (guarantee 3).
    payload = await publishByProxy(session, channel, req.data);
    if (session.closed) return undefined;
    checkPublish(session, channel);
  }
  const data = JSON.stringify(payload);
  // Flow control (issue 12): while the partition is congested the publish waits, and the
  // commands behind it with it, so the connection stops being read; never a 111. Past the
  // wait's bound it was not queued: error 100, definitively not committed.
  const room = session.deps.flow.room(channel, session.receivedAt);
  if (room !== true) {
    if (!(await room)) throw new ProtocolError(Errors.internal, 'no room in the ingest backlog in time');
    if (session.closed) return undefined;
    checkPublish(session, channel); // it may have unsubscribed meanwhile
  }
  const sub = session.subscriptions.get(channel);
  // Queued now, in command order; answered when the worker acknowledges the commit, and
  // counted in the connection's backlog until then.
  const release = session.holdInflight(data.length);
  session.deps.ingest
    .publish(
      { channel, data, user: session.user, client: session.clientId, connInfo: session.connInfo, chanInfo: sub?.chanInfo },
      true,
    )
    .then(
      () => {
        release();
        session.reply(id, 'publish', EMPTY_RESULT);
      },
      (err: unknown) => {
        release();
        session.fail(id, err, 'publish');
      },
    );
  return undefined;
};

export const history: CommandHandler = async (session, request) => {
  const channel = channelOf(request);
  checkHistory(session, channel);
  const { historyMaxPerCall, replyMaxBytes } = session.deps.settings;
  const query = historyQuery(request as Record<string, unknown>, historyMaxPerCall);
  // At most `replyMaxBytes` of publications (the first always comes): the client pages on
  // with `since` = the last offset it got, as it would past `limit`.
  const page = await session.deps.history.page(channel, { ...query.page, maxBytes: replyMaxBytes });
  if (query.sinceEpoch && page.epoch && query.sinceEpoch !== page.epoch) {
    throw new ProtocolError(Errors.unrecoverablePosition);
  }
  return encodeHistoryResult(page.publications, page.epoch, page.top);
};

/** limit 0 or none: the position only; -1: all, up to `maxPerCall`; `since`: after that position. */
function historyQuery(req: Record<string, unknown>, maxPerCall: number) {
  const asked = optionalInt(req.limit, 'limit') ?? 0;
  const limit = asked < 0 ? maxPerCall : Math.min(asked, maxPerCall);
  const since = isObject(req.since) ? req.since : undefined;
  const sinceOffset = since ? (optionalOffset(since.offset, 'since.offset') ?? 0) : undefined;
  const sinceEpoch = since ? optionalString(since, 'epoch') : undefined;
  return { page: { limit, sinceOffset, reverse: req.reverse === true }, sinceEpoch };
}

export const presence: CommandHandler = async (session, request) => {
  const channel = channelOf(request);
  checkPresence(session, channel);
  return session.deps.presence.presenceJson(channel);
};

export const presenceStats: CommandHandler = async (session, request) => {
  const channel = channelOf(request);
  checkPresence(session, channel);
  return encodePresenceStatsResult(await session.deps.presence.stats(channel));
};

/** `rpc`: `tidings.*` methods by Tidings itself (./sync.ts), the rest by the app backend's RPC proxy (issue 14). */
export const rpc: CommandHandler = async (session, request) => {
  const method = isObject(request) && typeof request.method === 'string' ? request.method : '';
  if (isOwnRpc(method)) return ownRpc(session, method, (request as Record<string, unknown>).data);
  return rpcByProxy(session, request);
};

export const notAvailable: CommandHandler = async () => {
  throw new ProtocolError(Errors.notAvailable);
};

export const subRefresh: CommandHandler = async (session, request) => {
  const channel = channelOf(request);
  const sub = session.subscriptions.get(channel);
  if (!sub) throw new ProtocolError(Errors.permissionDenied, 'not subscribed');
  const token = optionalToken(request as Record<string, unknown>);
  if (token === undefined) throw new ProtocolError(Errors.badRequest, 'empty subscription token');
  const grant = await checkSubscriptionToken(session, channel, token);
  // A subscription dropped meanwhile keeps no timer (Subscription.expireAt).
  sub.expireAt(grant.expiresAt);
  return encodeSubRefreshResult(ttlOf(grant.expiresAt));
};

/** `send` has no id and no reply; Tidings has no message handler, so it is accepted and dropped. */
export const send: CommandHandler = async () => undefined;
