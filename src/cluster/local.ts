/**
 * This gateway's side of the cluster: what it reports to the node registry, and how it
 * carries out a control command on its own connections.
 */
import type { Hub } from '../channels/hub.js';
import type { Connection } from '../gateway/connection.js';
import type { WebSocketGateway } from '../gateway/server.js';
import type { Logger } from '../observability/logger.js';
import { encodeMessagePush } from '../protocol/codec.js';
import { Disconnect, DisconnectError, makeDisconnect } from '../protocol/codes.js';
import type { ServerSubscribeOptions } from '../gateway/session.js';
import type { ControlCommand } from './control.js';
import type { LocalNode } from './registry.js';

/** Counts for `info`, and the channel map for `channels`, read from the live gateway. */
export function localNodeOf(ws: WebSocketGateway, hub: Hub): LocalNode {
  return {
    counts() {
      let clients = 0;
      let subs = 0;
      for (const conn of ws.connections) {
        if (conn.state !== 'connected') continue;
        clients++;
        subs += conn.subscriptions.size;
      }
      return { num_clients: clients, num_users: ws.userCount, num_channels: hub.channelCount, num_subs: subs };
    },
    channels() {
      const channels = new Map<string, number>();
      for (const name of hub.channelNames()) {
        const count = hub.subscriberCount(name);
        if (count > 0) channels.set(name, count);
      }
      return channels;
    },
  };
}

/** The connected connections of `user` (only the one with id `client`, when given). */
function matching(ws: WebSocketGateway, user: string, client: string | undefined): Connection[] {
  return [...ws.connections].filter(
    (c) => c.state === 'connected' && c.user === user && (client === undefined || c.clientId === client),
  );
}

/** Carries out a control command here. Never throws: a failure is one connection's, and logged. */
export async function applyLocally(ws: WebSocketGateway, cmd: ControlCommand, log: Logger): Promise<void> {
  const conns = matching(ws, cmd.user, cmd.client);
  switch (cmd.op) {
    case 'unsubscribe':
      for (const conn of conns) conn.serverUnsubscribe(cmd.channel);
      return;
    case 'disconnect': {
      const spared = new Set(cmd.whitelist ?? []);
      const disconnect = makeDisconnect(cmd.code, cmd.reason);
      for (const conn of conns) if (!spared.has(conn.clientId)) conn.close(disconnect, 'server API disconnect');
      return;
    }
    case 'subscribe':
      await Promise.all(conns.map((conn) => subscribeOne(conn, cmd.channel, cmd.options ?? {}, log)));
      return;
    case 'message': {
      const push = encodeMessagePush(cmd.dataJson);
      for (const conn of conns) if (conn.clientId !== cmd.except) conn.send(push);
      return;
    }
    case 'refresh':
      for (const conn of conns) {
        if (cmd.expired) conn.close(Disconnect.Expired, 'server API refresh: expired');
        else conn.serverRefresh(cmd.expiresAt, cmd.infoJson);
      }
      return;
  }
}

async function subscribeOne(conn: Connection, channel: string, options: ServerSubscribeOptions, log: Logger): Promise<void> {
  try {
    await conn.serverSubscribe(channel, options);
  } catch (err) {
    if (err instanceof DisconnectError) conn.close(err.disconnect, err.detail);
    else log.warn({ err, channel, client: conn.clientId }, 'server-side subscribe failed');
  }
}
