/**
 * The persist workers as the partition leases see them (src/persist/leases.ts): each live
 * worker's heartbeat in the `workers` ZSET, the JSON it announces beside it, and the
 * partitions whose lease it holds. Read-only, for API `workers` and the admin console.
 *
 * A worker is listed while its heartbeat is younger than `staleMs` (the lease TTL: after that
 * its leases are gone too). Workers of versions before issue 16 announce no info: they are
 * listed with their id as name and no uptime.
 */
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';

export interface WorkerInfo {
  id: string;
  name: string;
  /** Seconds since the worker started; null when it did not say. */
  uptime: number | null;
  /** ms since its last heartbeat. */
  last_seen_ms: number;
  /** Partitions whose lease it holds now (what it consumes). */
  partitions: number[];
}

interface Announced {
  name?: unknown;
  started_at?: unknown;
}

export class WorkerDirectory {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly partitions: number,
    private readonly staleMs: number,
  ) {}

  async list(now = Date.now()): Promise<WorkerInfo[]> {
    const flat = await this.redis.zrangebyscore(this.keys.workers, now - this.staleMs, '+inf', 'WITHSCORES');
    const ids: string[] = [];
    const seen: number[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      ids.push(flat[i]!);
      seen.push(Number(flat[i + 1]));
    }
    if (ids.length === 0) return [];
    const [infos, owners] = await Promise.all([
      this.redis.mget(ids.map((id) => this.keys.workerInfo(id))),
      this.leaseOwners(),
    ]);
    const workers = ids.map((id, i) => describe(id, infos[i] ?? null, seen[i]!, owners, now));
    return workers.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** The owner of each partition's lease (null: none). One GET each in cluster mode, where leases live in different slots. */
  private async leaseOwners(): Promise<(string | null)[]> {
    const keys = Array.from({ length: this.partitions }, (_, p) => this.keys.lease(p));
    if (!this.keys.cluster) return this.redis.mget(keys);
    return Promise.all(keys.map((key) => this.redis.get(key)));
  }
}

function describe(
  id: string,
  json: string | null,
  seenAt: number,
  owners: (string | null)[],
  now: number,
): WorkerInfo {
  const info = parseAnnounced(json);
  const startedAt = typeof info.started_at === 'number' ? info.started_at : undefined;
  return {
    id,
    name: typeof info.name === 'string' ? info.name : id,
    uptime: startedAt === undefined ? null : Math.max(0, Math.floor((now - startedAt) / 1000)),
    last_seen_ms: Math.max(0, now - seenAt),
    partitions: owners.flatMap((owner, p) => (owner === id ? [p] : [])),
  };
}

function parseAnnounced(json: string | null): Announced {
  if (json === null) return {};
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null ? (value as Announced) : {};
  } catch {
    return {};
  }
}
