/**
 * Every Redis key and pub/sub topic Tidings uses, in one place. All start with the
 * configured prefix so several deployments (or test runs) can share one Redis.
 *
 * Channel names are used verbatim inside keys: Redis keys are binary-safe, and nothing
 * here ever passes a key to a pattern command (KEYS, SCAN MATCH, PSUBSCRIBE), so a channel
 * name cannot widen what a command touches.
 *
 * Redis Cluster mode (issue 13, `makeKeys(prefix, { partitions })`): every key and topic
 * carries a hash tag, so what one job or one script touches lives in one slot, on one master.
 * A channel's keys and topic carry the tag of the channel's partition (`partitionOf`), so the
 * fan-out of a partition's channels stays one script call; each partition's queue, lease and
 * ack topics carry it too. The node registry, the worker list and the control topic, which
 * belong to no partition, have tags of their own. Outside cluster mode the names are exactly
 * those of earlier versions, so an upgrade finds its data where it left it.
 */
import { partitionTags } from './slots.js';

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
  /** STRING: JSON {name, started_at, partitions} of one worker, renewed with its heartbeat (same slot as `workers`). */
  workerInfo(workerId: string): string;
  /** BullMQ prefix (queue keys become `${prefix}:ingest-N:…`); in cluster mode see `queuePrefixOf`. */
  queuePrefix: string;
  /** Whether names carry hash tags (Redis Cluster mode): pub/sub is then sharded (SPUBLISH/SSUBSCRIBE). */
  readonly cluster: boolean;
  /** BullMQ prefix of one partition's queue: in cluster mode `${prefix}:{tag}`, so all its keys share a slot. */
  queuePrefixOf(partition: number): string;
  /**
   * Where workers acknowledge one gateway's publications of one partition. In cluster mode one
   * topic per partition, in the partition's slot, so the fan-out script SPUBLISHes the acks
   * after the channels they follow; otherwise the gateway's one topic, `acks(gatewayId)`.
   */
  ackTopic(gatewayId: string, partition: number): string;
  /** Every topic `ackTopic` gives for this gateway (one outside cluster mode). */
  ackTopics(gatewayId: string): string[];
  /** The partition whose slot a channel's keys live in (cluster mode; 0 otherwise). */
  partitionOfChannel(channel: string): number;
  /** BullMQ prefix of one webhook delivery queue (src/webhooks/): in cluster mode a slot of its own per queue. */
  webhookQueuePrefixOf(partition: number): string;
  /** HASH clientId → user: one gateway's live connections, so a dead gateway's disconnects can still be sent. */
  webhookConnections(gatewayUid: string): string;
  /** SET of gateway uids that may have a `webhookConnections` hash (same slot as those hashes). */
  webhookGateways: string;
  /** LIST of webhook events given up on (JSON, newest first, trimmed). */
  webhookDeadLetters: string;
}

export interface ClusterLayout {
  /** TIDINGS_PARTITIONS: each partition gets a hash tag (src/bus/slots.ts). */
  partitions: number;
}

export function makeKeys(prefix: string, cluster?: ClusterLayout): Keys {
  return cluster ? clusterKeys(prefix, cluster.partitions) : singleKeys(prefix);
}

function singleKeys(prefix: string): Keys {
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
    workerInfo: (id) => `${prefix}:workerinfo:${id}`,
    queuePrefix: prefix,
    cluster: false,
    queuePrefixOf: () => prefix,
    // Methods, not arrows: a copy with `acks` replaced ({ ...keys, acks }) routes these too.
    ackTopic(gatewayId) {
      return this.acks(gatewayId);
    },
    ackTopics(gatewayId) {
      return [this.acks(gatewayId)];
    },
    partitionOfChannel: () => 0,
    webhookQueuePrefixOf: () => prefix,
    webhookConnections: (uid) => `${prefix}:whc:${uid}`,
    webhookGateways: `${prefix}:whgateways`,
    webhookDeadLetters: `${prefix}:whdead`,
  };
}

/** Cluster mode: `${prefix}:{tag}:…`, the tag first so a channel name's own braces never count. */
function clusterKeys(prefix: string, partitions: number): Keys {
  const tags = partitionTags(partitions);
  const ofPartition = (p: number) => `${prefix}:{${tags[p]}}`;
  const ofChannel = (channel: string) => ofPartition(partitionOf(channel, partitions));
  const registry = `${prefix}:{${prefix}-registry}`;
  const webhooks = `${prefix}:{${prefix}-webhooks}`;
  const ackTopic = (gatewayId: string, p: number) => `${ofPartition(p)}:ack:${gatewayId}`;
  return {
    history: (channel) => `${ofChannel(channel)}:h:${channel}`,
    meta: (channel) => `${ofChannel(channel)}:m:${channel}`,
    topic: (channel) => `${ofChannel(channel)}:t:${channel}`,
    presence: (channel) => `${ofChannel(channel)}:p:${channel}`,
    presenceExpiry: (channel) => `${ofChannel(channel)}:pe:${channel}`,
    // Without a partition: a history removal's ack (processor) goes here; see ackTopic.
    acks: (gatewayId) => ackTopic(gatewayId, 0),
    // One slot for the registry: its MULTI and MGET stay single commands.
    nodes: `${registry}:nodes`,
    node: (uid) => `${registry}:node:${uid}`,
    nodeChannels: (uid) => `${registry}:nodech:${uid}`,
    control: `${prefix}:{${prefix}-control}:control`,
    lease: (p) => `${ofPartition(p)}:lease`,
    workers: `${prefix}:{${prefix}-workers}:workers`,
    workerInfo: (id) => `${prefix}:{${prefix}-workers}:workerinfo:${id}`,
    queuePrefix: prefix,
    cluster: true,
    queuePrefixOf: ofPartition,
    ackTopic,
    ackTopics: (gatewayId) => tags.map((_, p) => ackTopic(gatewayId, p)),
    partitionOfChannel: (channel) => partitionOf(channel, partitions),
    webhookQueuePrefixOf: (p) => `${prefix}:{${prefix}-wh${p}}`,
    // One slot for the connection hashes and their set: the reaper's take script touches both.
    webhookConnections: (uid) => `${webhooks}:whc:${uid}`,
    webhookGateways: `${webhooks}:whgateways`,
    webhookDeadLetters: `${webhooks}:whdead`,
  };
}

/** Queue name of a webhook delivery partition (src/webhooks/). */
export function webhookQueueName(partition: number): string {
  return `webhook-${partition}`;
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
