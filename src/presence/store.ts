/**
 * Presence: who is subscribed to a channel, across every gateway. Kept in Redis as a HASH
 * (client id → ClientInfo JSON) beside a ZSET of expiry times. Each gateway refreshes the
 * entries of its own connections well within the TTL, so the entries of a gateway that died
 * (and can no longer remove them) expire on their own after at most `ttlMs`.
 * Reads drop expired entries first, in the same Lua call.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../channels/keys.js';

const ADD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

const REMOVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

const READ = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return redis.call('HGETALL', KEYS[1])`;

interface PresenceRedis extends Redis {
  tidingsPresenceAdd(h: string, z: string, id: string, info: string, expiresAt: number, ttlMs: number): Promise<number>;
  tidingsPresenceRemove(h: string, z: string, id: string): Promise<number>;
  tidingsPresenceRead(h: string, z: string, now: number): Promise<string[]>;
}

export interface PresenceEntry {
  client: string;
  user: string;
  conn_info?: unknown;
  chan_info?: unknown;
}

export class PresenceStore {
  private readonly redis: PresenceRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    readonly ttlMs: number,
  ) {
    if (!('tidingsPresenceAdd' in redis)) {
      redis.defineCommand('tidingsPresenceAdd', { numberOfKeys: 2, lua: ADD });
      redis.defineCommand('tidingsPresenceRemove', { numberOfKeys: 2, lua: REMOVE });
      redis.defineCommand('tidingsPresenceRead', { numberOfKeys: 2, lua: READ });
    }
    this.redis = redis as PresenceRedis;
  }

  /** Adds or refreshes one entry; `infoJson` is the ClientInfo as JSON text. */
  async add(channel: string, clientId: string, infoJson: string): Promise<void> {
    const k = this.keys;
    await this.redis.tidingsPresenceAdd(
      k.presence(channel),
      k.presenceExpiry(channel),
      clientId,
      infoJson,
      Date.now() + this.ttlMs,
      this.ttlMs * 2,
    );
  }

  async remove(channel: string, clientId: string): Promise<void> {
    await this.redis.tidingsPresenceRemove(this.keys.presence(channel), this.keys.presenceExpiry(channel), clientId);
  }

  /** client id → ClientInfo JSON text, live entries only. */
  async read(channel: string): Promise<Map<string, string>> {
    const flat = await this.redis.tidingsPresenceRead(
      this.keys.presence(channel),
      this.keys.presenceExpiry(channel),
      Date.now(),
    );
    const entries = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) entries.set(flat[i]!, flat[i + 1]!);
    return entries;
  }

  /** The `presence` result body: `{"presence":{id:ClientInfo,…}}` spliced from stored JSON. */
  async presenceJson(channel: string): Promise<string> {
    const entries = await this.read(channel);
    const parts = [...entries].map(([id, info]) => `${JSON.stringify(id)}:${info}`);
    return `{"presence":{${parts.join(',')}}}`;
  }

  async stats(channel: string): Promise<{ num_clients: number; num_users: number }> {
    const entries = await this.read(channel);
    const users = new Set<string>();
    for (const info of entries.values()) users.add(userOf(info));
    return { num_clients: entries.size, num_users: users.size };
  }
}

function userOf(infoJson: string): string {
  try {
    return String((JSON.parse(infoJson) as { user?: unknown }).user ?? '');
  } catch {
    return '';
  }
}
