/**
 * What the gateway's proxies are configured with (./index.ts builds it from the environment;
 * src/proxy/client.ts uses it). Kept apart so both import it without importing each other.
 */

/** The proxies of Centrifugo's HTTP proxy protocol that Tidings calls. */
export const PROXY_KINDS = ['connect', 'refresh', 'rpc', 'subscribe', 'publish', 'sub_refresh'] as const;
export type ProxyKind = (typeof PROXY_KINDS)[number];

/** RPC methods Tidings answers itself (CONTRACT: `tidings.read`, …); never forwarded to the RPC proxy. */
export const OWN_RPC_PREFIX = 'tidings.';

export interface ProxyEndpoint {
  url: string;
  timeoutMs: number;
}

export interface ProxySettings {
  endpoints: Partial<Record<ProxyKind, ProxyEndpoint>>;
  /** Lower-case names of the client's HTTP headers forwarded to every proxy (TIDINGS_PROXY_HTTP_HEADERS). */
  headers: readonly string[];
  /** A proxy answer larger than this is a failed call (error 100), never buffered. */
  maxResponseBytes: number;
  /**
   * Connects that carry a token go to the connect proxy too, with the token in the request
   * (`token`), and are not verified as JWTs here: the backend decides (TIDINGS_PROXY_CONNECT_WITH_TOKEN).
   */
  connectWithToken: boolean;
}
