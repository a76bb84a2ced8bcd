/**
 * `presence` and `presence_stats`, read from the PresenceStore (every gateway's entries,
 * expired ones dropped). 108 when the namespace has `presence: false`. Unlike the client
 * commands, the API needs no subscription: the backend may look at any channel.
 */
import type { ApiContext, ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { channelName, namespaceOf, type Params } from './params.js';

function presenceChannel(ctx: ApiContext, params: Params): string {
  const channel = channelName(params.channel);
  if (!namespaceOf(ctx.namespaces, channel).presence) throw new ApiError(ApiErrors.notAvailable, 'presence is off');
  return channel;
}

/** `{presence: {clientId: {client, user, conn_info?, chan_info?}}}`, the map always present. */
export const presence: ApiMethod = async (ctx, params) => ctx.presence.presenceJson(presenceChannel(ctx, params));

/** `{num_clients, num_users}`, both always present. */
export const presenceStats: ApiMethod = async (ctx, params) => ctx.presence.stats(presenceChannel(ctx, params));
