/**
 * Presence: who is subscribed to a channel, across every gateway. Kept in Redis as a HASH
 * (client id → ClientInfo JSON) beside a ZSET of expiry times. Each gateway refreshes the
 * entries of its own connections well within the TTL, so the entries of a gateway that died
 * (and can no longer remove them) expire on their own after at most `ttlMs`.
 * Reads drop expired entries first, in the same Lua call (src/bus/scripts.ts).
 */
import type { RedisClient } from '../bus/client.js';
import { withScripts, type ScriptedRedis } from '../bus/scripts.js';
import type { Keys } from '../bus/keys.js';

export interface PresenceEntry {
  client: string;
  user: string;
  conn_info?: unknown;
  chan_info?: unknown;
}

export class PresenceStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    readonly ttlMs: number,
  ) {
    this.redis = withScripts(redis);
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
