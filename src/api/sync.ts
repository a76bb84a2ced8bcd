/**
 * Read cursors from the backend (issue 15): `read_cursor_set` `{user, channel, offset}` moves
 * the user's cursor forward (as the client's `tidings.read` does, and the user's connections
 * hear of it the same way) and answers `{offset, read, unread}`; `unread` `{user, channels?}`
 * answers `{channels: {<name>: {offset, read, unread}}}`, for every channel where the user has
 * a cursor when `channels` is absent; `catchup` is the client's `tidings.catchup` for a user.
 * The API is the backend: no read rule applies here (an unknown namespace still answers 102
 * in its channel's place).
 */
import type { ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { channelName, optionalInt, optionalStringList, type Params } from './params.js';
import { userOf } from './users.js';
import { isValidChannelName } from '../channels/names.js';
import { encodeCatchup, parseCatchup } from '../history/catchup.js';

const MAX_CHANNELS = 1000;

export const readCursorSet: ApiMethod = async (ctx, params) => {
  const user = userOf(params);
  const channel = channelName(params.channel);
  const offset = optionalInt(params, 'offset');
  if (offset === undefined || offset < 0) throw new ApiError(ApiErrors.badRequest, 'offset must be 0 or more');
  const { channel: name, ...state } = await ctx.cursors.set(user, channel, offset);
  await ctx.control.send({ op: 'message', user, dataJson: JSON.stringify({ type: 'tidings.read', channel: name, ...state }) });
  return state;
};

export const unread: ApiMethod = async (ctx, params) => {
  const user = userOf(params);
  const names = channelsOf(params) ?? (await ctx.cursors.channels(user, MAX_CHANNELS));
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const { channel, ...state } of await ctx.cursors.states(user, names)) out[channel] = state;
  return { channels: out };
};

/** `catchup` `{user, channels: {<name>: {offset, epoch}}, limit?}`: as the client's `tidings.catchup`, without the read rule. */
export const catchup: ApiMethod = async (ctx, params) => {
  const user = userOf(params);
  const request = parseCatchup(params, isValidChannelName);
  if (typeof request === 'string') throw new ApiError(ApiErrors.badRequest, request);
  const wanted = request.channels.filter((c) => ctx.namespaces.of(c.channel) !== undefined);
  const refused = new Map(request.channels.filter((c) => !wanted.includes(c)).map((c) => [c.channel, ApiErrors.unknownChannel]));
  return encodeCatchup(request, await ctx.history.catchup(user, wanted, request.limit, ctx.replyMaxBytes), refused);
};

function channelsOf(params: Params): string[] | undefined {
  if (params.channels === undefined || params.channels === null) return undefined;
  const names = [...new Set(optionalStringList(params, 'channels').map((c) => channelName(c, 'channels')))];
  if (names.length > MAX_CHANNELS) throw new ApiError(ApiErrors.badRequest, `more than ${MAX_CHANNELS} channels`);
  return names;
}
