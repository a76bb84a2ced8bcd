/**
 * `unsubscribe`, `disconnect` and `subscribe`: commands for a user's connections, wherever
 * they are connected. Each is applied on this gateway before the reply and sent to the
 * others on the control topic (src/cluster/control.ts), so `{}` means "done here, sent to
 * every gateway listening".
 *
 * `user` is required (Centrifugo lets an empty user address every anonymous connection at
 * once; that is rarely meant, so Tidings answers 107). `client` narrows to one connection.
 * `session` (for HTTP-streaming emulation, which Tidings does not serve) is ignored.
 */
import { Disconnect, makeDisconnect, type DisconnectInfo } from '../protocol/codes.js';
import { MAX_USER_BYTES, isStorableText } from '../protocol/text.js';
import type { ApiContext, ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import {
  channelName,
  isObject,
  namespaceOf,
  optionalInt,
  optionalString,
  optionalStringList,
  rejectUnsupported,
  type Params,
} from './params.js';

/**
 * A `user` or `client` field: undefined when missing or null, else an id a connection could
 * have (non-empty, and storable within MAX_USER_BYTES, as a token's `sub` must be), else 107.
 * An empty `client` is a 107, not "every connection of the user" as Centrifugo reads
 * protobuf's zero value: a backend that meant one connection and passed an empty id would
 * otherwise subscribe, unsubscribe or disconnect all of them (issue 9). To address all of
 * a user's connections, leave `client` out.
 */
function connectionId(params: Params, field: 'user' | 'client'): string | undefined {
  const value = optionalString(params, field);
  if (value === undefined) return undefined;
  if (value === '') throw new ApiError(ApiErrors.badRequest, `${field} must not be empty`);
  if (!isStorableText(value, MAX_USER_BYTES)) throw new ApiError(ApiErrors.badRequest, `${field} is not a valid id`);
  return value;
}

function target(params: Params): { user: string; client: string | undefined } {
  const user = connectionId(params, 'user');
  if (user === undefined) throw new ApiError(ApiErrors.badRequest, 'user required');
  return { user, client: connectionId(params, 'client') };
}

function knownChannel(ctx: ApiContext, params: Params): string {
  const channel = channelName(params.channel);
  namespaceOf(ctx.namespaces, channel);
  return channel;
}

/** Every matching connection gets unsubscribe push 2000 and stays unsubscribed. */
export const unsubscribe: ApiMethod = async (ctx, params) => {
  const channel = knownChannel(ctx, params);
  await ctx.control.send({ op: 'unsubscribe', channel, ...target(params) });
  return {};
};

/**
 * `disconnect: {code, reason}` defaults to 3503 "force disconnect" (terminal for the SDK).
 * The code must be an application close code (3000–4999); a reason the SDK would misread
 * (empty, JSON, over 122 bytes) is replaced by the code's known one.
 */
function disconnectOf(params: Params): DisconnectInfo {
  const given = params.disconnect;
  if (given === undefined || given === null) return Disconnect.ForceNoReconnect;
  if (!isObject(given)) throw new ApiError(ApiErrors.badRequest, 'disconnect must be an object');
  const code = optionalInt(given, 'code') ?? Disconnect.ForceNoReconnect.code;
  if (code < 3000 || code > 4999) throw new ApiError(ApiErrors.badRequest, 'disconnect.code must be 3000-4999');
  return makeDisconnect(code, optionalString(given, 'reason'));
}

/** Matching connections are closed, except the client ids in `whitelist`. */
export const disconnect: ApiMethod = async (ctx, params) => {
  const { code, reason } = disconnectOf(params);
  const whitelist = optionalStringList(params, 'whitelist');
  await ctx.control.send({ op: 'disconnect', ...target(params), whitelist, code, reason });
  return {};
};

/**
 * Server-side subscription of the user's live connections: each gets a `subscribe` push,
 * then the channel's publications. Options that would change what the subscription is
 * (info, data, recover_since, expire_at, override) are not implemented: 108 when set.
 */
export const subscribe: ApiMethod = async (ctx, params) => {
  const channel = knownChannel(ctx, params);
  rejectUnsupported(params, ['info', 'b64info', 'data', 'b64data', 'recover_since', 'expire_at', 'override']);
  await ctx.control.send({ op: 'subscribe', channel, ...target(params) });
  return {};
};
