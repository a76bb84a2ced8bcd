/**
 * `edit` `{channel, offset, data}` and `delete` `{channel, offset}` (issue 15): each is a new
 * publication, in order after everything before it, whose tags say what it changes
 * (`tidings_op`: "edit" | "delete", `tidings_of`: the offset), so live subscribers and recovery
 * see it like any publication. The target must be an original publication still stored: an
 * edit of an edit, or of an offset with nothing there, is 107. A delete carries `null` data.
 *
 * `history` with `latest: true` folds them back (`latestPage`): each original publication with
 * its last edit's data, a deleted one as a tombstone (`data: null`, tag `tidings_deleted`), and
 * the edit and delete events themselves left out.
 */
import type { BusPublication } from '../bus/topic.js';
import { EDIT_OP_TAG } from '../db/repos/edits.js';
import { changeTags, changeTarget, type ChangeOp } from '../history/changes.js';
import type { HistoryReader } from '../history/reader.js';
import type { ApiContext, ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { channelName, namespaceOf, optionalInt, type Params } from './params.js';

async function changeEvent(ctx: ApiContext, params: Params, op: ChangeOp, data: string) {
  const channel = channelName(params.channel);
  namespaceOf(ctx.namespaces, channel);
  const offset = optionalInt(params, 'offset');
  if (offset === undefined || offset < 1) throw new ApiError(ApiErrors.badRequest, 'offset must be 1 or more');
  const target = await changeTarget(ctx.history, channel, offset);
  if (typeof target === 'string') throw new ApiError(ApiErrors.badRequest, target);
  const committed = await ctx.ingest.publish({ channel, data, tags: changeTags(op, offset) });
  return { offset: committed.offset, epoch: committed.epoch };
}

export const edit: ApiMethod = async (ctx, params) => {
  if (params.data === undefined) throw new ApiError(ApiErrors.badRequest, 'data required');
  return changeEvent(ctx, params, 'edit', JSON.stringify(params.data));
};

export const deletePublication: ApiMethod = async (ctx, params) => changeEvent(ctx, params, 'delete', 'null');

interface ParsedPublication {
  offset: number;
  data: unknown;
  tags?: Record<string, string>;
  [field: string]: unknown;
}

/** A history page with each original at its latest version, edits and deletes folded in (see above). */
export async function latestPage(history: HistoryReader, channel: string, page: BusPublication[]): Promise<BusPublication[]> {
  const parsed = page.map((p) => JSON.parse(p.json) as ParsedPublication);
  const originals = parsed.filter((p) => !(p.tags && EDIT_OP_TAG in p.tags));
  const latest = await history.latestVersions(
    channel,
    originals.map((p) => p.offset),
  );
  return originals.map((p) => {
    const change = latest.get(p.offset);
    if (!change) return { offset: p.offset, json: JSON.stringify(p) };
    const tags = { ...(p.tags ?? {}) };
    if (change.op === 'delete') return { offset: p.offset, json: JSON.stringify({ offset: p.offset, data: null, tags: { ...tags, tidings_deleted: String(change.offset) } }) };
    return { offset: p.offset, json: JSON.stringify({ ...p, data: JSON.parse(change.data) as unknown, tags: { ...tags, tidings_edited: String(change.offset) } }) };
  });
}
