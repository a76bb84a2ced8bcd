/**
 * The command table: which function answers which client command. server.ts hands it to
 * every Connection, which runs the commands of a frame in order and knows nothing of what
 * they do; the handlers know the connection only as a `Session` (./session.ts). So the
 * imports point one way: server → dispatch → handlers → session, and server → connection →
 * session.
 */
import type { Method } from '../protocol/types.js';
import {
  connect,
  history,
  notAvailable,
  presence,
  presenceStats,
  publish,
  refresh,
  rpc,
  send,
  subRefresh,
  unsubscribe,
} from './handlers.js';
import { serverSubscribe } from './server-subs.js';
import type { CommandHandler, Commands } from './session.js';
import { subscribe } from './subscribe.js';

const handlers: Readonly<Record<Method, CommandHandler>> = {
  connect,
  subscribe,
  unsubscribe,
  publish,
  history,
  refresh,
  sub_refresh: subRefresh,
  presence,
  presence_stats: presenceStats,
  rpc,
  // 108: v2 clients ping with an empty frame (PROTOCOL.md A.4), not with this command.
  ping: notAvailable,
  send,
};

/** What every connection of this gateway runs. */
export const commands: Commands = { handlers, serverSubscribe };
