/**
 * The node registry: every live gateway's stats in Redis, so that `info` and `channels`
 * answered by any gateway cover the whole cluster.
 *
 * Each gateway keeps two keys, written together (MULTI) with a TTL of `ttlMs` and renewed
 * every `intervalMs`:
 *   node:<uid>    JSON {uid, name, version, num_clients, num_users, num_channels, uptime, num_subs}
 *   nodech:<uid>  JSON {channel: number of local subscribers}
 * and adds its uid to the SET `nodes`. A gateway that dies stops renewing, and its keys
 * expire on Redis's clock (so clock skew between gateways does not matter); readers drop
 * the uids whose stats key is gone. A gateway that closes cleanly deletes its keys at once.
 *
 * When the local channel set changes, the keys are rewritten eagerly (debounced), so a new
 * channel shows in `channels` within ~`debounceMs`; subscriber counts of known channels are
 * as fresh as the last write. A reader sees its own gateway live, not through Redis.
 *
 * Cost: one MULTI per interval per gateway; the channel map is rewritten only when it
 * changed (otherwise its TTL is renewed), so a gateway with many quiet channels does not
 * re-send them every few seconds.
 *
 * Background writes never throw (STYLE habit 8): a failure is logged and the next tick
 * tries again.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';
import type { Logger } from '../observability/logger.js';

/** A node as `info` lists it; every field is always present (CFG `generate_tags.sh`). */
export interface NodeInfo {
  uid: string;
  name: string;
  version: string;
  num_clients: number;
  num_users: number;
  num_channels: number;
  uptime: number;
  num_subs: number;
}

/** What this gateway reports about itself, read at each write. */
export interface LocalNode {
  counts(): Pick<NodeInfo, 'num_clients' | 'num_users' | 'num_channels' | 'num_subs'>;
  /** Channels with at least one local subscriber, and how many. */
  channels(): Map<string, number>;
}

export interface RegistryTiming {
  intervalMs: number;
  ttlMs: number;
  debounceMs: number;
}

/**
 * Centrifugo publishes node info every 3 s and forgets a node after about 7 s of silence
 * (centrifuge `node.go`: nodeInfoPublishInterval, nodeInfoMaxDelay); the same here, so a
 * dead gateway leaves `info` within 7 s, and two writes may be lost before a live one does.
 */
export const REGISTRY_TIMING: RegistryTiming = { intervalMs: 3000, ttlMs: 7000, debounceMs: 100 };

export class NodeRegistry {
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The channel map as last written; undefined forces a rewrite. */
  private writtenChannels: string | undefined;
  private inflight: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly identity: { name: string; version: string },
    private readonly local: LocalNode,
    private readonly timing: RegistryTiming,
    private readonly log: Logger,
    /** Chosen by the caller when others must know it first (the webhook emitter keys its connection hash by it). */
    readonly uid: string = randomUUID(),
  ) {}

  /** Announces this node (so it is in `info` before it serves anything), then keeps renewing. */
  async start(): Promise<void> {
    await this.write();
    this.timer = setInterval(() => this.publish(), this.timing.intervalMs);
    this.timer.unref();
  }

  /** The local channel set changed: rewrite soon, once for a burst of changes. */
  channelsChanged(): void {
    if (this.closed || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.publish();
    }, this.timing.debounceMs);
    this.debounce.unref();
  }

  /** This node's stats, live. */
  self(): NodeInfo {
    return {
      uid: this.uid,
      name: this.identity.name,
      version: this.identity.version,
      ...this.local.counts(),
      uptime: Math.floor((Date.now() - this.startedAt) / 1000),
    };
  }

  /** Every live node (this one live, the others as last written), sorted by name. */
  async nodes(): Promise<NodeInfo[]> {
    const others = await this.readOthers(false);
    const nodes = [this.self(), ...others.map(([stats]) => JSON.parse(stats) as NodeInfo)];
    return nodes.sort((a, b) => a.name.localeCompare(b.name) || a.uid.localeCompare(b.uid));
  }

  /** channel → subscribers summed over every live node. */
  async channels(): Promise<Map<string, number>> {
    const totals = new Map(this.local.channels());
    for (const [, json] of await this.readOthers(true)) {
      if (json === null) continue;
      for (const [channel, count] of Object.entries(JSON.parse(json) as Record<string, number>)) {
        totals.set(channel, (totals.get(channel) ?? 0) + count);
      }
    }
    return totals;
  }

  /** Stops renewing and removes this node's keys, after any write in flight (it would recreate them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    await this.inflight;
    await this.redis
      .multi()
      .del(this.keys.node(this.uid), this.keys.nodeChannels(this.uid))
      .srem(this.keys.nodes, this.uid)
      .exec()
      .catch((err: unknown) => this.log.warn({ err }, 'could not remove this node from the registry; it expires'));
  }

  private publish(): void {
    if (this.closed) return;
    this.inflight = this.write().catch((err: unknown) => this.log.warn({ err }, 'node registry write failed'));
  }

  private async write(): Promise<void> {
    const { ttlMs } = this.timing;
    const channels = JSON.stringify(Object.fromEntries(this.local.channels()));
    const changed = channels !== this.writtenChannels;
    const multi = this.redis.multi().set(this.keys.node(this.uid), JSON.stringify(this.self()), 'PX', ttlMs);
    if (changed) multi.set(this.keys.nodeChannels(this.uid), channels, 'PX', ttlMs);
    else multi.pexpire(this.keys.nodeChannels(this.uid), ttlMs);
    multi.sadd(this.keys.nodes, this.uid);
    const results = await multi.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
    this.writtenChannels = channels;
    // PEXPIRE answers 0 when the key is gone (Redis restarted or lost it): write it again now.
    if (!changed && results[1]![1] === 0) {
      this.writtenChannels = undefined;
      this.publish();
    }
  }

  /**
   * [stats JSON, channel map JSON or null] of every other node whose stats key is alive, in
   * one MGET; the uids whose stats expired are pruned from the set.
   */
  private async readOthers(withChannels: boolean): Promise<[string, string | null][]> {
    const uids = (await this.redis.smembers(this.keys.nodes)).filter((uid) => uid !== this.uid);
    if (uids.length === 0) return [];
    const keys = uids.map((uid) => this.keys.node(uid));
    if (withChannels) keys.push(...uids.map((uid) => this.keys.nodeChannels(uid)));
    const values = await this.redis.mget(keys);
    const live: [string, string | null][] = [];
    const dead: string[] = [];
    uids.forEach((uid, i) => {
      const stats = values[i];
      if (stats === null || stats === undefined) dead.push(uid);
      else live.push([stats, withChannels ? (values[uids.length + i] ?? null) : null]);
    });
    if (dead.length > 0) {
      this.redis.srem(this.keys.nodes, ...dead).catch((err: unknown) => this.log.debug({ err }, 'could not prune dead nodes'));
    }
    return live;
  }
}
