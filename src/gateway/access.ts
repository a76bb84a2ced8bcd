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
 */
import { channelRules, type NamespaceOptions } from '../config/namespaces.js';
import { Errors, ProtocolError } from '../protocol/codes.js';
import type { Connection } from './connection.js';

export function namespaceOf(conn: Connection, channel: string): NamespaceOptions {
  const ns = conn.deps.namespaces.of(channel);
  if (!ns) throw new ProtocolError(Errors.unknownChannel, channel);
  return ns;
}

/** Anonymous and user-limited rules: what every action on the channel needs. */
function checkIdentity(conn: Connection, channel: string, ns: NamespaceOptions): void {
  if (conn.user === '' && !ns.allow_anonymous) throw new ProtocolError(Errors.permissionDenied, 'anonymous');
  const users = channelRules.allowedUsers(channel);
  if (users && !users.includes(conn.user)) throw new ProtocolError(Errors.permissionDenied, 'user-limited channel');
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
function checkAccess(conn: Connection, channel: string, ns: NamespaceOptions, entitlement: Entitlement): void {
  checkIdentity(conn, channel, ns);
  if (channelRules.isPrivate(channel, ns) && entitlement === 'none') {
    throw new ProtocolError(Errors.permissionDenied, 'private channel: subscription token required');
  }
}

export function checkSubscribe(
  conn: Connection,
  channel: string,
  entitlement: Exclude<Entitlement, 'subscribed'>,
): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  checkAccess(conn, channel, ns, entitlement);
  return ns;
}

/**
 * Publish, history and presence: the right to subscribe, shown by a subscription on a private
 * channel. Checked before the namespace's switches, so a caller without the right learns
 * nothing about the channel (not even that its history is off).
 */
function checkRead(conn: Connection, channel: string, ns: NamespaceOptions): void {
  checkAccess(conn, channel, ns, conn.subscriptions.has(channel) ? 'subscribed' : 'none');
}

export function checkPublish(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  checkRead(conn, channel, ns);
  if (ns.publish === 'none') throw new ProtocolError(Errors.permissionDenied, 'publishing is off');
  if (ns.publish === 'subscribers' && !conn.subscriptions.has(channel)) {
    throw new ProtocolError(Errors.permissionDenied, 'only subscribers may publish');
  }
  return ns;
}

export function checkHistory(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  checkRead(conn, channel, ns);
  if (!ns.allow_history) throw new ProtocolError(Errors.notAvailable, 'history is off');
  return ns;
}

/** Presence shows who is there: subscribers only (on top of the read rule), as the namespace option says. */
export function checkPresence(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  checkRead(conn, channel, ns);
  if (!ns.presence) throw new ProtocolError(Errors.notAvailable, 'presence is off');
  if (!conn.subscriptions.has(channel)) throw new ProtocolError(Errors.permissionDenied, 'not subscribed');
  return ns;
}

/** The `aud` / `iss` every token must carry, when configured. */
export function tokenChecks(conn: Connection): { audience?: string; issuer?: string } {
  const { tokenAudience, tokenIssuer } = conn.deps.settings;
  return { ...(tokenAudience ? { audience: tokenAudience } : {}), ...(tokenIssuer ? { issuer: tokenIssuer } : {}) };
}
