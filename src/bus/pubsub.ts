/**
 * One Redis pub/sub connection per gateway, shared by the hub (channel topics) and the
 * ingest client (this gateway's acks). It routes each message to the one handler of its
 * topic, and reports reconnects so listeners can look for what they missed meanwhile:
 * Redis pub/sub delivers at most once and drops everything while disconnected.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';

export type TopicHandler = (message: string) => void;

export class PubSub {
  private readonly handlers = new Map<string, TopicHandler>();
  private readonly reconnectListeners: (() => void)[] = [];
  private everReady = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    redis.on('message', (topic: string, message: string) => this.route(topic, message));
    redis.on('ready', () => {
      if (this.everReady) for (const listener of this.reconnectListeners) listener();
      this.everReady = true;
    });
  }

  /** Resolves once Redis confirmed the subscription: later publishes will reach `handler`. */
  async listen(topic: string, handler: TopicHandler): Promise<void> {
    this.handlers.set(topic, handler);
    await this.redis.subscribe(topic);
  }

  async unlisten(topic: string): Promise<void> {
    this.handlers.delete(topic);
    await this.redis.unsubscribe(topic);
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
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
