/**
 * One Redis pub/sub connection per gateway, shared by the hub (channel topics) and the
 * ingest client (this gateway's acks). It routes each message to the one handler of its
 * topic, and reports reconnects so listeners can look for what they missed meanwhile:
 * Redis pub/sub delivers at most once and drops everything while disconnected.
 *
 * On a Redis Cluster it is sharded pub/sub (SSUBSCRIBE, one subscriber connection per master,
 * ioredis `shardedSubscribers`): a failover or a slot moving to another master drops the
 * subscriptions of the slots concerned; ioredis then refreshes its slot map, subscribes them
 * again on their new master and emits `subscribersReady`, which counts as a reconnect here,
 * so listeners look for what was published meanwhile exactly as after a plain reconnect.
 */
import type { RedisClient } from './client.js';
import type { Logger } from '../observability/logger.js';

export type TopicHandler = (message: string) => void;

export class PubSub {
  private readonly handlers = new Map<string, TopicHandler>();
  private readonly reconnectListeners: (() => void)[] = [];
  private everReady = false;

  /** `sharded`: SSUBSCRIBE on a Redis Cluster (src/bus/keys.ts `cluster`). */
  constructor(
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly sharded = false,
  ) {
    const route = (topic: string, message: string) => this.route(topic, message);
    if (sharded) {
      redis.on('smessage', route);
      redis.on('subscribersReady', () => this.reconnected());
    } else {
      redis.on('message', route);
      redis.on('ready', () => this.reconnected());
    }
  }

  /** Resolves once Redis confirmed the subscription: later publishes will reach `handler`. */
  async listen(topic: string, handler: TopicHandler): Promise<void> {
    this.handlers.set(topic, handler);
    await (this.sharded ? this.redis.ssubscribe(topic) : this.redis.subscribe(topic));
  }

  async unlisten(topic: string): Promise<void> {
    this.handlers.delete(topic);
    await (this.sharded ? this.redis.sunsubscribe(topic) : this.redis.unsubscribe(topic));
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /** The first `ready` is the first connect, not a reconnect (a cluster's first `subscribersReady` is harmless either way). */
  private reconnected(): void {
    if (this.everReady || this.sharded) for (const listener of this.reconnectListeners) listener();
    this.everReady = true;
  }

  private route(topic: string, message: string): void {
    const handler = this.handlers.get(topic);
    if (!handler) return;
    try {
      handler(message);
    } catch (err) {
      this.log.error({ err, topic }, 'pub/sub handler failed');
    }
  }
}
