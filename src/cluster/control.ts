/**
 * Cluster commands: the API's `unsubscribe`, `disconnect`, `subscribe` and `refresh` must reach a
 * user's connections on whichever gateway holds them, and no gateway knows where they are.
 * So every gateway listens to one control topic on Redis pub/sub, and `send` does two things:
 *
 *   1. applies the command to this gateway's own connections, before it returns, so an API
 *      caller connected here sees the effect by the time it has the reply;
 *   2. PUBLISHes it on the control topic; every other gateway applies it when it arrives
 *      (a gateway skips its own echo by uid).
 *
 * Delivery to the other gateways is at most once, like all Redis pub/sub: a gateway that
 * is disconnected from Redis at that moment misses the command, and a connection that is
 * still connecting when it arrives is not matched. The reply means "sent to every gateway
 * that was listening", as in Centrifugo (its control messages go through the same broker).
 */
import { publishTo, type RedisClient } from '../bus/client.js';
import { z } from 'zod';
import type { PubSub } from '../bus/pubsub.js';
import type { Logger } from '../observability/logger.js';

const optionalClient = z.string().min(1).optional();

const commandSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('unsubscribe'), channel: z.string().min(1), user: z.string(), client: optionalClient }),
  z.object({
    op: z.literal('disconnect'),
    user: z.string(),
    client: optionalClient,
    whitelist: z.array(z.string()).optional(),
    code: z.number().int(),
    reason: z.string(),
  }),
  z.object({
    op: z.literal('subscribe'),
    channel: z.string().min(1),
    user: z.string(),
    client: optionalClient,
    /** API subscribe's options (src/api/users.ts checked them); JSON text where they are JSON. */
    options: z
      .object({
        infoJson: z.string().optional(),
        dataJson: z.string().optional(),
        recoverSince: z.object({ offset: z.number().int().min(0), epoch: z.string() }).optional(),
        expiresAt: z.number().int().optional(),
        presence: z.boolean().optional(),
        joinLeave: z.boolean().optional(),
        forceRecovery: z.boolean().optional(),
      })
      .optional(),
  }),
  z.object({
    op: z.literal('message'),
    user: z.string(),
    client: optionalClient,
    /** A connection that is not to get it (the one whose action it reports). */
    except: z.string().optional(),
    dataJson: z.string(),
  }),
  z.object({
    op: z.literal('refresh'),
    user: z.string(),
    client: optionalClient,
    expired: z.boolean(),
    expiresAt: z.number().int().optional(),
    infoJson: z.string().optional(),
  }),
]);

/** A command for the connections of `user` (only the one with id `client`, when set). */
export type ControlCommand = z.infer<typeof commandSchema>;

const messageSchema = z.object({ from: z.string(), cmd: commandSchema });

/** Applies a command to this gateway's connections; must not throw. */
export type ApplyLocally = (cmd: ControlCommand) => Promise<void>;

export class ControlBus {
  constructor(
    private readonly pubsub: PubSub,
    private readonly redis: RedisClient,
    private readonly topic: string,
    private readonly uid: string,
    private readonly apply: ApplyLocally,
    private readonly log: Logger,
    /** Redis Cluster: the topic is a shard channel (SPUBLISH), with a hash tag of its own. */
    private readonly sharded = false,
  ) {}

  /** Resolves once this gateway hears the topic: commands sent after that reach it. */
  async start(): Promise<void> {
    await this.pubsub.listen(this.topic, (message) => this.onMessage(message));
  }

  /** Applies here, then tells every other gateway. Rejects when Redis did not take the PUBLISH. */
  async send(cmd: ControlCommand): Promise<void> {
    await this.apply(cmd);
    await publishTo(this.redis, this.sharded, this.topic, JSON.stringify({ from: this.uid, cmd }));
  }

  async close(): Promise<void> {
    await this.pubsub.unlisten(this.topic).catch((err: unknown) => this.log.debug({ err }, 'control topic unlisten failed'));
  }

  private onMessage(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      parsed = undefined;
    }
    const result = messageSchema.safeParse(parsed);
    if (!result.success) {
      this.log.warn({ message: message.slice(0, 200) }, 'ignoring malformed control message');
      return;
    }
    if (result.data.from === this.uid) return;
    this.apply(result.data.cmd).catch((err: unknown) => this.log.error({ err, op: result.data.cmd.op }, 'control command failed'));
  }
}
