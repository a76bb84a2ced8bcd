/**
 * Composition root of a gateway: builds its services, starts them in dependency order,
 * and tears them down in the reverse order through one idempotent close().
 */
import { randomUUID } from 'node:crypto';
import type { AdminSettings, GatewayConfig } from '../config/index.js';
import { startApi } from '../api/index.js';
import { ChannelEvents } from '../bus/events.js';
import { Hub } from '../channels/hub.js';
import { PubSub } from '../bus/pubsub.js';
import { openDatabase } from '../db/client.js';
import { FlushScheduler } from '../gateway/outbox.js';
import { WebSocketGateway } from '../gateway/server.js';
import { HistoryReader } from '../history/reader.js';
import { HttpServer } from '../http/server.js';
import { registerDemo } from '../http/demo/index.js';
import { registerAdmin } from '../admin/index.js';
import type { ApiDispatcher } from '../api/dispatch.js';
import { IngestClient } from '../ingest/client.js';
import { outcomesIn } from '../ingest/outcomes.js';
import { IngestFlow } from '../ingest/flow.js';
import type { Logger } from '../observability/logger.js';
import { PresenceStore } from '../presence/store.js';
import { metrics, onScrape, reusedFor, setNodeName } from '../observability/metrics.js';
import { metricsRoute } from '../http/metrics.js';
import { checkRedisMode, closeRedis, connectRedis, keysOf } from './redis.js';
import { VERSION } from './version.js';
import { shutdownSteps, STEP_LIMIT_MS } from './shutdown.js';
import { ProxyClient } from '../proxy/client.js';
import type { ControlBus } from '../cluster/control.js';
import { cursorStore } from '../db/repos/cursors.js';
import type { UserNotifier } from '../gateway/deps.js';
import { NO_WEBHOOKS, WebhookEmitter } from '../webhooks/emitter.js';

/** How long a stopping gateway tries to queue its last webhook events (Redis away: they are lost). */
const WEBHOOK_FLUSH_MS = 5000;

export interface RunningGateway {
  port: number;
  nodeName: string;
  ws: WebSocketGateway;
  /** Its ingest client: what it has accepted and not yet had acknowledged (tests look at its backlog). */
  ingest: IngestClient;
  close(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  await checkRedisMode(config);
  setNodeName(config.nodeName);
  const { keys, database, readDatabase, redis, queueRedis, pubsubRedis, pubsub } = openStores(config, log);
  const history = new HistoryReader(redis, database.db, keys, config.history.cacheTtlS, readDatabase?.db);
  // A client reply (history, a recovery's first chunk) or recovery chunk carries at most
  // TIDINGS_REPLY_MAX_BYTES, and never more than the connection's queue bound: a client that
  // cannot hold one reply within its bound could never be paced (issue 9). The API keeps the
  // setting as is.
  const clientReplyBytes = Math.min(config.history.replyMaxBytes, config.client.queueMaxBytes);
  const hub = new Hub(pubsub, keys, history, clientReplyBytes, log.child({ component: 'hub' }));
  // PostgreSQL (the history reads' pool) decides the publishes whose acks do not come in time.
  const outcomes = outcomesIn(database.db);
  const ingest = new IngestClient(queueRedis, pubsub, keys, config.ingest, log.child({ component: 'ingest' }), outcomes);
  await ingest.start();
  const presence = new PresenceStore(redis, keys, config.client.presenceTtlS * 1000);

  const proxy = new ProxyClient(config.proxy, log.child({ component: 'proxy' }));
  const notify = lateNotifier(log);
  const cursors = cursorStore(database.db);
  // The registry's uid, chosen here: a worker decides by it whether the webhook emitter's gateway lives.
  const nodeUid = randomUUID();
  const webhooks = config.webhooks
    ? new WebhookEmitter(queueRedis, keys, config.webhooks, nodeUid, log.child({ component: 'webhooks' }))
    : undefined;
  const ws = new WebSocketGateway(
    {
      settings: gatewaySettings(config, clientReplyBytes),
      namespaces: config.namespaces,
      presence,
      events: new ChannelEvents(redis, keys),
      hub,
      history,
      ingest,
      flow: new IngestFlow(ingest, config.ingest),
      scheduler: new FlushScheduler(),
      proxy,
      cursors,
      notify,
      webhooks: webhooks ?? NO_WEBHOOKS,
      log: log.child({ component: 'connection' }),
    },
    config.client.maxMessageBytes,
    config.security,
  );
  const http = httpServer(config, ws, () => Promise.all([redis.ping(), database.pool.query('select 1')]), log);
  const [presenceRefresh, positioning] = startTimers(config, ws, hub);
  const api = await startApi(http, { config, version: VERSION, redis, pubsub, keys, hub, ws, history, ingest, presence, proxy, cursors, db: database.db, nodeUid, log });
  notify.attach(api.control);
  if (config.admin) adminConsole(config, config.admin, http, api.api, hub, history, log);
  http.route('GET /metrics', metricsRoute);
  const depths = reusedFor(1000, () => ingest.waitingJobs());
  const stopScrape = onScrape(() => scrapeGauges(ws, hub, depths));
  const port = await http.listen(config.port, config.host);
  log.info({ port, host: config.host, node: config.nodeName }, 'gateway listening');

  // Shutdown order: refuse new sockets; let publishes already accepted get their commit
  // acks (bounded by the grace period); then ask clients to reconnect elsewhere (3001).
  const close = shutdownSteps(log, [
    ['stop timers', () => [presenceRefresh, positioning].forEach((t) => clearInterval(t))],
    ['stop metrics', stopScrape],
    ['stop accepting connections', () => ws.stopAccepting()],
    ['wait for pending publish acks', () => waitForAcks(ingest, config.shutdownGraceMs)],
    ['ask clients to reconnect elsewhere', () => ws.closeAll()],
    // Before the registry forgets this node: its disconnects are queued by now, so no worker reaps them twice.
    ['queue the last webhook events', () => webhooks?.close(WEBHOOK_FLUSH_MS)],
    ['leave the node registry and the control topic', () => api.close()],
    ['close http server', () => http.close()],
    ['stop ingest', () => ingest.close()],
    ['close redis', () => Promise.all([closeRedis(redis), closeRedis(queueRedis), closeRedis(pubsubRedis)])],
    ['close database', () => Promise.all([database.close(), readDatabase?.close()])],
  ], Math.max(STEP_LIMIT_MS, config.shutdownGraceMs + 5000));
  return { port, nodeName: config.nodeName, ws, ingest, close };
}

/**
 * Async messages to a user's connections go over the control topic, which the API starts
 * once the WebSocket gateway exists; until then there is no connection to have asked for one.
 */
function lateNotifier(log: Logger): UserNotifier & { attach(control: ControlBus): void } {
  let bus: ControlBus | undefined;
  return {
    attach: (control) => (bus = control),
    toUser: (user, except, dataJson) => {
      bus?.send({ op: 'message', user, except, dataJson }).catch((err: unknown) => log.warn({ err }, 'message to a user failed'));
    },
  };
}

/** The stores a gateway talks to: PostgreSQL (and a read replica, if any), and Redis for commands, queues and pub/sub. */
function openStores(config: GatewayConfig, log: Logger) {
  const keys = keysOf(config);
  const database = openDatabase(config.databaseUrl, { applicationName: `tidings-gateway-${config.nodeName}` });
  const readDatabase = config.databaseReadUrl
    ? openDatabase(config.databaseReadUrl, { applicationName: `tidings-gateway-${config.nodeName}-reads` })
    : undefined;
  const redis = connectRedis(config, 'commands', log, 'gateway-commands');
  const queueRedis = connectRedis(config, 'queue', log, 'gateway-queue');
  const pubsubRedis = connectRedis(config, 'pubsub', log, 'gateway-pubsub');
  const pubsub = new PubSub(pubsubRedis, log.child({ component: 'pubsub' }), keys.cluster);
  return { keys, database, readDatabase, redis, queueRedis, pubsubRedis, pubsub };
}

/** A connection's settings: the client section as it is, plus what other sections decide. */
function gatewaySettings(config: GatewayConfig, replyMaxBytes: number) {
  return {
    ...config.client,
    version: VERSION,
    tokenSecret: config.tokenSecret,
    tokenAudience: config.security.tokenAudience,
    tokenIssuer: config.security.tokenIssuer,
    replyMaxBytes,
    historyMaxPerCall: config.history.maxPerCall,
  };
}

/** Health, readiness, WebSocket upgrades and (when asked for) the demo page. */
function httpServer(config: GatewayConfig, ws: WebSocketGateway, probe: () => Promise<unknown>, log: Logger): HttpServer {
  const http = new HttpServer({
    ready: async () => {
      await probe();
      return true;
    },
    upgrade: (req, socket, head) => ws.handleUpgrade(req, socket, head),
    log: log.child({ component: 'http' }),
  });
  // The demo page is for trying Tidings out, not part of a production gateway: off unless asked.
  if (config.demo) {
    registerDemo(http, {
      tokenSecret: config.tokenSecret,
      demoTokens: config.demoTokens,
      host: config.host,
      log: log.child({ component: 'demo' }),
    });
  }
  return http;
}

/** The admin console (TIDINGS_ADMIN_PASSWORD): its actions run through the API's dispatcher, its live view on this hub. */
function adminConsole(config: GatewayConfig, settings: AdminSettings, http: HttpServer, api: ApiDispatcher, hub: Hub, history: HistoryReader, log: Logger): void {
  const adminLog = log.child({ component: 'admin' });
  registerAdmin(http, {
    settings,
    tokenSecret: config.tokenSecret,
    api,
    live: { hub, namespaces: config.namespaces, position: (channel) => history.position(channel), log: adminLog },
    log: adminLog,
  });
}

/** The gateway's periodic chores, unref'd; the second is absent when TIDINGS_POSITION_CHECK_S=0. */
function startTimers(config: GatewayConfig, ws: WebSocketGateway, hub: Hub): [NodeJS.Timeout, NodeJS.Timeout | undefined] {
  // Presence entries of live connections are refreshed well within their TTL, so only a dead
  // gateway's entries expire.
  const presenceRefresh = setInterval(() => ws.refreshPresence(), Math.max(1000, (config.client.presenceTtlS * 1000) / 3));
  presenceRefresh.unref();
  // Positioning: a lost last publication is invisible until the next one arrives, so each
  // channel's delivered position is compared with its committed top now and then.
  const positioning =
    config.positionCheckS > 0 ? setInterval(() => void hub.resyncAll(), config.positionCheckS * 1000) : undefined;
  positioning?.unref();
  return [presenceRefresh, positioning];
}

async function scrapeGauges(ws: WebSocketGateway, hub: Hub, queueDepths: () => Promise<number[]>): Promise<void> {
  metrics.connections.set(ws.connections.size);
  let subscriptions = 0;
  let paused = 0;
  for (const conn of ws.connections) {
    subscriptions += conn.subscriptions.size;
    if (conn.paused) paused++;
  }
  metrics.subscriptions.set(subscriptions);
  metrics.pausedConnections.set(paused);
  metrics.channels.set(hub.channelCount);
  const depths = await queueDepths();
  depths.forEach((n, partition) => metrics.queueDepth.set({ partition: String(partition) }, n));
}

async function waitForAcks(ingest: IngestClient, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (ingest.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
