/**
 * Configuration: the only module that reads process.env. Everything is validated once at
 * boot into one frozen Config, then passed down explicitly. A bad value becomes a
 * ConfigError whose message is one line naming the variable and what is wrong with it.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { PROXY_KINDS, type ProxyKind, type ProxySettings } from './proxy.js';
import { loadNamespaces, type Namespaces } from './namespaces.js';
import { DEFAULT_WEBHOOK_EVENTS, parseWebhookEvents, type WebhookSettings } from './webhooks.js';

export type Role = 'gateway' | 'worker' | 'dev' | 'migrate' | 'token';

export { ConfigError };
export type { NamespaceOptions } from './namespaces.js';
export { Namespaces } from './namespaces.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function int(min: number, max: number) {
  return z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
}

function isUrlOf(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function url(protocols: string[]) {
  return z.string().refine((value) => isUrlOf(value, protocols), {
    error: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  });
}

/**
 * REDIS_URL: one URL, or (Redis Cluster) seed nodes separated by commas. Each entry is
 * checked on its own so the message names the entry that is wrong; whether a list is allowed
 * at all depends on TIDINGS_REDIS_CLUSTER, checked in loadConfig.
 */
function redisUrls() {
  return z.string().check((ctx) => {
    const problem = redisUrlsProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: problem });
  });
}

function redisUrlsProblem(value: string): string | undefined {
  const entries = value.split(',').map((entry) => entry.trim());
  for (const [i, entry] of entries.entries()) {
    const which = entries.length > 1 ? `entry ${i + 1} ` : '';
    if (entry === '') return `${which}is empty (seed nodes are separated by single commas)`;
    if (isUrlOf(entry, ['redis:', 'rediss:'])) continue;
    return `${which ? `${which}(${JSON.stringify(entry)}) ` : ''}must be a URL starting with redis:// or rediss://`;
  }
  return undefined;
}

/**
 * A secret: refused when it is a placeholder copied from an example (`change-me…`, issue 9:
 * docker-compose.yml used to ship such defaults) or too short to resist guessing offline. A
 * token secret is an HMAC key, so its strength is counted in bytes (RFC 7518 §3.2: at least
 * the hash size, 32 bytes for HS256); an API key is typed by people, so in characters.
 */
function secret(minimum: number, unit: 'bytes' | 'characters', hint: string) {
  return z.string().check((ctx) => {
    const problem = secretProblem(ctx.value, minimum, unit);
    if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: `${problem}, e.g. ${hint}` });
  });
}

/** What is wrong with a secret (see `secret` above), or undefined when nothing is. */
export function secretProblem(value: string, minimum = 32, unit: 'bytes' | 'characters' = 'bytes'): string | undefined {
  if (/^change-me/i.test(value)) return 'is a placeholder (starts with "change-me"): set a random value';
  const size = unit === 'bytes' ? Buffer.byteLength(value, 'utf8') : [...value].length;
  if (size < minimum) return `must be at least ${minimum} ${unit}`;
  return undefined;
}

/** TIDINGS_WEBHOOK_EVENTS: a comma list of known event types, the unknown one named. */
function webhookEvents() {
  return z.string().check((ctx) => {
    const parsed = parseWebhookEvents(ctx.value);
    if ('problem' in parsed) ctx.issues.push({ code: 'custom', input: ctx.value, message: parsed.problem });
  });
}

/** Longest admin password accepted (config and login form alike). */
export const MAX_ADMIN_PASSWORD_CHARS = 1024;

/** Environment variable name → its schema. Names here are the documented contract. */
const schema = {
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_READ_URL: url(['postgres:', 'postgresql:']).optional(),
  REDIS_URL: redisUrls().optional(),
  // Issue 13: REDIS_URL then lists seed nodes; keys and topics carry per-partition hash tags.
  TIDINGS_REDIS_CLUSTER: z.stringbool({ error: 'must be 1 or 0 (true or false)' }).default(false),
  PORT: int(0, 65535).default(8000),
  HOST: z.string().min(1).optional(),
  TIDINGS_TOKEN_SECRET: secret(32, 'bytes', 'openssl rand -base64 32').optional(),
  TIDINGS_API_KEY: secret(32, 'characters', 'openssl rand -hex 24').optional(),
  TIDINGS_NODE_NAME: z.string().min(1).max(100).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  TIDINGS_CONFIG: z.string().min(1).optional(),
  TIDINGS_PARTITIONS: int(1, 1024).default(8),
  TIDINGS_BATCH_MAX: int(1, 10_000).default(1000),
  // 1: a publication waits behind at most one job of its partition (docs/benchmarks.md).
  TIDINGS_INFLIGHT_JOBS: int(1, 64).default(1),
  // 3.5 s: with a flow-control wait (an eighth of it) and the PostgreSQL decision (< 1 s) the
  // answer still comes before the SDKs' own 5 s call timeout.
  TIDINGS_PUBLISH_TIMEOUT_MS: int(100, 600_000).default(3500),
  TIDINGS_PING_INTERVAL_S: int(0, 3600).default(25),
  TIDINGS_PONG_TIMEOUT_S: int(0, 3600).default(10),
  TIDINGS_STALE_S: int(1, 3600).default(15),
  TIDINGS_HISTORY_CACHE_SIZE: int(0, 1_000_000).default(1000),
  TIDINGS_HISTORY_CACHE_TTL_S: int(1, 365 * 86400).default(86400),
  // Recovery is streamed in byte-bounded chunks paced by the client (issue 9), so a long gap costs
  // the gateway about one chunk of memory per subscriber, not the gap: 100,000 covers a long night.
  TIDINGS_RECOVERY_MAX: int(0, 1_000_000).default(100_000),
  TIDINGS_HISTORY_MAX_PER_CALL: int(1, 100_000).default(1000),
  // Issue 9: bytes of publications in one history reply or recovery chunk (the first always goes).
  TIDINGS_REPLY_MAX_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  TIDINGS_MAX_MESSAGE_BYTES: int(1024, 64 * 1024 * 1024).default(65_536),
  TIDINGS_CLIENT_QUEUE_MAX_BYTES: int(1024, 1024 * 1024 * 1024).default(1_048_576),
  TIDINGS_CHANNELS_PER_CONNECTION: int(1, 100_000).default(128),
  TIDINGS_PRESENCE_TTL_S: int(5, 3600).default(60),
  TIDINGS_RETENTION_INTERVAL_S: int(1, 7 * 86400).default(3600),
  // Width of a publications partition (src/persist/partitions.ts): retention drops whole ones.
  TIDINGS_PG_PARTITION_DAYS: int(1, 366).default(1),
  TIDINGS_CLIENT_RATE: int(1, 1_000_000).default(1000),
  TIDINGS_CLIENT_BURST: int(1, 1_000_000).default(2000),
  TIDINGS_POSITION_CHECK_S: int(0, 3600).default(40),
  TIDINGS_SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  TIDINGS_INGEST_BACKLOG_MAX: int(1, 10_000_000).default(20_000),
  // Issue 12: the HTTP API's bounded concurrency (src/api/limit.ts); beyond it, 503 + Retry-After.
  TIDINGS_API_MAX_INFLIGHT: int(1, 1_000_000).default(256),
  TIDINGS_API_QUEUE_MAX: int(0, 10_000_000).default(1024),
  TIDINGS_API_QUEUE_TIMEOUT_MS: int(1, 600_000).default(2000),
  TIDINGS_ALLOWED_ORIGINS: z.string().optional(),
  TIDINGS_TOKEN_AUDIENCE: z.string().min(1).optional(),
  TIDINGS_TOKEN_ISSUER: z.string().min(1).optional(),
  TIDINGS_MAX_CONNECTIONS_PER_IP: int(0, 10_000_000).default(10_000),
  TIDINGS_CONNECT_RATE_PER_IP: int(0, 10_000_000).default(1000),
  TIDINGS_METRICS_PORT: int(0, 65535).optional(),
  TIDINGS_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be 1-64 letters, digits, _ or -' })
    .default('tidings'),
  // 2 s: a killed worker's partitions and job are taken over within about 2-3 s (src/persist/guard.ts).
  TIDINGS_WORKER_LOCK_MS: int(1000, 600_000).default(1500),
  TIDINGS_DEV_DIR: z.string().min(1).default('.tidings'),
  // Unset: on for `tidings dev` only; tokens also only on a loopback HOST (see demoSettings).
  TIDINGS_DEMO: z.stringbool({ error: 'must be true or false' }).optional(),
  TIDINGS_DEMO_TOKENS: z.stringbool({ error: 'must be true or false' }).optional(),
  // Issue 14: Centrifugo's HTTP proxies (src/proxy/client.ts), each off unless its URL is set.
  TIDINGS_PROXY_CONNECT_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_REFRESH_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_SUB_REFRESH_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_RPC_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_SUBSCRIBE_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_PUBLISH_URL: url(['http:', 'https:']).optional(),
  TIDINGS_PROXY_TIMEOUT_MS: int(10, 60_000).default(1000),
  TIDINGS_PROXY_CONNECT_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_REFRESH_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_SUB_REFRESH_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_RPC_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_SUBSCRIBE_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_PUBLISH_TIMEOUT_MS: int(10, 60_000).optional(),
  TIDINGS_PROXY_HTTP_HEADERS: z
    .string()
    .regex(/^\s*[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*\s*$/, { error: 'must be header names separated by commas' })
    .optional(),
  TIDINGS_PROXY_MAX_RESPONSE_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  // The connect proxy for connects with a token too (the token is forwarded, not verified here).
  TIDINGS_PROXY_CONNECT_WITH_TOKEN: z.stringbool({ error: 'must be true or false' }).default(false),
  // Issue 14: durable lifecycle webhooks (src/webhooks/), off unless the URL is set.
  TIDINGS_WEBHOOK_URL: url(['http:', 'https:']).optional(),
  // An HMAC key that backends paste from a config file: counted in characters, as the API key.
  TIDINGS_WEBHOOK_SECRET: secret(32, 'characters', 'openssl rand -hex 32').optional(),
  TIDINGS_WEBHOOK_EVENTS: webhookEvents().optional(),
  TIDINGS_WEBHOOK_TIMEOUT_MS: int(100, 600_000).default(5000),
  // Generous by default: with the 60 s cap, 5000 attempts span days, so the age limit decides.
  TIDINGS_WEBHOOK_MAX_ATTEMPTS: int(1, 1_000_000).default(5000),
  TIDINGS_WEBHOOK_MAX_AGE_S: int(1, 30 * 86400).default(86400),
  TIDINGS_WEBHOOK_BACKOFF_MAX_MS: int(10, 3_600_000).default(60_000),
  TIDINGS_WEBHOOK_PARTITIONS: int(1, 256).default(4),
  // Webhook events waiting per delivery queue while the backend is away; past it new ones go
  // to the dead-letter list, so Redis holds about this many at most per queue.
  TIDINGS_WEBHOOK_BACKLOG_MAX: int(100, 100_000_000).default(100_000),
  // Issue 16: the admin console at /admin (src/admin/), off unless the password is set. Typed by
  // people, so counted in characters; bounded above so hashing a login costs nothing.
  TIDINGS_ADMIN_PASSWORD: secret(16, 'characters', 'openssl rand -base64 18')
    .refine((value) => value.length <= MAX_ADMIN_PASSWORD_CHARS, { error: `must be at most ${MAX_ADMIN_PASSWORD_CHARS} characters` })
    .optional(),
  TIDINGS_ADMIN_SESSION_TTL_S: int(60, 7 * 86400).default(8 * 3600),
  TIDINGS_ADMIN_SECURE_COOKIE: z.stringbool({ error: 'must be true or false' }).default(false),
} as const;

type Env = { [K in keyof typeof schema]: z.output<(typeof schema)[K]> };

export interface Config {
  role: Role;
  databaseUrl: string | undefined;
  /** A read replica for history and recovery reads (gateways); the primary answers what it cannot. */
  databaseReadUrl: string | undefined;
  /** One URL, or in cluster mode seed node URLs separated by commas (see `redisSeeds`). */
  redisUrl: string | undefined;
  /** Redis Cluster mode (TIDINGS_REDIS_CLUSTER): keys carry hash tags, pub/sub is sharded. */
  redisCluster: boolean;
  port: number;
  host: string;
  tokenSecret: string | undefined;
  apiKey: string | undefined;
  nodeName: string;
  logLevel: (typeof LOG_LEVELS)[number];
  configFile: string | undefined;
  /** Channel namespaces from TIDINGS_CONFIG (or the built-in default namespace). */
  namespaces: Namespaces;
  devDir: string;
  /** The demo page at GET / (and its SDK copy under /demo/): off on a gateway unless asked for. */
  demo: boolean;
  /**
   * GET /demo/token hands out connection tokens to anyone: development only (`tidings dev`
   * turns it on), and never while `host` is reachable from other machines.
   */
  demoTokens: boolean;
  ingest: {
    partitions: number;
    batchMax: number;
    inflightJobs: number;
    publishTimeoutMs: number;
    queuePrefix: string;
    workerLockMs: number;
    retentionIntervalS: number;
    /** Days of publications per PostgreSQL partition. */
    partitionDays: number;
    /**
     * Publications a gateway lets wait per partition before an API publish is answered 111;
     * client publishes wait for room below it instead (src/ingest/flow.ts).
     */
    backlogMax: number;
  };
  /** The server HTTP API's bounded concurrency, per gateway (src/api/limit.ts). */
  api: {
    maxInflight: number;
    queueMax: number;
    queueTimeoutMs: number;
  };
  security: {
    /** undefined: same origin only; ['*']: any; else the listed origins. */
    allowedOrigins: string[] | undefined;
    tokenAudience: string | undefined;
    tokenIssuer: string | undefined;
    maxConnectionsPerIp: number;
    connectRatePerIp: number;
  };
  positionCheckS: number;
  shutdownGraceMs: number;
  /** Workers: serve /metrics and /health on this port (gateways serve them on PORT). */
  metricsPort: number | undefined;
  /** Centrifugo-compatible HTTP proxies to the app's backend (issue 14). */
  proxy: ProxySettings;
  /** Durable lifecycle webhooks (issue 14); undefined when TIDINGS_WEBHOOK_URL is unset. */
  webhooks: WebhookSettings | undefined;
  /** The admin console (issue 16); undefined, and /admin a 404, when TIDINGS_ADMIN_PASSWORD is unset. */
  admin: AdminSettings | undefined;
  client: {
    pingIntervalS: number;
    pongTimeoutS: number;
    staleS: number;
    maxMessageBytes: number;
    queueMaxBytes: number;
    channelsPerConnection: number;
    presenceTtlS: number;
    /** Commands per second a connection may send on average, and in a burst. */
    rate: number;
    burst: number;
  };
  history: {
    cacheSize: number;
    cacheTtlS: number;
    recoveryMax: number;
    maxPerCall: number;
    /** Bytes of publications in one history reply or recovery chunk; client replies are also held to `client.queueMaxBytes`. */
    replyMaxBytes: number;
  };
}

/** What each role cannot run without (dev starts what is missing itself). */
const REQUIRED = {
  gateway: ['DATABASE_URL', 'REDIS_URL', 'TIDINGS_TOKEN_SECRET'],
  worker: ['DATABASE_URL', 'REDIS_URL'],
  migrate: ['DATABASE_URL'],
  token: ['TIDINGS_TOKEN_SECRET'],
  dev: [],
} as const satisfies Record<Role, readonly (keyof typeof schema)[]>;

/** The Config field that each variable a role may require fills. */
interface RequiredField {
  DATABASE_URL: 'databaseUrl';
  REDIS_URL: 'redisUrl';
  TIDINGS_TOKEN_SECRET: 'tokenSecret';
}

/**
 * The Config of a role once loadConfig has checked it: the settings REQUIRED for the role
 * are strings, so the code that runs the role needs no `!`. Derived from REQUIRED, so the
 * type cannot promise what the check does not enforce. For a role known only as `Role`,
 * a union: nothing is promised beyond Config.
 */
export type ConfigFor<R extends Role> = R extends Role
  ? Config & { [V in (typeof REQUIRED)[R][number] as RequiredField[V]]: string }
  : never;
export type GatewayConfig = ConfigFor<'gateway'>;
export type WorkerConfig = ConfigFor<'worker'>;

function parseEnv(env: NodeJS.ProcessEnv): Env {
  const out: Record<string, unknown> = {};
  for (const [name, rule] of Object.entries(schema)) {
    const raw = env[name];
    // An empty variable is treated as unset, as shells and compose files often leave them so.
    const result = (rule as z.ZodType).safeParse(raw === '' ? undefined : raw);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new ConfigError(name, issue?.message ?? 'invalid value');
    }
    out[name] = result.data;
  }
  return out as Env;
}

export function loadConfig<R extends Role>(role: R, env: NodeJS.ProcessEnv = process.env): Readonly<ConfigFor<R>> {
  const e = parseEnv(env);
  for (const name of REQUIRED[role]) {
    if (e[name] === undefined) throw new ConfigError(name, `required for "tidings ${role}"`);
  }
  if (e.TIDINGS_PONG_TIMEOUT_S > 0 && e.TIDINGS_PING_INTERVAL_S > 0 && e.TIDINGS_PONG_TIMEOUT_S >= e.TIDINGS_PING_INTERVAL_S) {
    throw new ConfigError('TIDINGS_PONG_TIMEOUT_S', 'must be smaller than TIDINGS_PING_INTERVAL_S');
  }
  if (e.REDIS_URL?.includes(',') && !e.TIDINGS_REDIS_CLUSTER) {
    throw new ConfigError('REDIS_URL', 'lists several nodes, which only Redis Cluster mode takes: set TIDINGS_REDIS_CLUSTER=1, or give one URL');
  }
  const config = buildConfig(e, role);
  if (role === 'gateway' || role === 'dev') checkNamespaceProxies(config.namespaces, config.proxy);
  checkPublicationWebhooks(config.namespaces, config.webhooks);
  // The loop above refused the role's missing REQUIRED variables, which is all ConfigFor adds.
  return Object.freeze(config) as Readonly<ConfigFor<R>>;
}

const PROXY_ENV = {
  connect: ['TIDINGS_PROXY_CONNECT_URL', 'TIDINGS_PROXY_CONNECT_TIMEOUT_MS'],
  refresh: ['TIDINGS_PROXY_REFRESH_URL', 'TIDINGS_PROXY_REFRESH_TIMEOUT_MS'],
  sub_refresh: ['TIDINGS_PROXY_SUB_REFRESH_URL', 'TIDINGS_PROXY_SUB_REFRESH_TIMEOUT_MS'],
  rpc: ['TIDINGS_PROXY_RPC_URL', 'TIDINGS_PROXY_RPC_TIMEOUT_MS'],
  subscribe: ['TIDINGS_PROXY_SUBSCRIBE_URL', 'TIDINGS_PROXY_SUBSCRIBE_TIMEOUT_MS'],
  publish: ['TIDINGS_PROXY_PUBLISH_URL', 'TIDINGS_PROXY_PUBLISH_TIMEOUT_MS'],
} as const satisfies Record<ProxyKind, readonly [keyof Env, keyof Env]>;

function proxySettings(e: Env): ProxySettings {
  const endpoints: ProxySettings['endpoints'] = {};
  for (const kind of PROXY_KINDS) {
    const [urlVar, timeoutVar] = PROXY_ENV[kind];
    const target = e[urlVar];
    if (target !== undefined) endpoints[kind] = { url: target, timeoutMs: e[timeoutVar] ?? e.TIDINGS_PROXY_TIMEOUT_MS };
  }
  const headers = (e.TIDINGS_PROXY_HTTP_HEADERS ?? '').split(',').map((h) => h.trim().toLowerCase());
  if (e.TIDINGS_PROXY_CONNECT_WITH_TOKEN && !endpoints.connect) {
    throw new ConfigError('TIDINGS_PROXY_CONNECT_WITH_TOKEN', 'needs TIDINGS_PROXY_CONNECT_URL');
  }
  return {
    endpoints,
    headers: headers.filter((h) => h !== ''),
    maxResponseBytes: e.TIDINGS_PROXY_MAX_RESPONSE_BYTES,
    connectWithToken: e.TIDINGS_PROXY_CONNECT_WITH_TOKEN,
  };
}

/**
 * Webhooks are on once TIDINGS_WEBHOOK_URL is set; unsigned events would let anyone who finds
 * the URL forge disconnects, so a URL without its secret is refused, not sent unsigned.
 */
function webhookSettings(e: Env): WebhookSettings | undefined {
  if (e.TIDINGS_WEBHOOK_URL === undefined) {
    if (e.TIDINGS_WEBHOOK_SECRET !== undefined) throw new ConfigError('TIDINGS_WEBHOOK_URL', 'required: TIDINGS_WEBHOOK_SECRET is set');
    return undefined;
  }
  if (e.TIDINGS_WEBHOOK_SECRET === undefined) {
    throw new ConfigError('TIDINGS_WEBHOOK_SECRET', 'required: TIDINGS_WEBHOOK_URL is set (events are signed with it)');
  }
  const parsed = e.TIDINGS_WEBHOOK_EVENTS === undefined ? undefined : parseWebhookEvents(e.TIDINGS_WEBHOOK_EVENTS);
  const events = parsed && 'events' in parsed ? parsed.events : DEFAULT_WEBHOOK_EVENTS;
  return {
    url: e.TIDINGS_WEBHOOK_URL,
    secret: e.TIDINGS_WEBHOOK_SECRET,
    events: new Set(events),
    timeoutMs: e.TIDINGS_WEBHOOK_TIMEOUT_MS,
    maxAttempts: e.TIDINGS_WEBHOOK_MAX_ATTEMPTS,
    maxAgeMs: e.TIDINGS_WEBHOOK_MAX_AGE_S * 1000,
    backoffMaxMs: e.TIDINGS_WEBHOOK_BACKOFF_MAX_MS,
    partitions: e.TIDINGS_WEBHOOK_PARTITIONS,
    backlogMax: e.TIDINGS_WEBHOOK_BACKLOG_MAX,
  };
}

/**
 * `publication` events need both switches: the event type selected, and a namespace that
 * opts in. Either alone would send nothing, silently: refused at boot, in every role, so a
 * gateway with a config its workers refuse fails as loudly.
 */
function checkPublicationWebhooks(namespaces: Namespaces, webhooks: WebhookSettings | undefined): void {
  const optedIn = namespaces.all().filter((ns) => ns.webhook_publications);
  const selected = webhooks?.events.has('publication') === true;
  if (selected && optedIn.length === 0) {
    throw new ConfigError('TIDINGS_WEBHOOK_EVENTS', '"publication" is selected but no namespace sets "webhook_publications": true');
  }
  if (!selected && optedIn.length > 0) {
    const name = optedIn[0]!.name || 'default';
    throw new ConfigError('TIDINGS_CONFIG', `namespace "${name}" sets "webhook_publications" but TIDINGS_WEBHOOK_EVENTS does not select "publication"${webhooks ? '' : ' (and TIDINGS_WEBHOOK_URL is unset)'}`);
  }
}

export interface AdminSettings {
  password: string;
  /** A session cookie is refused this long after the login that made it. */
  sessionTtlS: number;
  /** Mark the cookie `Secure`: set it when the console is reached over TLS (a proxy terminating it counts). */
  secureCookie: boolean;
}

function adminSettings(e: Env): AdminSettings | undefined {
  if (e.TIDINGS_ADMIN_PASSWORD === undefined) return undefined;
  return {
    password: e.TIDINGS_ADMIN_PASSWORD,
    sessionTtlS: e.TIDINGS_ADMIN_SESSION_TTL_S,
    secureCookie: e.TIDINGS_ADMIN_SECURE_COOKIE,
  };
}

/** A namespace that asks for a proxy that has no URL would silently let everything through: refused at boot. */
function checkNamespaceProxies(namespaces: Namespaces, proxy: ProxySettings): void {
  for (const ns of namespaces.all()) {
    for (const kind of ['subscribe', 'publish', 'sub_refresh'] as const) {
      if (ns[`proxy_${kind}`] && !proxy.endpoints[kind]) {
        throw new ConfigError(PROXY_ENV[kind][0], `required: namespace "${ns.name || 'default'}" sets proxy_${kind}`);
      }
    }
  }
}

function buildConfig(e: Env, role: Role): Config {
  const host = e.HOST ?? (role === 'dev' ? '127.0.0.1' : '0.0.0.0');
  const demo = demoSettings(e, role, host);
  return {
    role,
    databaseUrl: e.DATABASE_URL,
    databaseReadUrl: e.DATABASE_READ_URL,
    redisUrl: e.REDIS_URL,
    redisCluster: e.TIDINGS_REDIS_CLUSTER,
    port: e.PORT,
    host,
    tokenSecret: e.TIDINGS_TOKEN_SECRET,
    apiKey: e.TIDINGS_API_KEY,
    nodeName: e.TIDINGS_NODE_NAME ?? `${hostname()}-${process.pid}`,
    logLevel: e.LOG_LEVEL,
    configFile: e.TIDINGS_CONFIG,
    namespaces: loadNamespaces(e.TIDINGS_CONFIG, {
      historySize: e.TIDINGS_HISTORY_CACHE_SIZE,
      historyTtlS: e.TIDINGS_HISTORY_CACHE_TTL_S,
      recoveryMax: e.TIDINGS_RECOVERY_MAX,
    }, role === 'dev'),
    devDir: e.TIDINGS_DEV_DIR,
    demo: demo.page,
    demoTokens: demo.tokens,
    ingest: {
      partitions: e.TIDINGS_PARTITIONS,
      batchMax: e.TIDINGS_BATCH_MAX,
      inflightJobs: e.TIDINGS_INFLIGHT_JOBS,
      publishTimeoutMs: e.TIDINGS_PUBLISH_TIMEOUT_MS,
      queuePrefix: e.TIDINGS_QUEUE_PREFIX,
      workerLockMs: e.TIDINGS_WORKER_LOCK_MS,
      retentionIntervalS: e.TIDINGS_RETENTION_INTERVAL_S,
      partitionDays: e.TIDINGS_PG_PARTITION_DAYS,
      backlogMax: e.TIDINGS_INGEST_BACKLOG_MAX,
    },
    api: {
      maxInflight: e.TIDINGS_API_MAX_INFLIGHT,
      queueMax: e.TIDINGS_API_QUEUE_MAX,
      queueTimeoutMs: e.TIDINGS_API_QUEUE_TIMEOUT_MS,
    },
    security: {
      allowedOrigins: parseOrigins(e.TIDINGS_ALLOWED_ORIGINS, role),
      tokenAudience: e.TIDINGS_TOKEN_AUDIENCE,
      tokenIssuer: e.TIDINGS_TOKEN_ISSUER,
      maxConnectionsPerIp: e.TIDINGS_MAX_CONNECTIONS_PER_IP,
      connectRatePerIp: e.TIDINGS_CONNECT_RATE_PER_IP,
    },
    proxy: proxySettings(e),
    webhooks: webhookSettings(e),
    admin: adminSettings(e),
    positionCheckS: e.TIDINGS_POSITION_CHECK_S,
    shutdownGraceMs: e.TIDINGS_SHUTDOWN_GRACE_MS,
    metricsPort: e.TIDINGS_METRICS_PORT,
    client: {
      pingIntervalS: e.TIDINGS_PING_INTERVAL_S,
      pongTimeoutS: e.TIDINGS_PONG_TIMEOUT_S,
      staleS: e.TIDINGS_STALE_S,
      maxMessageBytes: e.TIDINGS_MAX_MESSAGE_BYTES,
      queueMaxBytes: e.TIDINGS_CLIENT_QUEUE_MAX_BYTES,
      channelsPerConnection: e.TIDINGS_CHANNELS_PER_CONNECTION,
      presenceTtlS: e.TIDINGS_PRESENCE_TTL_S,
      rate: e.TIDINGS_CLIENT_RATE,
      burst: e.TIDINGS_CLIENT_BURST,
    },
    history: {
      cacheSize: e.TIDINGS_HISTORY_CACHE_SIZE,
      cacheTtlS: e.TIDINGS_HISTORY_CACHE_TTL_S,
      recoveryMax: e.TIDINGS_RECOVERY_MAX,
      maxPerCall: e.TIDINGS_HISTORY_MAX_PER_CALL,
      replyMaxBytes: e.TIDINGS_REPLY_MAX_BYTES,
    },
  };
}

/**
 * The demo page is off on a gateway unless TIDINGS_DEMO (or TIDINGS_DEMO_TOKENS, which has
 * always implied the page) asks for it; `tidings dev` turns both on. Demo tokens make anyone
 * who reaches the port a user, so an explicit request for them on a non-loopback HOST is
 * refused at start (an operator who asked for them must learn it cannot be honoured, not find
 * out later), while dev's implicit default quietly turns them off there (dev warns).
 */
function demoSettings(e: Env, role: Role, host: string): { page: boolean; tokens: boolean } {
  if (e.TIDINGS_DEMO_TOKENS && !isLoopbackHost(host)) {
    throw new ConfigError(
      'TIDINGS_DEMO_TOKENS',
      `hands out tokens to anyone, so it needs HOST on loopback (127.0.0.1, ::1, localhost), not ${host}`,
    );
  }
  if (e.TIDINGS_DEMO_TOKENS && e.TIDINGS_DEMO === false) {
    throw new ConfigError('TIDINGS_DEMO_TOKENS', 'serves the demo page, which TIDINGS_DEMO=false turns off');
  }
  const tokens = e.TIDINGS_DEMO_TOKENS ?? (role === 'dev' && isLoopbackHost(host));
  return { page: e.TIDINGS_DEMO ?? (tokens || role === 'dev'), tokens };
}

/** True when a bind address accepts connections from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Browser origins allowed to open a WebSocket. Unset means same origin only (the page was
 * served by this host), except in dev, where any origin is fine on a laptop.
 */
function parseOrigins(raw: string | undefined, role: Role): string[] | undefined {
  if (raw === undefined) return role === 'dev' ? ['*'] : undefined;
  const origins = raw.split(',').map((o) => o.trim().toLowerCase()).filter((o) => o !== '');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('TIDINGS_ALLOWED_ORIGINS', `"${origin}" is not an origin like https://app.example.com`);
    }
  }
  return origins;
}

/** The seed node URLs of a REDIS_URL (one entry outside cluster mode). */
export function redisSeeds(redisUrl: string): string[] {
  return redisUrl.split(',').map((entry) => entry.trim());
}

/** Names and defaults, for --help and the README table. */
export const ENV_NAMES = Object.keys(schema);
