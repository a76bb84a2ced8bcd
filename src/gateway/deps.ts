/**
 * What a gateway is built from: its settings, validated once at boot (src/app/gateway.ts), and
 * the services every connection shares. Passed down explicitly, never read from anywhere else
 * (STYLE habit 9).
 */
import type { ChannelEvents } from '../bus/events.js';
import type { Hub } from '../channels/hub.js';
import type { Namespaces } from '../config/namespaces.js';
import type { HistoryReader } from '../history/reader.js';
import type { IngestClient } from '../ingest/client.js';
import type { IngestFlow } from '../ingest/flow.js';
import type { Logger } from '../observability/logger.js';
import type { CursorStore } from '../db/repos/cursors.js';
import type { ProxyClient } from '../proxy/client.js';
import type { PresenceStore } from '../presence/store.js';
import type { WebhookSink } from '../webhooks/emitter.js';
import type { FlushScheduler } from './outbox.js';

export interface GatewaySettings {
  version: string;
  tokenSecret: string;
  /** Checked in every token when set (invalid otherwise). */
  tokenAudience?: string | undefined;
  tokenIssuer?: string | undefined;
  pingIntervalS: number;
  pongTimeoutS: number;
  staleS: number;
  queueMaxBytes: number;
  /**
   * Bytes of publications in one reply (history, a subscribe's recovery) or one recovery
   * chunk: TIDINGS_REPLY_MAX_BYTES, held to `queueMaxBytes` (see src/app/gateway.ts).
   */
  replyMaxBytes: number;
  channelsPerConnection: number;
  historyMaxPerCall: number;
  rate: number;
  burst: number;
}

/** Sends an async message (JSON text) to every connection of `user` but `exceptClient`, wherever it is. */
export interface UserNotifier {
  toUser(user: string, exceptClient: string | undefined, dataJson: string): void;
}

export interface GatewayDeps {
  settings: GatewaySettings;
  namespaces: Namespaces;
  presence: PresenceStore;
  events: ChannelEvents;
  hub: Hub;
  history: HistoryReader;
  ingest: IngestClient;
  /** When a client publish may be queued (issue 12: it waits rather than be refused). */
  flow: Pick<IngestFlow, 'room'>;
  scheduler: FlushScheduler;
  /** The app backend's proxies (issue 14); `has(kind)` is false for those not configured. */
  proxy: ProxyClient;
  /** Read cursors and unread counts in PostgreSQL (issue 15, ./sync.ts). */
  cursors: CursorStore;
  /** Async messages to a user's connections on every gateway. */
  notify: UserNotifier;
  /** Lifecycle webhooks (issue 14): connections report connect, disconnect, subscribe, unsubscribe; NO_WEBHOOKS when off. */
  webhooks: WebhookSink;
  log: Logger;
}
