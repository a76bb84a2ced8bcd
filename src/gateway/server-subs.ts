/**
 * Server-side subscriptions: channels the server subscribes a connection to, from the
 * connection token's `channels` claim (at connect) or the API's `subscribe` method (later).
 * The client learns of them from the connect reply's `subs` (or a `subscribe` push) and
 * recovers them through the `subs` map of its next connect command.
 */
import { isValidChannelName } from '../channels/names.js';
import { encodeSubscribePush, encodeSubscribeResults } from '../protocol/codec.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';
import { checkSubscribe } from './access.js';
import type { ServerSubscribeOptions, Session } from './session.js';
import type { NamespaceOptions } from '../config/namespaces.js';
import { goLive, openSubscription, recoveryRequestOf, type Opened } from './subscribe.js';
import { isObject } from './validate.js';

export interface ServerSubsOutcome {
  /** The connect reply's `subs` object as JSON text, or undefined when there are none. */
  results: string | undefined;
  goLive(): void;
}

/**
 * The connection token's `channels` claim, checked as a whole before anything opens: each
 * entry a channel name by the rule client names follow, of a configured namespace, and no
 * more distinct channels than a connection may hold (`channelsPerConnection`). Otherwise
 * the token is invalid (close 3500).
 *
 * Why refuse the token rather than open what fits and log the rest: the client would then
 * believe it holds every channel its backend granted and silently miss the publications of
 * the dropped ones, a failure its users find in production. Refused, the backend's bug
 * fails the first connect, loudly, with a code the SDK does not retry in a loop. These are
 * properties of the token alone, so no later token from the same backend code would fare
 * better; contrast the permission checks of `subscribeServerSide`, which depend on policy.
 */
export function claimedChannels(session: Session, claim: string[] | undefined): string[] {
  if (claim === undefined) return [];
  const channels = [...new Set(claim)];
  const limit = session.deps.settings.channelsPerConnection;
  if (channels.length > limit) throw invalidClaim(`channels claim lists ${channels.length} channels, over ${limit}`);
  for (const channel of channels) {
    if (!isValidChannelName(channel)) throw invalidClaim('channels claim holds an invalid channel name');
    if (!session.deps.namespaces.of(channel)) throw invalidClaim('channels claim names an unknown namespace');
  }
  return channels;
}

function invalidClaim(detail: string): DisconnectError {
  return new DisconnectError(Disconnect.InvalidToken, detail);
}

/**
 * Opens every claimed channel (already checked by `claimedChannels`; recovering where the
 * client asked to) before the connect reply is written.
 *
 * The claim is signed by the backend, so it may include private channels, as in Centrifugo
 * where server-side subscriptions are trusted: they open with the 'server' entitlement, no
 * subscription token. The anonymous and user-limited rules still apply; a channel that
 * fails them is skipped and logged rather than refusing the token, because they are policy
 * (a namespace's `allow_anonymous` may change while issued tokens live on): the token is the
 * backend's promise, so a bad claim is its bug, not the client's.
 */
export async function subscribeServerSide(
  session: Session,
  channels: string[],
  requested: unknown,
): Promise<ServerSubsOutcome> {
  const positions = isObject(requested) ? requested : {};
  // Own keys only: a channel named `constructor` must not read Object.prototype's.
  const positionOf = (channel: string) => (Object.hasOwn(positions, channel) ? positions[channel] : undefined);
  const opened: Opened[] = [];
  for (const channel of channels) {
    if (session.subscriptions.has(channel)) continue;
    const sub = await openClaimed(session, channel, positionOf(channel));
    if (sub) opened.push(sub);
  }
  const results = opened.length ? encodeSubscribeResults(opened.map((o) => [o.sub.channel, o.result])) : undefined;
  return { results, goLive: () => opened.forEach((o) => goLive(session, o)) };
}

/** One claimed channel, opened; undefined when policy refuses it (logged) or the connection closed. */
async function openClaimed(session: Session, channel: string, position: unknown): Promise<Opened | undefined> {
  try {
    const ns = checkSubscribe(session, channel, 'server');
    return await openSubscription(session, channel, ns, recoveryRequestOf(position), { serverSide: true });
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    session.log.warn({ channel, code: err.error.code }, 'token channel refused');
    return undefined;
  }
}

/**
 * API `subscribe`: the client gets a `subscribe` push, then the channel's publications. The
 * API is the backend itself, so no permission check applies here (as in Centrifugo); the
 * read rule of access.ts still applies to what the connection does with the channel.
 */
export async function serverSubscribe(session: Session, channel: string, options: ServerSubscribeOptions = {}): Promise<boolean> {
  if (session.state !== 'connected') return false;
  if (session.subscriptions.has(channel)) return true;
  if (session.subscriptions.size >= session.deps.settings.channelsPerConnection) {
    throw new DisconnectError(Disconnect.ChannelLimit, 'server-side subscribe over the channel limit');
  }
  const ns = session.deps.namespaces.of(channel);
  if (!ns) throw new ProtocolError(Errors.unknownChannel, channel);
  const since = options.recoverSince;
  const position = since ? { recover: true, offset: since.offset, epoch: since.epoch } : { recover: false, offset: 0, epoch: '' };
  const opened = await openSubscription(session, channel, overridden(ns, options), position, {
    serverSide: true,
    chanInfo: options.infoJson,
    dataJson: options.dataJson,
    expiresAt: options.expiresAt,
  });
  if (!opened) return false;
  session.send(encodeSubscribePush(channel, opened.result));
  goLive(session, opened);
  return true;
}

/**
 * The namespace as API subscribe's `override` changes it for this one subscription
 * (Centrifugo's presence, join_leave and force_recovery overrides); the namespace itself
 * is left alone.
 */
function overridden(ns: NamespaceOptions, options: ServerSubscribeOptions): NamespaceOptions {
  if (options.presence === undefined && options.joinLeave === undefined && !options.forceRecovery) return ns;
  return {
    ...ns,
    presence: options.presence ?? ns.presence,
    join_leave: options.joinLeave ?? ns.join_leave,
    recovery: options.forceRecovery ? true : ns.recovery,
  };
}
