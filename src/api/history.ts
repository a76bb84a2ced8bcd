/**
 * `history` and `history_remove`.
 *
 * `history` has the client command's semantics (PROTOCOL.md B, history): `limit` missing or
 * 0 → only the position; -1 → everything up to the per-call cap; `since` → after that
 * offset (before it, with `reverse`); `reverse` → newest first; a `since.epoch` that is not
 * the channel's → 112. The result always has `publications`, `epoch` and `offset`. It
 * carries at most TIDINGS_REPLY_MAX_BYTES of publications (the first always comes, issue
 * 9): the caller pages on with `since` = the last offset it got.
 *
 * `history_remove` deletes the channel's stored publications and keeps its epoch and top
 * offset, so later publications continue the numbering and positions clients hold stay
 * meaningful (they just cannot recover what was removed). A gateway never writes
 * PostgreSQL, so the removal is a job on the channel's partition queue, ordered with the
 * publications around it; the reply comes when the worker has committed it.
 *
 * Both answer 108 when the namespace has `allow_history: false`.
 */
import { encodeHistoryResult } from '../protocol/codec.js';
import type { ApiContext, ApiMethod } from './context.js';
import { latestPage } from './edits.js';
import { ApiError, ApiErrors } from './errors.js';
import { channelName, isObject, namespaceOf, optionalBool, optionalInt, optionalString, type Params } from './params.js';

function historyChannel(ctx: ApiContext, params: Params): string {
  const channel = channelName(params.channel);
  if (!namespaceOf(ctx.namespaces, channel).allow_history) throw new ApiError(ApiErrors.notAvailable, 'history is off');
  return channel;
}

function sinceOf(params: Params): { offset: number; epoch: string | undefined } | undefined {
  const since = params.since;
  if (since === undefined || since === null) return undefined;
  if (!isObject(since)) throw new ApiError(ApiErrors.badRequest, 'since must be an object');
  const offset = optionalInt(since, 'offset') ?? 0;
  if (offset < 0) throw new ApiError(ApiErrors.badRequest, 'since.offset must not be negative');
  return { offset, epoch: optionalString(since, 'epoch') || undefined };
}

export const history: ApiMethod = async (ctx, params) => {
  const channel = historyChannel(ctx, params);
  const asked = optionalInt(params, 'limit') ?? 0;
  const limit = asked < 0 ? ctx.historyMaxPerCall : Math.min(asked, ctx.historyMaxPerCall);
  const since = sinceOf(params);
  const reverse = optionalBool(params, 'reverse');
  const page = await ctx.history.page(channel, { limit, sinceOffset: since?.offset, reverse, maxBytes: ctx.replyMaxBytes });
  if (since?.epoch && page.epoch && since.epoch !== page.epoch) throw new ApiError(ApiErrors.unrecoverablePosition);
  // The same result as the client protocol's history reply; with `latest`, edits folded in (./edits.ts).
  const publications = optionalBool(params, 'latest') ? await latestPage(ctx.history, channel, page.publications) : page.publications;
  return encodeHistoryResult(publications, page.epoch, page.top);
};

export const historyRemove: ApiMethod = async (ctx, params) => {
  const channel = historyChannel(ctx, params);
  await ctx.ingest.removeHistory(channel);
  return {};
};
