/**
 * Who may do what on a channel, decided from its namespace and name. One function per
 * action; each throws the ProtocolError the client must see.
 *
 *  - unknown namespace → 102;
 *  - anonymous connection (no `sub`) where the namespace does not allow it → 103;
 *  - user-limited channel `name#42,43` and a user not listed → 103;
 *  - private channel (`$name`, or a private namespace) without a valid subscription token → 103;
 *  - publish where the namespace allows none, or only subscribers and the client is not one → 103;
 *  - history / presence switched off in the namespace → 108.
 *
 * Reading a channel in any way (publish, history, presence, presence_stats) needs the same
 * right as subscribing to it (`checkAccess`, the one rule): the anonymous and user-limited
 * checks every time, and for a private channel an open subscription, which only a verified
 * subscription token or the backend itself could have opened (issue 9).
 *
 * The connection is seen as a `Session` (./session.ts): who it is and what it holds.
 */
import { verifySubscriptionToken } from '../auth/jwt.js';
import { channelRules, type NamespaceOptions } from '../config/namespaces.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import type { Session } from './session.js';

export function namespaceOf(session: Session, channel: string): NamespaceOptions {
  const ns = session.deps.namespaces.of(channel);
  if (!ns) throw new ProtocolError(Errors.unknownChannel, channel);
  return ns;
}

/** Anonymous and user-limited rules: what every action on the channel needs. */
function checkIdentity(session: Session, channel: string, ns: NamespaceOptions): void {
  if (session.user === '' && !ns.allow_anonymous) throw new ProtocolError(Errors.permissionDenied, 'anonymous');
  const users = channelRules.allowedUsers(channel);
  if (users && !users.includes(session.user)) throw new ProtocolError(Errors.permissionDenied, 'user-limited channel');
}

/**
 * What entitles a connection to a private channel, named by the caller so that nothing but
 * a real proof can pass for one (issue 9: a "has a token" boolean computed as
 * `token !== undefined` let `token: ""` open `$secret-room`, since `""` was then never
 * verified):
 *  - 'token': a subscription token that verified for this channel, user and client;
 *  - 'server': the backend's own word, a server-side subscription (the connection token's
 *    `channels` claim, signed by the backend: trusted like a subscription token, as in
 *    Centrifugo);
 *  - 'subscribed': an open subscription, which only one of the two above can open;
 *  - 'none': nothing.
 */
export type Entitlement = 'token' | 'server' | 'subscribed' | 'none';

/** The one rule: who may subscribe to, or otherwise read, a channel of namespace `ns`. */
function checkAccess(session: Session, channel: string, ns: NamespaceOptions, entitlement: Entitlement): void {
  checkIdentity(session, channel, ns);
  if (channelRules.isPrivate(channel, ns) && entitlement === 'none') {
    throw new ProtocolError(Errors.permissionDenied, 'private channel: subscription token required');
  }
}

export function checkSubscribe(
  session: Session,
  channel: string,
  entitlement: Exclude<Entitlement, 'subscribed'>,
): NamespaceOptions {
  const ns = namespaceOf(session, channel);
  checkAccess(session, channel, ns, entitlement);
  return ns;
}

/**
 * Publish, history and presence: the right to subscribe, shown by a subscription on a private
 * channel. Checked before the namespace's switches, so a caller without the right learns
 * nothing about the channel (not even that its history is off).
 */
function checkRead(session: Session, channel: string, ns: NamespaceOptions): void {
  checkAccess(session, channel, ns, session.subscriptions.has(channel) ? 'subscribed' : 'none');
}

/** Read cursors and unread counts (./sync.ts): the read rule alone, whatever the namespace's switches. */
export function checkReadable(session: Session, channel: string): NamespaceOptions {
  const ns = namespaceOf(session, channel);
  checkRead(session, channel, ns);
  return ns;
}

export function checkPublish(session: Session, channel: string): NamespaceOptions {
  const ns = namespaceOf(session, channel);
  checkRead(session, channel, ns);
  if (ns.publish === 'none') throw new ProtocolError(Errors.permissionDenied, 'publishing is off');
  if (ns.publish === 'subscribers' && !session.subscriptions.has(channel)) {
    throw new ProtocolError(Errors.permissionDenied, 'only subscribers may publish');
  }
  return ns;
}

export function checkHistory(session: Session, channel: string): NamespaceOptions {
  const ns = namespaceOf(session, channel);
  checkRead(session, channel, ns);
  if (!ns.allow_history) throw new ProtocolError(Errors.notAvailable, 'history is off');
  return ns;
}

/** Presence shows who is there: subscribers only (on top of the read rule), as the namespace option says. */
export function checkPresence(session: Session, channel: string): NamespaceOptions {
  const ns = namespaceOf(session, channel);
  checkRead(session, channel, ns);
  if (!ns.presence) throw new ProtocolError(Errors.notAvailable, 'presence is off');
  if (!session.subscriptions.has(channel)) throw new ProtocolError(Errors.permissionDenied, 'not subscribed');
  return ns;
}

/** The `aud` / `iss` every token must carry, when configured. */
export function tokenChecks(session: Session): { audience?: string; issuer?: string } {
  const { tokenAudience, tokenIssuer } = session.deps.settings;
  return { ...(tokenAudience ? { audience: tokenAudience } : {}), ...(tokenIssuer ? { issuer: tokenIssuer } : {}) };
}

/**
 * A subscription token, verified for this channel, user and client (src/auth/jwt.ts says what
 * each failure answers): what it grants, its expiry and its `info` as chan_info JSON text.
 */
export async function checkSubscriptionToken(session: Session, channel: string, token: string) {
  const grant = await verifySubscriptionToken(token, session.deps.settings.tokenSecret, {
    channel,
    user: session.user,
    client: session.clientId,
    ...tokenChecks(session),
  });
  return { expiresAt: grant.expiresAt, info: grant.info === undefined ? undefined : JSON.stringify(grant.info) };
}
