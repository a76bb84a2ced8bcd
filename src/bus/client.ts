/**
 * The Redis connection as the rest of the code sees it: a single server (ioredis `Redis`) or a
 * Redis Cluster (ioredis `Cluster`), typed by what both offer. What differs between the two is
 * decided here and in src/bus/keys.ts, nowhere else:
 * - names: in cluster mode every key and topic carries a hash tag (keys.ts);
 * - pub/sub: in cluster mode sharded (SPUBLISH/SSUBSCRIBE): a message then travels only within
 *   the shard that owns its topic's slot, instead of being broadcast over the whole cluster bus;
 * - commands over several slots (an MGET of leases, a pipeline of renewals) are split per slot
 *   by their callers, as a Cluster refuses them whole.
 */
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

/** PUBLISH, or SPUBLISH to a shard channel in cluster mode (`keys.cluster`). */
export function publishTo(redis: RedisClient, sharded: boolean, topic: string, message: string): Promise<number> {
  // ioredis types SPUBLISH's reply as unknown; it is the number of receivers, as PUBLISH's.
  return sharded ? (redis.spublish(topic, message) as Promise<number>) : redis.publish(topic, message);
}
