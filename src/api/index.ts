/**
 * The server HTTP API of a gateway, Centrifugo-compatible (PROTOCOL.md F; docs/api.md):
 * builds the cluster parts it needs (node registry, control topic), the method dispatcher,
 * and registers `POST /api/<method>` and the legacy `POST /api` on the gateway's HTTP server.
 *
 * Start before the HTTP server listens (the routes must exist) and after the hub and the
 * ingest client exist; close before Redis closes. Closing removes this node from the
 * registry at once and stops hearing control commands.
 */
import type { RedisClient } from '../bus/client.js';
import type { Hub } from '../channels/hub.js';
import type { Keys } from '../bus/keys.js';
import type { PubSub } from '../bus/pubsub.js';
import { ControlBus } from '../cluster/control.js';
import { applyLocally, localNodeOf } from '../cluster/local.js';
import { NodeRegistry, REGISTRY_TIMING } from '../cluster/registry.js';
import type { Config } from '../config/index.js';
import type { WebSocketGateway } from '../gateway/server.js';
import type { HistoryReader } from '../history/reader.js';
import type { HttpServer } from '../http/server.js';
import type { IngestClient } from '../ingest/client.js';
import type { Logger } from '../observability/logger.js';
import { metrics, onScrape } from '../observability/metrics.js';
import type { PresenceStore } from '../presence/store.js';
import { apiKeyCheck } from './auth.js';
import { API_METHOD_NAMES, ApiDispatcher } from './dispatch.js';
import { methodEndpoint, type Guard } from './handler.js';
import { legacyEndpoint } from './legacy.js';
import { RequestLimiter } from './limit.js';
import type { ProxyClient } from '../proxy/client.js';
import type { CursorStore } from '../db/repos/cursors.js';
import { DeadLetters } from '../webhooks/dead-letters.js';
import type { Db } from '../db/client.js';
import { searchChannels } from '../db/repos/channel-search.js';
import { WorkerDirectory } from '../cluster/workers.js';

export interface ApiServices {
  config: Pick<Config, 'apiKey' | 'nodeName' | 'namespaces' | 'history' | 'api' | 'ingest'>;
  version: string;
  /** The commands connection (registry reads and writes, control PUBLISH). */
  redis: RedisClient;
  pubsub: PubSub;
  keys: Keys;
  hub: Hub;
  ws: WebSocketGateway;
  history: HistoryReader;
  ingest: IngestClient;
  presence: PresenceStore;
  proxy: ProxyClient;
  cursors: CursorStore;
  /** PostgreSQL (the primary): API `channel_search` reads the channels table. */
  db: Db;
  /** This gateway's uid in the node registry (the webhook emitter's connection hash is keyed by it). */
  nodeUid: string;
  log: Logger;
}

export interface RunningApi {
  /** The control topic: commands for a user's connections on every gateway. */
  control: ControlBus;
  /** The method dispatcher: the admin console (src/admin/) runs API methods through it, past the key check. */
  api: ApiDispatcher;
  close(): Promise<void>;
}

export async function startApi(http: HttpServer, s: ApiServices): Promise<RunningApi> {
  const log = s.log.child({ component: 'api' });
  const registry = new NodeRegistry(
    s.redis,
    s.keys,
    { name: s.config.nodeName, version: s.version },
    localNodeOf(s.ws, s.hub),
    REGISTRY_TIMING,
    s.log.child({ component: 'registry' }),
    s.nodeUid,
  );
  s.hub.onChannelsChanged(() => registry.channelsChanged());
  const control = new ControlBus(s.pubsub, s.redis, s.keys.control, registry.uid, (cmd) => applyLocally(s.ws, cmd, log), log, s.keys.cluster);
  await control.start();
  await registry.start();

  const api = new ApiDispatcher({
    namespaces: s.config.namespaces,
    ingest: s.ingest,
    history: s.history,
    presence: s.presence,
    registry,
    control,
    proxy: s.proxy,
    cursors: s.cursors,
    deadLetters: new DeadLetters(s.redis, s.keys),
    channelSearch: (search) => searchChannels(s.db, search),
    workers: new WorkerDirectory(s.redis, s.keys, s.config.ingest.partitions, s.config.ingest.workerLockMs),
    historyMaxPerCall: s.config.history.maxPerCall,
    replyMaxBytes: s.config.history.replyMaxBytes,
    log,
  });
  // One limiter for every endpoint of this gateway: the bound is on the gateway's work.
  const guard: Guard = { authorize: apiKeyCheck(s.config.apiKey), limiter: new RequestLimiter(s.config.api) };
  if (!s.config.apiKey) log.info('TIDINGS_API_KEY unset: the server API answers 401 to every request');
  for (const method of API_METHOD_NAMES) http.route(`* /api/${method}`, methodEndpoint(api, method, guard));
  http.route('* /api', legacyEndpoint(api, guard));
  const stopScrape = onScrape(() => {
    metrics.apiRequests.set({ state: 'running' }, guard.limiter.running);
    metrics.apiRequests.set({ state: 'queued' }, guard.limiter.queued);
  });

  return {
    control,
    api,
    close: async () => {
      stopScrape();
      await control.close();
      await registry.close();
    },
  };
}
