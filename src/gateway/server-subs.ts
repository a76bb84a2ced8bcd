/**
 * Server-side subscriptions: channels the server subscribes a connection to, from the
 * connection token's `channels` claim (at connect) or the API's `subscribe` method (later).
 * The client learns of them from the connect reply's `subs` (or a `subscribe` push) and
 * recovers them through the `subs` map of its next connect command.
 */
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';
import { checkSubscribe } from './access.js';
import type { Connection } from './connection.js';
import { goLive, openSubscription, recoveryRequestOf, type Opened } from './subscribe.js';
import { isObject } from './validate.js';

export interface ServerSubsOutcome {
  /** The connect reply's `subs` object as JSON text, or undefined when there are none. */
  results: string | undefined;
  goLive(): void;
}

/**
 * Opens every claimed channel (recovering where the client asked to) before the connect
 * reply is written. A channel the user may not subscribe to is skipped and logged: the
 * token is the backend's promise, so a bad claim is its bug, not the client's.
 */
export async function subscribeServerSide(
  conn: Connection,
  channels: string[],
  requested: unknown,
): Promise<ServerSubsOutcome> {
  const positions = isObject(requested) ? requested : {};
  const opened: Opened[] = [];
  for (const channel of channels) {
    if (conn.subscriptions.has(channel)) continue;
    try {
      const ns = checkSubscribe(conn, channel, true);
      const sub = await openSubscription(conn, channel, ns, recoveryRequestOf(positions[channel]), { serverSide: true });
      if (sub) opened.push(sub);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      conn.log.warn({ channel, code: err.error.code }, 'token channel refused');
    }
  }
  const results = opened.length
    ? `{${opened.map((o) => `${JSON.stringify(o.sub.channel)}:${o.result}`).join(',')}}`
    : undefined;
  return { results, goLive: () => opened.forEach((o) => goLive(conn, o)) };
}

/** API `subscribe`: the client gets a `subscribe` push, then the channel's publications. */
export async function serverSubscribe(conn: Connection, channel: string): Promise<boolean> {
  if (conn.state !== 'connected') return false;
  if (conn.subscriptions.has(channel)) return true;
  if (conn.subscriptions.size >= conn.deps.settings.channelsPerConnection) {
    throw new DisconnectError(Disconnect.ChannelLimit, 'server-side subscribe over the channel limit');
  }
  const ns = conn.deps.namespaces.of(channel);
  if (!ns) throw new ProtocolError(Errors.unknownChannel, channel);
  const opened = await openSubscription(conn, channel, ns, { recover: false, offset: 0, epoch: '' }, { serverSide: true });
  if (!opened) return false;
  conn.send(`{"push":{"channel":${JSON.stringify(channel)},"subscribe":${opened.result}}}`);
  goLive(conn, opened);
  return true;
}
