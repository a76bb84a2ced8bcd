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
import type { ServerSubscribeOptions } from '../gateway/session.js';

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

/** A required `user`, checked as `connectionId` checks it. */
export function userOf(params: Params): string {
  const user = connectionId(params, 'user');
  if (user === undefined) throw new ApiError(ApiErrors.badRequest, 'user required');
  return user;
}

function target(params: Params): { user: string; client: string | undefined } {
  return { user: userOf(params), client: connectionId(params, 'client') };
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
 * Server-side subscription of the user's live connections: each gets a `subscribe` push
 * (carrying `data`), then the channel's publications, from `recover_since` when given. `info`
 * becomes the subscription's chan_info; `expire_at` (unix seconds) ends it; `override`
 * switches presence and join/leave for it, or forces recovery on. The binary variants
 * (b64info, b64data) are 108: Tidings speaks JSON.
 */
export const subscribe: ApiMethod = async (ctx, params) => {
  const channel = knownChannel(ctx, params);
  rejectUnsupported(params, ['b64info', 'b64data']);
  await ctx.control.send({ op: 'subscribe', channel, ...target(params), options: subscribeOptions(params) });
  return {};
};

function subscribeOptions(params: Params): ServerSubscribeOptions {
  const since = params.recover_since;
  if (since !== undefined && since !== null && !isObject(since)) throw new ApiError(ApiErrors.badRequest, 'recover_since must be an object');
  const override = overrideOf(params.override);
  return {
    infoJson: jsonOf(params.info),
    dataJson: jsonOf(params.data),
    recoverSince: isObject(since) ? { offset: optionalInt(since, 'offset') ?? 0, epoch: optionalString(since, 'epoch') ?? '' } : undefined,
    expiresAt: expireAtOf(params),
    ...override,
  };
}

/** JSON text of a field, undefined when absent or null. */
function jsonOf(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : JSON.stringify(value);
}

/** `expire_at`: unix seconds in the future; 0 or absent: never. */
function expireAtOf(params: Params): number | undefined {
  const value = optionalInt(params, 'expire_at');
  if (value === undefined || value === 0) return undefined;
  if (value < 0 || value <= Date.now() / 1000) throw new ApiError(ApiErrors.badRequest, 'expire_at must be in the future');
  return value;
}

/** Centrifugo's override: `{presence: {value: bool}, join_leave: {value: bool}, force_recovery: {value: bool}}`. */
function overrideOf(value: unknown): Pick<ServerSubscribeOptions, 'presence' | 'joinLeave' | 'forceRecovery'> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new ApiError(ApiErrors.badRequest, 'override must be an object');
  const flag = (name: string): boolean | undefined => {
    const field = value[name];
    if (field === undefined || field === null) return undefined;
    if (!isObject(field) || typeof field.value !== 'boolean') throw new ApiError(ApiErrors.badRequest, `override.${name} must be {"value": true|false}`);
    return field.value;
  };
  rejectUnsupported(value, ['force_positioning', 'force_push_join_leave']);
  return { presence: flag('presence'), joinLeave: flag('join_leave'), forceRecovery: flag('force_recovery') };
}

/**
 * API `refresh`: the backend renews the matching connections (`expire_at`, unix seconds;
 * absent or 0: they no longer expire; `info`: their conn_info from now on) or ends them
 * (`expired: true`: closed with 3005, and the SDK reconnects).
 */
export const refresh: ApiMethod = async (ctx, params) => {
  const expired = params.expired === true;
  if (params.expired !== undefined && typeof params.expired !== 'boolean') throw new ApiError(ApiErrors.badRequest, 'expired must be a boolean');
  rejectUnsupported(params, ['session']);
  await ctx.control.send({ op: 'refresh', ...target(params), expired, expiresAt: expired ? undefined : expireAtOf(params), infoJson: jsonOf(params.info) });
  return {};
};
