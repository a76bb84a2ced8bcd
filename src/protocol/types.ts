/**
 * The wire types of Centrifugo's JSON client protocol v2, field for field as on the wire
 * (snake_case proto names; PROTO `definitions/client.proto`, PROTOCOL.md B and C). Only what
 * Tidings reads or writes is typed; the decoder keeps unknown payload fields untouched.
 *
 * Every proto3 field is optional on the wire (zero values are omitted), so request fields
 * are optional here unless `decodeFrame` guarantees them (e.g. `channel` of a subscribe).
 *
 * `bytes` fields (`data`, `conn_info`, `chan_info`) are embedded JSON. On the way in they are
 * plain parsed values; on the way out they may also be a `RawJson` (already-encoded JSON
 * text spliced verbatim), which is how stored publication data travels without re-parsing.
 */
import type { ErrorBody } from './codes.js';

/** Already-encoded JSON text that the encoder writes as is (after dropping raw newlines). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** An embedded JSON value: parsed (decoded requests) or pre-encoded (outgoing). */
export type JsonData = unknown;

/** A position in a channel's stream. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

// ---------------------------------------------------------------- requests (client → server)

/** Per-channel recovery hint inside `connect.subs` (server-side subscriptions only). */
export interface ConnectSubRequest {
  recover?: boolean;
  offset?: number;
  epoch?: string;
}

export interface ConnectRequest {
  token?: string;
  data?: JsonData;
  subs?: Record<string, ConnectSubRequest>;
  name?: string;
  version?: string;
  headers?: Record<string, string>;
}

export interface SubscribeRequest {
  channel: string;
  token?: string;
  recover?: boolean;
  epoch?: string;
  offset?: number;
  data?: JsonData;
  positioned?: boolean;
  recoverable?: boolean;
  join_leave?: boolean;
  /** "fossil" when the client supports delta compression. */
  delta?: string;
  /** Bitmask: 1 channel compaction supported, 2 reject unrecovered (answer 112). */
  flag?: number;
  /** 0 stream (the only one Tidings serves); 1–4 map / shared-poll variants → 108. */
  type?: number;
  /** Tags filter tree; Tidings does not filter, so a present `tf` should be rejected. */
  tf?: JsonData;
}

export interface UnsubscribeRequest {
  channel: string;
}

export interface PublishRequest {
  channel: string;
  /** Required on the wire (may be JSON null). */
  data: JsonData;
}

export interface PresenceRequest {
  channel: string;
}

export interface PresenceStatsRequest {
  channel: string;
}

export interface HistoryRequest {
  channel: string;
  /** Missing or 0 → position only; -1 → all (capped); > 0 → at most that many. */
  limit?: number;
  since?: { offset?: number; epoch?: string };
  reverse?: boolean;
}

export type PingRequest = Record<string, never>;

export interface SendRequest {
  data?: JsonData;
}

export interface RpcRequest {
  method?: string;
  data?: JsonData;
}

export interface RefreshRequest {
  token: string;
}

export interface SubRefreshRequest {
  channel: string;
  token: string;
}

/** One client command. At most one method key is set; none (and no id) is a pong. */
export interface Command {
  /** > 0 for commands that expect a reply; absent (or 0) for pong and `send`. */
  id?: number;
  connect?: ConnectRequest;
  subscribe?: SubscribeRequest;
  unsubscribe?: UnsubscribeRequest;
  publish?: PublishRequest;
  presence?: PresenceRequest;
  presence_stats?: PresenceStatsRequest;
  history?: HistoryRequest;
  ping?: PingRequest;
  send?: SendRequest;
  rpc?: RpcRequest;
  refresh?: RefreshRequest;
  sub_refresh?: SubRefreshRequest;
}

/** The method keys of a Command, in proto order. */
export const METHODS = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'presence_stats',
  'history',
  'ping',
  'send',
  'rpc',
  'refresh',
  'sub_refresh',
] as const;
export type Method = (typeof METHODS)[number];

// ---------------------------------------------------------------- results (server → client)

/** Who published, or who is present. `user` and `client` are always emitted. */
export interface ClientInfo {
  user: string;
  client: string;
  conn_info?: JsonData;
  chan_info?: JsonData;
}

export interface Publication {
  data: JsonData;
  info?: ClientInfo;
  offset?: number;
  tags?: Record<string, string>;
  /** Go stamps the epoch on offset 1 so early subscribers learn it. */
  epoch?: string;
}

export interface SubscribeResult {
  expires?: boolean;
  ttl?: number;
  recoverable?: boolean;
  epoch?: string;
  /** Ascending by offset, no duplicates; may be pre-encoded (`encodePublicationJson`). */
  publications?: (Publication | RawJson)[];
  recovered?: boolean;
  offset?: number;
  positioned?: boolean;
  data?: JsonData;
  was_recovering?: boolean;
  delta?: boolean;
}

export interface ConnectResult {
  client: string;
  version?: string;
  expires?: boolean;
  ttl?: number;
  data?: JsonData;
  subs?: Record<string, SubscribeResult>;
  ping?: number;
  pong?: boolean;
  session?: string;
  node?: string;
  time?: number;
}

export type UnsubscribeResult = Record<string, never>;
export type PublishResult = Record<string, never>;

export interface PresenceResult {
  /** clientId → info; always emitted, even when empty. */
  presence: Record<string, ClientInfo>;
}

export interface PresenceStatsResult {
  /** Always emitted, including zeros. */
  num_clients: number;
  num_users: number;
}

export interface HistoryResult {
  publications?: (Publication | RawJson)[];
  epoch?: string;
  offset?: number;
}

export type PingResult = Record<string, never>;

export interface RpcResult {
  data?: JsonData;
}

export interface RefreshResult {
  client?: string;
  version?: string;
  expires?: boolean;
  ttl?: number;
}

export interface SubRefreshResult {
  expires?: boolean;
  ttl?: number;
}

/** A reply to a command (`id` > 0), or with neither id nor push, a server ping `{}`. */
export interface Reply {
  id?: number;
  error?: ErrorBody;
  connect?: ConnectResult;
  subscribe?: SubscribeResult;
  unsubscribe?: UnsubscribeResult;
  publish?: PublishResult;
  presence?: PresenceResult;
  presence_stats?: PresenceStatsResult;
  history?: HistoryResult;
  ping?: PingResult;
  rpc?: RpcResult;
  refresh?: RefreshResult;
  sub_refresh?: SubRefreshResult;
}

// ---------------------------------------------------------------- pushes (server → client)

export interface JoinPush {
  info: ClientInfo;
}
export interface LeavePush {
  info: ClientInfo;
}
export interface UnsubscribePush {
  code: number;
  reason: string;
}
export interface MessagePush {
  data: JsonData;
}
export interface SubscribePush {
  recoverable?: boolean;
  epoch?: string;
  offset?: number;
  positioned?: boolean;
  data?: JsonData;
}
export interface DisconnectPush {
  code: number;
  reason: string;
  reconnect?: boolean;
}

/** An async push: `{"push":{…}}`. `message` and `disconnect` carry no channel. */
export interface Push {
  channel?: string;
  pub?: Publication;
  join?: JoinPush;
  leave?: LeavePush;
  unsubscribe?: UnsubscribePush;
  message?: MessagePush;
  subscribe?: SubscribePush;
  disconnect?: DisconnectPush;
}
