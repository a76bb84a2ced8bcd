/**
 * One function per client command. Each returns the reply body (JSON text or an object),
 * or undefined when the reply is written later (publish) or there is none (send). Errors
 * are thrown as ProtocolError / DisconnectError and mapped in Connection.fail.
 */
import { randomUUID } from 'node:crypto';
import { verifyConnectionToken } from '../auth/jwt.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';
import type { Method } from '../protocol/types.js';
import { checkHistory, checkPresence, checkPublish, tokenChecks } from './access.js';
import type { Connection } from './connection.js';
import { claimedChannels, subscribeServerSide } from './server-subs.js';
import { checkToken, subscribe } from './subscribe.js';
import { channelOf, isObject, optionalInt, optionalOffset, optionalString, optionalToken } from './validate.js';

type Handler = (conn: Connection, request: unknown, id: number) => Promise<string | object | undefined>;

function requestObject(request: unknown): Record<string, unknown> {
  if (request === undefined) return {};
  if (!isObject(request)) throw new ProtocolError(Errors.badRequest, 'request must be an object');
  return request;
}

function jsonOrUndefined(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : JSON.stringify(value);
}

function expiryFields(expiresAt: number | undefined): { expires?: true; ttl?: number } {
  if (expiresAt === undefined) return {};
  return { expires: true, ttl: Math.max(1, expiresAt - Math.floor(Date.now() / 1000)) };
}

const connect: Handler = async (conn, request, id) => {
  const req = requestObject(request);
  const token = optionalToken(req);
  if (token === undefined) throw new DisconnectError(Disconnect.BadRequest, 'client credentials not found');
  const creds = await verifyConnectionToken(token, conn.deps.settings.tokenSecret, tokenChecks(conn));
  const channels = claimedChannels(conn, creds.channels);
  if (conn.state !== 'connecting') return undefined;
  conn.clientId = randomUUID();
  conn.user = creds.user;
  conn.connInfo = jsonOrUndefined(creds.info);
  conn.expiresAt = creds.expiresAt;
  conn.markConnected();
  const subs = await subscribeServerSide(conn, channels, req.subs);
  if (conn.closed) return undefined;
  const { pingIntervalS } = conn.deps.settings;
  const head = JSON.stringify({
    client: conn.clientId,
    version: conn.deps.settings.version,
    ...expiryFields(creds.expiresAt),
    ...(pingIntervalS > 0 ? { ping: pingIntervalS, pong: true } : {}),
  });
  // The reply goes out before the server-side subscriptions go live (same rule as subscribe).
  conn.reply(id, 'connect', subs.results ? `${head.slice(0, -1)},"subs":${subs.results}}` : head);
  subs.goLive();
  return undefined;
};

const refresh: Handler = async (conn, request) => {
  const token = optionalToken(requestObject(request));
  if (token === undefined) throw new DisconnectError(Disconnect.BadRequest, 'empty refresh token');
  const creds = await verifyConnectionToken(token, conn.deps.settings.tokenSecret, tokenChecks(conn)).catch((err: unknown) => {
    // An expired token in a refresh means the client could not get a fresh one: let it
    // reconnect (3005) rather than keep a connection whose credentials lapsed.
    if (err instanceof ProtocolError) throw new DisconnectError(Disconnect.Expired, 'refresh token expired');
    throw err;
  });
  if (creds.user !== conn.user) throw new DisconnectError(Disconnect.InvalidToken, 'refresh for another user');
  conn.expiresAt = creds.expiresAt;
  conn.scheduleExpiry();
  return { client: conn.clientId, version: conn.deps.settings.version, ...expiryFields(creds.expiresAt) };
};

const unsubscribe: Handler = async (conn, request) => {
  // Always a success, even for a channel we do not know: any error makes the SDK reconnect.
  const channel = isObject(request) && typeof request.channel === 'string' ? request.channel : undefined;
  const sub = channel === undefined ? undefined : conn.subscriptions.get(channel);
  if (sub) conn.dropSubscription(sub, true);
  return {};
};

const publish: Handler = async (conn, request, id) => {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  if (req.data === undefined) throw new ProtocolError(Errors.badRequest, 'publish without data');
  checkPublish(conn, channel);
  const sub = conn.subscriptions.get(channel);
  // Queued now, in command order; answered when the worker acknowledges the commit.
  conn.deps.ingest
    .publish({
      channel,
      data: JSON.stringify(req.data),
      user: conn.user,
      client: conn.clientId,
      connInfo: conn.connInfo,
      chanInfo: sub?.chanInfo,
    })
    .then(
      () => conn.reply(id, 'publish', '{}'),
      (err: unknown) => conn.fail(id, err, 'publish'),
    );
  return undefined;
};

const history: Handler = async (conn, request) => {
  const channel = channelOf(request);
  const req = request as Record<string, unknown>;
  checkHistory(conn, channel);
  const { historyMaxPerCall, replyMaxBytes } = conn.deps.settings;
  const asked = optionalInt(req.limit, 'limit') ?? 0;
  const limit = asked < 0 ? historyMaxPerCall : Math.min(asked, historyMaxPerCall);
  const since = isObject(req.since) ? req.since : undefined;
  const sinceOffset = since ? optionalOffset(since.offset, 'since.offset') ?? 0 : undefined;
  const sinceEpoch = since ? optionalString(since, 'epoch') : undefined;
  // At most `replyMaxBytes` of publications (the first always comes): the client pages on
  // with `since` = the last offset it got, as it would past `limit`.
  const page = await conn.deps.history.page(channel, { limit, sinceOffset, reverse: req.reverse === true, maxBytes: replyMaxBytes });
  if (sinceEpoch && page.epoch && sinceEpoch !== page.epoch) throw new ProtocolError(Errors.unrecoverablePosition);
  const pubs = page.publications.map((p) => p.json).join(',');
  return `{"publications":[${pubs}],"epoch":${JSON.stringify(page.epoch)},"offset":${page.top}}`;
};

const presence: Handler = async (conn, request) => {
  const channel = channelOf(request);
  checkPresence(conn, channel);
  return conn.deps.presence.presenceJson(channel);
};

const presenceStats: Handler = async (conn, request) => {
  const channel = channelOf(request);
  checkPresence(conn, channel);
  return conn.deps.presence.stats(channel);
};

const notAvailable: Handler = async () => {
  throw new ProtocolError(Errors.notAvailable);
};

const subRefresh: Handler = async (conn, request) => {
  const channel = channelOf(request);
  const sub = conn.subscriptions.get(channel);
  if (!sub) throw new ProtocolError(Errors.permissionDenied, 'not subscribed');
  const token = optionalToken(request as Record<string, unknown>);
  if (token === undefined) throw new ProtocolError(Errors.badRequest, 'empty subscription token');
  const grant = await checkToken(conn, channel, token);
  conn.scheduleSubscriptionExpiry(sub, grant.expiresAt);
  return expiryFields(grant.expiresAt);
};

/** `send` has no id and no reply; Tidings has no message handler, so it is accepted and dropped. */
const send: Handler = async () => undefined;

export const handlers: Record<Method, Handler> = {
  connect,
  subscribe,
  unsubscribe,
  publish,
  history,
  refresh,
  sub_refresh: subRefresh,
  presence,
  presence_stats: presenceStats,
  rpc: notAvailable,
  ping: notAvailable,
  send,
};
