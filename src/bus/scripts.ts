/**
 * Every Lua script Tidings runs in Redis, each with a header naming its KEYS and ARGV (as
 * BullMQ keeps its `src/commands/*.lua`). A script runs atomically, so each one is a small
 * read-modify-write that must not interleave with another client's.
 *
 * `withScripts` registers them all on a connection once (ioredis sends EVALSHA and falls
 * back to EVAL after a SCRIPT FLUSH or a restart), and types the commands it adds.
 */
import type { RedisClient } from './client.js';

/**
 * advancePosition — the cached channel position (a copy of the channels row) only moves
 * forward, so a worker repeating an old job, or a reader refilling the cache from
 * PostgreSQL, can never undo a newer position.
 *   KEYS[1]  position HASH { e: epoch, t: top offset }
 *   ARGV[1]  epoch   ARGV[2]  top offset   ARGV[3]  TTL in seconds (refreshed either way)
 */
const ADVANCE_FUNCTION = `
local function advance(key, epoch, top, ttl)
  local cached = tonumber(redis.call('HGET', key, 't') or '-1')
  if cached < tonumber(top) then redis.call('HSET', key, 'e', epoch, 't', top) end
  redis.call('EXPIRE', key, ttl)
end`;
const ADVANCE_POSITION = `${ADVANCE_FUNCTION}
advance(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1`;

/**
 * fanout — a group commit's Redis work for a set of channels, in one call (src/persist/fanout.ts):
 * per channel, append to its history cache (trimmed to its size, TTL refreshed), move its
 * position forward (as advancePosition) and PUBLISH the topic message (src/bus/topic.ts
 * format, built here so each publication's JSON crosses the wire once); then PUBLISH the
 * acks. One script instead of five commands per channel: the per-command cost on both
 * sides, not the bytes, was most of a round's Redis time.
 *   KEYS     per channel: its history ZSET, then its position HASH
 *   ARGV[1]  commit time (ms)   ARGV[2]  number of channels
 *   then per channel: topic, epoch, top offset, TTL (s), cache size (0: no cache),
 *     publication count n, then n × (offset, publication JSON), offsets ascending
 *   then any number of (ack topic, ack message) pairs
 */
const FANOUT = `${ADVANCE_FUNCTION}
local committed_at = ARGV[1]
local a = 3
for c = 1, tonumber(ARGV[2]) do
  local history, position = KEYS[2 * c - 1], KEYS[2 * c]
  local topic, epoch, top, ttl = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local size, n = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  local lines, members = { epoch .. ' ' .. committed_at }, {}
  for i = 1, n do
    lines[i + 1] = ARGV[a] .. ' ' .. ARGV[a + 1]
    if size > 0 then
      members[#members + 1] = ARGV[a]
      members[#members + 1] = ARGV[a + 1]
      -- unpack() is bounded by Lua's C stack (~8000 values)
      if #members >= 1000 then
        redis.call('ZADD', history, unpack(members))
        members = {}
      end
    end
    a = a + 2
  end
  if size > 0 then
    if #members > 0 then redis.call('ZADD', history, unpack(members)) end
    redis.call('ZREMRANGEBYRANK', history, 0, -(size + 1))
    redis.call('EXPIRE', history, ttl)
  end
  advance(position, epoch, top, ttl)
  redis.call('PUBLISH', topic, table.concat(lines, '\\n'))
end
while a < #ARGV do
  redis.call('PUBLISH', ARGV[a], ARGV[a + 1])
  a = a + 2
end
return 1`;

/**
 * fanoutSharded — fanout for Redis Cluster mode: the same, with SPUBLISH, since a script may
 * only reach its own slot, and every topic and ack topic of one call carries the tag of the
 * partition whose keys it touches (src/bus/keys.ts). The caller passes one more key after the
 * channels' keys, in that slot, so a call that only acknowledges still goes to its node.
 */
const FANOUT_SHARDED = FANOUT.replaceAll("redis.call('PUBLISH'", "redis.call('SPUBLISH'");

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

/**
 * webhookTake — a worker takes the live-connection hash of a gateway the registry no longer
 * lists (src/webhooks/reaper.ts): read and delete in one step, so of several workers that
 * found the same dead gateway exactly one gets its clients and sends their disconnects.
 *   KEYS[1]  the gateway's HASH clientId → user   KEYS[2]  the SET of gateway uids
 *   ARGV[1]  the gateway uid
 *   returns  the hash as a flat [client, user, …] list (empty for the others)
 */
const WEBHOOK_TAKE = `
local entries = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return entries`;

const SCRIPTS = {
  tidingsAdvancePosition: { numberOfKeys: 1, lua: ADVANCE_POSITION },
  // KEYS vary with the channel count: the caller passes numkeys first.
  tidingsFanout: { lua: FANOUT },
  tidingsFanoutSharded: { lua: FANOUT_SHARDED },
  tidingsPresenceAdd: { numberOfKeys: 2, lua: PRESENCE_ADD },
  tidingsPresenceRemove: { numberOfKeys: 2, lua: PRESENCE_REMOVE },
  tidingsPresenceRead: { numberOfKeys: 2, lua: PRESENCE_READ },
  tidingsLeaseClaim: { numberOfKeys: 1, lua: LEASE_CLAIM },
  tidingsLeaseRelease: { numberOfKeys: 1, lua: LEASE_RELEASE },
  tidingsTakeOver: { numberOfKeys: 4, lua: TAKE_OVER },
  tidingsWebhookTake: { numberOfKeys: 2, lua: WEBHOOK_TAKE },
} as const;

/** The commands `withScripts` adds (also on pipelines). */
export interface ScriptCommands {
  tidingsAdvancePosition(key: string, epoch: string, top: number, ttlS: number): Promise<number>;
  tidingsFanout(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  tidingsFanoutSharded(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  tidingsPresenceAdd(h: string, z: string, id: string, info: string, expiresAt: number, ttlMs: number): Promise<number>;
  tidingsPresenceRemove(h: string, z: string, id: string): Promise<number>;
  tidingsPresenceRead(h: string, z: string, now: number): Promise<string[]>;
  tidingsLeaseClaim(key: string, owner: string, ttlMs: number): Promise<number>;
  tidingsLeaseRelease(key: string, owner: string): Promise<number>;
  tidingsTakeOver(active: string, stalled: string, stalledCheck: string, marker: string, jobKeyPrefix: string): Promise<number>;
  tidingsWebhookTake(connections: string, gateways: string, gatewayUid: string): Promise<string[]>;
}

/** A connection with the scripts registered. */
export type ScriptedRedis = RedisClient & ScriptCommands;

export function withScripts(redis: RedisClient): ScriptedRedis {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, script);
  }
  return redis as ScriptedRedis;
}
