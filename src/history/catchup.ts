/**
 * Catch-up across many channels in one call (issue 15), shared by the client RPC
 * `tidings.catchup` and the API's `catchup`: the request's shape and bounds, and the answer
 * as JSON text, each publication encoded as the pushes encode it.
 *
 * Per channel the answer is `{publications, offset, epoch, more, unread}`: the publications
 * after the caller's offset (at most `limit`), the channel's top and epoch, whether more
 * remain (call again from the last offset), and the user's unread count. A channel whose
 * epoch is not the one the caller has answers error 112 in its place: its offsets mean
 * nothing any more, and the client reloads that channel.
 */
import type { CatchupChannel } from '../db/repos/catchup.js';
import { Errors, type ErrorBody } from '../protocol/codes.js';
import { publicationJson } from '../protocol/publication.js';

/** Channels one call may name, and publications per channel (default and most). */
export const CATCHUP_MAX_CHANNELS = 1000;
export const CATCHUP_DEFAULT_LIMIT = 100;
export const CATCHUP_MAX_LIMIT = 1000;

export interface CatchupRequest {
  channels: { channel: string; after: number; epoch: string }[];
  limit: number;
}

/** Why a request is malformed (for a 107), or its parsed form. */
export function parseCatchup(data: unknown, isChannel: (name: string) => boolean): CatchupRequest | string {
  if (typeof data !== 'object' || data === null) return 'catchup takes an object';
  const { channels, limit } = data as { channels?: unknown; limit?: unknown };
  if (typeof channels !== 'object' || channels === null || Array.isArray(channels)) return 'channels must be an object of name → {offset, epoch}';
  const entries = Object.entries(channels);
  if (entries.length > CATCHUP_MAX_CHANNELS) return `more than ${CATCHUP_MAX_CHANNELS} channels`;
  if (limit !== undefined && (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > CATCHUP_MAX_LIMIT)) {
    return `limit must be 1-${CATCHUP_MAX_LIMIT}`;
  }
  const out: CatchupRequest['channels'] = [];
  for (const [channel, position] of entries) {
    if (!isChannel(channel)) return `invalid channel name ${JSON.stringify(channel.slice(0, 64))}`;
    if (typeof position !== 'object' || position === null) return `${channel}: its position must be {offset, epoch}`;
    const { offset = 0, epoch = '' } = position as { offset?: unknown; epoch?: unknown };
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) return `${channel}: offset must be a whole number >= 0`;
    if (typeof epoch !== 'string') return `${channel}: epoch must be a string`;
    out.push({ channel, after: offset as number, epoch });
  }
  return { channels: out, limit: (limit as number | undefined) ?? CATCHUP_DEFAULT_LIMIT };
}

/** `{"channels":{…}}`: each read channel's answer, and `refused` ones' errors, in request order. */
export function encodeCatchup(request: CatchupRequest, read: CatchupChannel[], refused: Map<string, ErrorBody>): string {
  const byName = new Map(read.map((c) => [c.channel, c]));
  const parts = request.channels.map(({ channel, epoch }) => {
    const name = JSON.stringify(channel);
    const error = refused.get(channel);
    if (error) return `${name}:{"error":${JSON.stringify(error)}}`;
    const c = byName.get(channel)!;
    if (epoch !== '' && c.epoch !== '' && epoch !== c.epoch) return `${name}:{"error":${JSON.stringify(Errors.unrecoverablePosition)}}`;
    const pubs = c.publications.map((p) => publicationJson(p, c.epoch)).join(',');
    return `${name}:{"publications":[${pubs}],"offset":${c.top},"epoch":${JSON.stringify(c.epoch)},"more":${c.more},"unread":${c.top - c.read}}`;
  });
  return `{"channels":{${parts.join(',')}}}`;
}
