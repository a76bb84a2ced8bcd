/**
 * Every Lua script Tidings runs in Redis, each with a header naming its KEYS and ARGV (as
 * BullMQ keeps its `src/commands/*.lua`). A script runs atomically, so each one is a small
 * read-modify-write that must not interleave with another client's.
 *
 * `withScripts` registers them all on a connection once (ioredis sends EVALSHA and falls
 * back to EVAL after a SCRIPT FLUSH or a restart), and types the commands it adds.
 */
import type { Redis } from 'ioredis';

/**
 * advancePosition — the cached channel position (a copy of the channels row) only moves
 * forward, so a worker repeating an old job, or a reader refilling the cache from
 * PostgreSQL, can never undo a newer position.
 *   KEYS[1]  position HASH { e: epoch, t: top offset }
 *   ARGV[1]  epoch   ARGV[2]  top offset   ARGV[3]  TTL in seconds (refreshed either way)
 */
const ADVANCE_POSITION = `
local top = tonumber(redis.call('HGET', KEYS[1], 't') or '-1')
if top < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'e', ARGV[1], 't', ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

/**
 * presenceAdd — adds or refreshes one presence entry and its expiry.
 *   KEYS[1]  presence HASH client id → ClientInfo JSON   KEYS[2]  expiry ZSET client id → ms
 *   ARGV[1]  client id   ARGV[2]  ClientInfo JSON   ARGV[3]  expires at (ms)   ARGV[4]  key TTL (ms)
 */
const PRESENCE_ADD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/**
 * presenceRemove — removes one presence entry.
 *   KEYS[1]  presence HASH   KEYS[2]  expiry ZSET   ARGV[1]  client id
 */
const PRESENCE_REMOVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

/**
 * presenceRead — drops expired entries (a dead gateway's), then returns the rest.
 *   KEYS[1]  presence HASH   KEYS[2]  expiry ZSET   ARGV[1]  now (ms)
 *   returns  HGETALL of the hash: [client id, ClientInfo JSON, …]
 */
const PRESENCE_READ = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return redis.call('HGETALL', KEYS[1])`;

/**
 * leaseClaim — takes a free lease or renews one's own; never takes another's.
 *   KEYS[1]  lease STRING (owner id)   ARGV[1]  owner id   ARGV[2]  TTL (ms)
 *   returns  1 when the caller holds the lease for TTL from now, else 0
 */
const LEASE_CLAIM = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * leaseRelease — gives up a lease, only if the caller still holds it.
 *   KEYS[1]  lease STRING   ARGV[1]  owner id
 */
const LEASE_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * takeOver — a partition was just taken over. Every job still active in its BullMQ queue
 * belongs to the owner that lost it (dead or frozen): their locks are dropped and they are
 * marked stalled, and the stall check's throttle is cleared, so that BullMQ's own stall
 * check, run next, moves them back to the head of the wait list now instead of after their
 * locks expire. And the queue's marker is set: the last owner may have popped it (its
 * blocking read answered just before it died), and without it a resumed worker would wait
 * out its blocking read before looking at the jobs already waiting.
 *   KEYS[1]  active LIST   KEYS[2]  stalled SET   KEYS[3]  stalled-check STRING
 *   KEYS[4]  marker ZSET
 *   ARGV[1]  the queue's job key prefix (a job's lock is <prefix><id>:lock)
 *   returns  how many active jobs were orphaned
 */
const TAKE_OVER = `
local active = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(active) do
  redis.call('DEL', ARGV[1] .. id .. ':lock')
  redis.call('SADD', KEYS[2], id)
end
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[4], 0, '0')
return #active`;

const SCRIPTS = {
  tidingsAdvancePosition: { numberOfKeys: 1, lua: ADVANCE_POSITION },
  tidingsPresenceAdd: { numberOfKeys: 2, lua: PRESENCE_ADD },
  tidingsPresenceRemove: { numberOfKeys: 2, lua: PRESENCE_REMOVE },
  tidingsPresenceRead: { numberOfKeys: 2, lua: PRESENCE_READ },
  tidingsLeaseClaim: { numberOfKeys: 1, lua: LEASE_CLAIM },
  tidingsLeaseRelease: { numberOfKeys: 1, lua: LEASE_RELEASE },
  tidingsTakeOver: { numberOfKeys: 4, lua: TAKE_OVER },
} as const;

/** A connection with the scripts registered (also usable on its pipelines). */
export interface ScriptedRedis extends Redis {
  tidingsAdvancePosition(key: string, epoch: string, top: number, ttlS: number): Promise<number>;
  tidingsPresenceAdd(h: string, z: string, id: string, info: string, expiresAt: number, ttlMs: number): Promise<number>;
  tidingsPresenceRemove(h: string, z: string, id: string): Promise<number>;
  tidingsPresenceRead(h: string, z: string, now: number): Promise<string[]>;
  tidingsLeaseClaim(key: string, owner: string, ttlMs: number): Promise<number>;
  tidingsLeaseRelease(key: string, owner: string): Promise<number>;
  tidingsTakeOver(active: string, stalled: string, stalledCheck: string, marker: string, jobKeyPrefix: string): Promise<number>;
}

export function withScripts(redis: Redis): ScriptedRedis {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, script);
  }
  return redis as ScriptedRedis;
}
