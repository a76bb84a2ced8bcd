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

export function checkSubscribe(conn: Connection, channel: string, hasToken: boolean): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  checkIdentity(conn, channel, ns);
  if (channelRules.isPrivate(channel, ns) && !hasToken) {
    throw new ProtocolError(Errors.permissionDenied, 'subscription token required');
  }
  return ns;
}

/** Reading a private channel requires having subscribed to it (with its token). */
function checkRead(conn: Connection, channel: string, ns: NamespaceOptions): void {
  checkIdentity(conn, channel, ns);
  if (channelRules.isPrivate(channel, ns) && !conn.subscriptions.has(channel)) {
    throw new ProtocolError(Errors.permissionDenied, 'not subscribed to a private channel');
  }
}

export function checkPublish(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  if (ns.publish === 'none') throw new ProtocolError(Errors.permissionDenied, 'publishing is off');
  if (ns.publish === 'subscribers' && !conn.subscriptions.has(channel)) {
    throw new ProtocolError(Errors.permissionDenied, 'only subscribers may publish');
  }
  checkRead(conn, channel, ns);
  return ns;
}

export function checkHistory(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  if (!ns.allow_history) throw new ProtocolError(Errors.notAvailable, 'history is off');
  checkRead(conn, channel, ns);
  return ns;
}

export function checkPresence(conn: Connection, channel: string): NamespaceOptions {
  const ns = namespaceOf(conn, channel);
  if (!ns.presence) throw new ProtocolError(Errors.notAvailable, 'presence is off');
  if (!conn.subscriptions.has(channel)) throw new ProtocolError(Errors.permissionDenied, 'not subscribed');
  return ns;
}

/** The `aud` / `iss` every token must carry, when configured. */
export function tokenChecks(conn: Connection): { audience?: string; issuer?: string } {
  const { tokenAudience, tokenIssuer } = conn.deps.settings;
  return { ...(tokenAudience ? { audience: tokenAudience } : {}), ...(tokenIssuer ? { issuer: tokenIssuer } : {}) };
}
