/**
 * What the app's backend decides through its proxies (issue 14, src/proxy/client.ts), in
 * Centrifugo's request and result shapes: a connect without a token, a client RPC, a publish
 * or a subscribe in a namespace that opts in. Each function builds the request, calls, and
 * checks the result before anything of it is used: a result the client could not be served
 * from (a user that is not a string, an expiry in the past) is a failed call, error 100.
 */
import type { ConnectionCredentials } from '../auth/jwt.js';
import { OWN_RPC_PREFIX } from '../config/proxy.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import { MAX_USER_BYTES, isStorableText } from '../protocol/text.js';
import type { Session } from './session.js';
import { isObject, optionalString } from './validate.js';


/** The fields Centrifugo puts in every proxy request. */
function base(session: Session): Record<string, unknown> {
  return { client: session.clientId || session.reservedClientId, transport: 'websocket', protocol: 'json', encoding: 'json' };
}

function invalid(kind: string, detail: string): ProtocolError {
  return new ProtocolError(Errors.internal, `${kind} proxy result: ${detail}`);
}

/** Unix seconds in the future, or undefined for "never" (absent or 0); anything else is invalid. */
function expiryOf(kind: string, value: unknown): number | undefined {
  if (value === undefined || value === null || value === 0) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= Date.now() / 1000) {
    throw invalid(kind, 'expire_at is not a time in the future');
  }
  return value;
}

export interface ProxiedConnect extends Omit<ConnectionCredentials, 'claims'> {
  /** `data` for the connect reply, as JSON text. */
  dataJson: string | undefined;
}

/** A connect without a token: the backend names the user from the forwarded headers (cookie, …). */
export async function connectByProxy(session: Session, req: Record<string, unknown>, token?: string): Promise<ProxiedConnect> {
  const body = {
    ...base(session),
    name: optionalString(req, 'name'),
    version: optionalString(req, 'version'),
    data: req.data,
    token,
  };
  const result = await session.deps.proxy.call('connect', body, { headers: session.proxyHeaders });
  if (typeof result.user !== 'string' || !isStorableText(result.user, MAX_USER_BYTES)) throw invalid('connect', 'user');
  const channels = result.channels;
  if (channels !== undefined && !(Array.isArray(channels) && channels.every((c) => typeof c === 'string'))) {
    throw invalid('connect', 'channels is not a list of names');
  }
  return {
    user: result.user,
    expiresAt: expiryOf('connect', result.expire_at),
    info: result.info ?? undefined,
    channels: channels as string[] | undefined,
    dataJson: result.data === undefined ? undefined : JSON.stringify(result.data),
  };
}

/** `rpc`: the backend's `data`, as JSON text, for the reply `{"data": …}`. */
export async function rpcByProxy(session: Session, request: unknown): Promise<string> {
  const req = isObject(request) ? request : {};
  const method = optionalString(req, 'method') ?? '';
  if (method.startsWith(OWN_RPC_PREFIX) || !session.deps.proxy.has('rpc')) {
    throw new ProtocolError(Errors.notAvailable, `rpc ${method}`);
  }
  const result = await session.deps.proxy.call('rpc', { ...base(session), user: session.user, method, data: req.data }, { headers: session.proxyHeaders });
  return result.data === undefined ? '{}' : `{"data":${JSON.stringify(result.data)}}`;
}

/** A client publish in a `proxy_publish` namespace: the data to queue, the backend's if it replaced it. */
export async function publishByProxy(session: Session, channel: string, data: unknown): Promise<unknown> {
  const body = { ...base(session), user: session.user, channel, data };
  const result = await session.deps.proxy.call('publish', body, { headers: session.proxyHeaders });
  return result.data === undefined ? data : result.data;
}

export interface ProxiedGrant {
  /** chan_info as JSON text. */
  info: string | undefined;
  expiresAt: number | undefined;
  /** `data` for the subscribe reply, as JSON text. */
  dataJson: string | undefined;
}

/** A subscribe without a token in a `proxy_subscribe` namespace: the backend allows it, or not. */
export async function subscribeByProxy(session: Session, channel: string, data: unknown): Promise<ProxiedGrant> {
  const body = { ...base(session), user: session.user, channel, data };
  const result = await session.deps.proxy.call('subscribe', body, { headers: session.proxyHeaders });
  return {
    info: result.info === undefined || result.info === null ? undefined : JSON.stringify(result.info),
    expiresAt: expiryOf('subscribe', result.expire_at),
    dataJson: result.data === undefined ? undefined : JSON.stringify(result.data),
  };
}

/** What the refresh and sub_refresh proxies answer: the session lapses, or lives on until `expiresAt`. */
export type Renewal = { expired: true } | { expired: false; expiresAt: number | undefined; info: string | undefined };

function renewalOf(kind: string, result: Record<string, unknown>): Renewal {
  if (result.expired === true) return { expired: true };
  if (result.expired !== undefined && result.expired !== false) throw invalid(kind, 'expired is not a boolean');
  return {
    expired: false,
    expiresAt: expiryOf(kind, result.expire_at),
    info: result.info === undefined || result.info === null ? undefined : JSON.stringify(result.info),
  };
}

/** An expiring connection, renewed by the server when there is a refresh proxy (the client is not asked). */
export async function refreshByProxy(session: Session): Promise<Renewal> {
  const result = await session.deps.proxy.call('refresh', { ...base(session), user: session.user }, { headers: session.proxyHeaders });
  return renewalOf('refresh', result);
}

/** An expiring subscription of a `proxy_sub_refresh` namespace, renewed by the server. */
export async function subRefreshByProxy(session: Session, channel: string): Promise<Renewal> {
  const body = { ...base(session), user: session.user, channel };
  return renewalOf('sub_refresh', await session.deps.proxy.call('sub_refresh', body, { headers: session.proxyHeaders }));
}
