/**
 * The wire types of the commands of Centrifugo's JSON client protocol v2, field for field as
 * on the wire (snake_case proto names; PROTO `definitions/client.proto`, PROTOCOL.md B). Only
 * what Tidings reads is typed; the decoder keeps unknown payload fields untouched. What the
 * server writes has no types here: each reply and push has its named encoder in ./codec.ts.
 *
 * Every proto3 field is optional on the wire (zero values are omitted), so request fields
 * are optional here unless `decodeFrame` guarantees them (e.g. `channel` of a subscribe).
 *
 * `bytes` fields (`data`) are embedded JSON, plain parsed values once decoded.
 */

/** An embedded JSON value, as parsed. */
export type JsonData = unknown;

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
