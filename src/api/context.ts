/**
 * What every API method is given, and what it returns. A method validates its params
 * (throwing ApiError), does its work through the gateway's shared services, and returns
 * its result: an object to encode, or JSON text already encoded (stored publications and
 * presence entries are JSON text, spliced without a parse and re-encode).
 */
import type { ControlBus } from '../cluster/control.js';
import type { NodeRegistry } from '../cluster/registry.js';
import type { Namespaces } from '../config/namespaces.js';
import type { HistoryReader } from '../history/reader.js';
import type { IngestClient } from '../ingest/client.js';
import type { Logger } from '../observability/logger.js';
import type { PresenceStore } from '../presence/store.js';
import type { Params } from './params.js';
import type { ProxyClient } from '../proxy/client.js';
import type { CursorStore } from '../db/repos/cursors.js';
import type { DeadLetters } from '../webhooks/dead-letters.js';
import type { ChannelRow, ChannelSearch } from '../db/repos/channel-search.js';
import type { WorkerDirectory } from '../cluster/workers.js';

export interface ApiContext {
  namespaces: Namespaces;
  ingest: IngestClient;
  history: HistoryReader;
  presence: PresenceStore;
  registry: NodeRegistry;
  control: ControlBus;
  /** The app backend's proxies: API `rpc` goes to the RPC proxy. */
  proxy: ProxyClient;
  /** Read cursors (issue 15). */
  cursors: CursorStore;
  /** Webhook events given up on (API `webhook_dead_letters`). */
  deadLetters: DeadLetters;
  /** Channels by name prefix, from PostgreSQL (API `channel_search`). */
  channelSearch(search: ChannelSearch): Promise<ChannelRow[]>;
  /** Live persist workers (API `workers`). */
  workers: Pick<WorkerDirectory, 'list'>;
  /** Cap on publications per history call (`limit: -1` means this many). */
  historyMaxPerCall: number;
  /** Cap on the bytes of publications in one history result (TIDINGS_REPLY_MAX_BYTES). */
  replyMaxBytes: number;
  log: Logger;
}

/** A result object, or its JSON text. */
export type ApiResult = object | string;

export type ApiMethod = (ctx: ApiContext, params: Params) => Promise<ApiResult>;

export function resultJson(result: ApiResult): string {
  return typeof result === 'string' ? result : JSON.stringify(result);
}
