/**
 * Every Redis key and pub/sub topic Tidings uses, in one place. All start with the
 * configured prefix so several deployments (or test runs) can share one Redis.
 *
 * Channel names are used verbatim inside keys: Redis keys are binary-safe, and nothing
 * here ever passes a key to a pattern command (KEYS, SCAN MATCH, PSUBSCRIBE), so a channel
 * name cannot widen what a command touches.
 */
export interface Keys {
  /** ZSET of recent publications (score = offset, member = publication JSON). */
  history(channel: string): string;
  /** HASH { e: epoch, t: top offset }: a cache of the channels row. */
  meta(channel: string): string;
  /** Pub/sub topic a gateway subscribes to while it has subscribers of the channel. */
  topic(channel: string): string;
  /** HASH clientId → ClientInfo JSON: who is subscribed, across gateways. */
  presence(channel: string): string;
  /** ZSET clientId → expiry (ms): presence entries a live gateway keeps refreshing. */
  presenceExpiry(channel: string): string;
  /** Pub/sub topic where workers acknowledge one gateway's publishes. */
  acks(gatewayId: string): string;
  /** SET of node uids that announced themselves (src/cluster/registry.ts); dead ones are pruned on read. */
  nodes: string;
  /** STRING (JSON stats of one gateway), with a TTL its gateway keeps renewing. */
  node(uid: string): string;
  /** STRING (JSON channel → subscriber count of one gateway), same TTL as `node`. */
  nodeChannels(uid: string): string;
  /** Pub/sub topic every gateway listens to for cluster commands (src/cluster/control.ts). */
  control: string;
  /** STRING: the worker that owns a partition (src/persist/leases.ts), with a short TTL it renews. */
  lease(partition: number): string;
  /** ZSET worker id → last heartbeat (ms): live workers, so each takes its fair share of partitions. */
  workers: string;
  /** BullMQ prefix (queue keys become `${prefix}:ingest-N:…`). */
  queuePrefix: string;
}

export function makeKeys(prefix: string): Keys {
  return {
    history: (channel) => `${prefix}:h:${channel}`,
    meta: (channel) => `${prefix}:m:${channel}`,
    topic: (channel) => `${prefix}:t:${channel}`,
    presence: (channel) => `${prefix}:p:${channel}`,
    presenceExpiry: (channel) => `${prefix}:pe:${channel}`,
    acks: (gatewayId) => `${prefix}:ack:${gatewayId}`,
    nodes: `${prefix}:nodes`,
    node: (uid) => `${prefix}:node:${uid}`,
    nodeChannels: (uid) => `${prefix}:nodech:${uid}`,
    control: `${prefix}:control`,
    lease: (partition) => `${prefix}:lease:${partition}`,
    workers: `${prefix}:workers`,
    queuePrefix: prefix,
  };
}

/** Queue name of a partition. BullMQ uses ':' as its own separator, so not here. */
export function partitionQueueName(partition: number): string {
  return `ingest-${partition}`;
}

/**
 * FNV-1a over the UTF-16 code units: cheap, stable across processes and versions, and
 * spreads similar names ("room:1", "room:2") well enough for a handful of partitions.
 */
export function partitionOf(channel: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    hash ^= channel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
