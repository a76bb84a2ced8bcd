/**
 * What an edit or a delete may change (issue 15), shared by the HTTP API (src/api/edits.ts)
 * and the client RPCs (src/gateway/sync.ts): an original publication still stored. An edit of
 * an edit would make "the latest version" ambiguous, so events are never targets.
 */
import { EDIT_OF_TAG, EDIT_OP_TAG, type StoredVersion } from '../db/repos/edits.js';
import type { HistoryReader } from './reader.js';

export type ChangeOp = 'edit' | 'delete';

/** The publication at `offset` if it may be changed, else why not (a bad request either way). */
export async function changeTarget(history: HistoryReader, channel: string, offset: number): Promise<StoredVersion | string> {
  const target = await history.publicationAt(channel, offset);
  if (!target) return `no publication at offset ${offset}`;
  if (target.tags && EDIT_OP_TAG in (JSON.parse(target.tags) as Record<string, string>)) {
    return 'an edit or a delete cannot itself be changed';
  }
  return target;
}

/** The tags of the event that changes `offset`. */
export function changeTags(op: ChangeOp, offset: number): string {
  return JSON.stringify({ [EDIT_OP_TAG]: op, [EDIT_OF_TAG]: String(offset) });
}
