/**
 * The client RPC methods Tidings answers itself (CONTRACT: methods starting with `tidings.`;
 * issue 15), reached with the official SDKs' `client.rpc(method, data)`:
 *
 * - `tidings.read` `{channel, offset}`: moves the caller's read cursor forward (never back,
 *   never past the top) and answers `{unread, read, offset}`; the user's other connections
 *   get the new state at once as an async message (`{"type":"tidings.read",…}`, the SDK's
 *   client-level `message` event), so badges agree across devices.
 * - `tidings.unread` `{channels?}`: `{channels: {<name>: {offset, read, unread}}}` for the
 *   given channels (a channel the caller may not read answers an error object in its place),
 *   or for every channel where the user has a cursor.
 *
 * - `tidings.catchup` `{channels: {<name>: {offset, epoch}}, limit?}`: what each channel
 *   published after the caller's position, with its unread count (src/history/catchup.ts).
 *
 * - `tidings.edit` `{channel, offset, data}` and `tidings.delete` `{channel, offset}`: an edit
 *   or delete event (src/history/changes.ts), where the namespace's `client_edits` allows it
 *   (`own`: publications this user published; `any`: any, by whoever may publish there).
 *   Answered `{offset, epoch}` once committed. An edit's new data passes the publish proxy
 *   when the namespace has one, as a publish's does: an edit must not be a way around it.
 *
 * Cursors and authorship belong to a user: anonymous connections get 103.
 */
import { OWN_RPC_PREFIX } from '../config/proxy.js';
import type { ChannelReadState } from '../db/repos/cursors.js';
import { parseCatchup, encodeCatchup } from '../history/catchup.js';
import { Errors, ProtocolError, replyErrorOf, type ErrorBody } from '../protocol/codes.js';
import { isValidChannelName } from '../channels/names.js';
import { changeTags, changeTarget, type ChangeOp } from '../history/changes.js';
import { checkPublish, checkReadable } from './access.js';
import { publishByProxy } from './proxied.js';
import type { Session } from './session.js';
import { isObject, optionalOffset } from './validate.js';

/** Channels one `tidings.unread` may name, and answers for the cursor list without names. */
export const MAX_UNREAD_CHANNELS = 1000;

export function isOwnRpc(method: string): boolean {
  return method.startsWith(OWN_RPC_PREFIX);
}

export async function ownRpc(session: Session, method: string, data: unknown): Promise<string> {
  if (session.user === '') throw new ProtocolError(Errors.permissionDenied, 'tidings methods need a user');
  if (method === 'tidings.read') return `{"data":${JSON.stringify(await markRead(session, data))}}`;
  if (method === 'tidings.unread') return `{"data":${JSON.stringify(await unread(session, data))}}`;
  if (method === 'tidings.catchup') return `{"data":${await catchup(session, data)}}`;
  if (method === 'tidings.edit' || method === 'tidings.delete') {
    return `{"data":${JSON.stringify(await change(session, data, method === 'tidings.edit' ? 'edit' : 'delete'))}}`;
  }
  throw new ProtocolError(Errors.methodNotFound, method);
}

async function change(session: Session, data: unknown, op: ChangeOp): Promise<{ offset: number; epoch: string }> {
  const channel = channelIn(data);
  const request = data as Record<string, unknown>;
  const offset = optionalOffset(request.offset, 'offset');
  if (offset === undefined || offset < 1) throw new ProtocolError(Errors.badRequest, 'offset must be 1 or more');
  if (op === 'edit' && request.data === undefined) throw new ProtocolError(Errors.badRequest, 'data required');
  const ns = checkPublish(session, channel);
  if (ns.client_edits === 'none') throw new ProtocolError(Errors.permissionDenied, 'edits are off in this namespace');
  const target = await changeTarget(session.deps.history, channel, offset);
  if (typeof target === 'string') throw new ProtocolError(Errors.badRequest, target);
  if (ns.client_edits === 'own' && target.user !== session.user) {
    throw new ProtocolError(Errors.permissionDenied, 'only its author may change a publication');
  }
  let payload: unknown = op === 'edit' ? request.data : null;
  if (op === 'edit' && ns.proxy_publish) {
    payload = await publishByProxy(session, channel, payload);
    checkPublish(session, channel);
  }
  const sub = session.subscriptions.get(channel);
  const committed = await session.deps.ingest.publish({
    channel,
    data: JSON.stringify(payload),
    tags: changeTags(op, offset),
    user: session.user,
    client: session.clientId,
    connInfo: session.connInfo,
    chanInfo: sub?.chanInfo,
  });
  return { offset: committed.offset, epoch: committed.epoch };
}

/** Inside RPC data a bad channel is this call's error (107), not the connection's (3501). */
function channelIn(data: unknown): string {
  if (!isObject(data) || typeof data.channel !== 'string' || !isValidChannelName(data.channel)) {
    throw new ProtocolError(Errors.badRequest, 'a valid channel is required');
  }
  return data.channel;
}

async function markRead(session: Session, data: unknown): Promise<Omit<ChannelReadState, 'channel'>> {
  const channel = channelIn(data);
  const offset = optionalOffset((data as Record<string, unknown>).offset, 'offset');
  if (offset === undefined) throw new ProtocolError(Errors.badRequest, 'offset required');
  checkReadable(session, channel);
  const state = await session.deps.cursors.set(session.user, channel, offset);
  const { channel: _, ...rest } = state;
  session.deps.notify.toUser(session.user, session.clientId, JSON.stringify({ type: 'tidings.read', channel, ...rest }));
  return rest;
}

/** `tidings.catchup` (src/history/catchup.ts): every channel read in one call, each under the read rule. */
async function catchup(session: Session, data: unknown): Promise<string> {
  const request = parseCatchup(data, isValidChannelName);
  if (typeof request === 'string') throw new ProtocolError(Errors.badRequest, request);
  const refused = new Map<string, ErrorBody>();
  for (const { channel } of request.channels) {
    try {
      checkReadable(session, channel);
    } catch (err) {
      refused.set(channel, replyErrorOf(err));
    }
  }
  const wanted = request.channels.filter((c) => !refused.has(c.channel));
  const read = await session.deps.history.catchup(session.user, wanted, request.limit, session.deps.settings.replyMaxBytes);
  return encodeCatchup(request, read, refused);
}

async function unread(session: Session, data: unknown): Promise<{ channels: Record<string, unknown> }> {
  const asked = isObject(data) ? data.channels : undefined;
  let names: string[];
  if (asked === undefined || asked === null) {
    names = await session.deps.cursors.channels(session.user, MAX_UNREAD_CHANNELS);
  } else {
    if (!Array.isArray(asked) || !asked.every((c) => typeof c === 'string' && isValidChannelName(c))) {
      throw new ProtocolError(Errors.badRequest, 'channels must be a list of channel names');
    }
    if (asked.length > MAX_UNREAD_CHANNELS) throw new ProtocolError(Errors.limitExceeded, `more than ${MAX_UNREAD_CHANNELS} channels`);
    names = [...new Set(asked as string[])];
  }
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const readable: string[] = [];
  for (const name of names) {
    try {
      checkReadable(session, name);
      readable.push(name);
    } catch (err) {
      out[name] = { error: replyErrorOf(err) };
    }
  }
  for (const { channel, ...state } of await session.deps.cursors.states(session.user, readable)) out[channel] = state;
  return { channels: out };
}
