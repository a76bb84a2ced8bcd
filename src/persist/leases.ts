/**
 * Partition ownership. Each worker process owns a fair share of the partitions (⌈P / live
 * workers⌉) through short leases in Redis, and runs the BullMQ consumer of a partition
 * only while it holds its lease. So two workers never race for the jobs of one partition
 * (each job used to wake every worker, and all but one found the partition busy), and a
 * worker that dies loses its partitions when its leases expire (`ttlMs`), not when a
 * 30-second job lock does.
 *
 * A lease is a hint of who should work, never what keeps order: PostgreSQL commits each
 * gateway's jobs in their order (src/db/repos/streams.ts), and BullMQ's global concurrency
 * bounds the active jobs of a partition across processes. A worker that froze past its
 * lease and wakes up may finish the jobs it held; the order check makes that harmless.
 *
 * Every `ttlMs / 4` a worker announces itself (a ZSET of heartbeats), renews its leases,
 * releases what is over its share (after the partition's current job finishes), and takes
 * free partitions up to its share, starting at an offset of its own so that workers
 * starting together spread out.
 */
import { createHash } from 'node:crypto';
import type { Keys } from '../bus/keys.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import type { Logger } from '../observability/logger.js';

/** What the guard does when a partition is won or lost. */
export interface PartitionSwitch {
  start(partition: number): Promise<void>;
  /** `drain`: let the current job finish first (a release); otherwise stop taking jobs at once (lost). */
  stop(partition: number, drain: boolean): Promise<void>;
}

export interface LeaseOptions {
  redis: ScriptedRedis;
  keys: Keys;
  partitions: number;
  ttlMs: number;
  workerId: string;
  /** Node name, announced with the heartbeat for API `workers` (src/cluster/workers.ts). */
  name?: string | undefined;
  log: Logger;
}

export class PartitionLeases {
  private readonly owned = new Set<number>();
  /** Being handed back: still renewed until the current job finished, then released. */
  private readonly draining = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private closed = false;
  /** The last live count, and when Redis was seen to have lost it (see `announce`). */
  private seen: { live: number; resetAt?: number } = { live: 0 };
  private readonly startedAt = Date.now();

  constructor(
    private readonly opts: LeaseOptions,
    private readonly partitions: PartitionSwitch,
  ) {}

  /** Takes a first share at once, then keeps balancing in the background. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.tick()).catch((err: unknown) => this.opts.log.warn({ err }, 'partition lease round failed'));
    }, Math.max(100, Math.floor(this.opts.ttlMs / 4)));
    this.timer.unref();
  }

  get ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** Stops every partition (letting current jobs finish), then gives the leases back at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.ticking.catch(() => {});
    const owned = this.ownedPartitions;
    await Promise.all(owned.map((p) => withinMs(this.partitions.stop(p, true), this.opts.ttlMs)));
    const { redis, keys, workerId } = this.opts;
    await Promise.all(owned.map((p) => redis.tidingsLeaseRelease(keys.lease(p), workerId).catch(() => 0)));
    await redis.zrem(keys.workers, workerId).catch(() => 0);
    await redis.del(keys.workerInfo(workerId)).catch(() => 0);
    this.owned.clear();
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    const share = Math.ceil(this.opts.partitions / (await this.announce()));
    await this.renew();
    await this.shed(share);
    await this.take(share);
  }

  /**
   * Heartbeat; answers how many workers are alive (this one included). When this worker's
   * own entry was gone, Redis lost its data (restart, FLUSHALL) and the others have not
   * announced themselves again yet: the count seen before stands for two lease periods, or
   * the first worker to look would take every partition and the rest would lose theirs.
   */
  private async announce(): Promise<number> {
    const { redis, keys, workerId, ttlMs } = this.opts;
    const now = Date.now();
    const results = await redis
      .pipeline()
      .zadd(keys.workers, now, workerId)
      // Who this is, for API `workers`; expires with the heartbeat it comes with.
      .set(keys.workerInfo(workerId), this.infoJson(), 'PX', ttlMs)
      // A worker silent for a whole lease period is gone: its leases have expired too, and the
      // others' shares must grow now for them to take its partitions.
      .zremrangebyscore(keys.workers, '-inf', now - ttlMs)
      .zcard(keys.workers)
      .exec();
    const wasMissing = Number(results?.[0]?.[1] ?? 0) === 1;
    const live = Math.max(1, Number(results?.[3]?.[1] ?? 1));
    if (wasMissing && this.seen.live > live) this.seen.resetAt ??= now;
    if (this.seen.resetAt !== undefined && now - this.seen.resetAt < 2 * ttlMs) return this.seen.live;
    this.seen = { live };
    return live;
  }

  private infoJson(): string {
    return JSON.stringify({ name: this.opts.name ?? this.opts.workerId, started_at: this.startedAt, partitions: this.ownedPartitions });
  }

  /** One round trip for every lease held, every ttl/4 (one each made the idle cost grow with the partition count). */
  private async renew(): Promise<void> {
    const { redis, keys, workerId, ttlMs } = this.opts;
    const held = [...this.ownedPartitions, ...this.draining];
    if (held.length === 0) return;
    const replies = await claimAll(redis, held.map((partition) => keys.lease(partition)), workerId, ttlMs, keys.cluster);
    for (const [i, partition] of held.entries()) {
      const [err, claimed] = replies[i] ?? [new Error('no reply to a lease renewal'), 0];
      if (err) throw err;
      if (claimed === 1) continue;
      // Someone else holds it: this process froze past its lease. Stop taking its jobs now.
      if (!this.owned.delete(partition)) continue;
      this.opts.log.warn({ partition }, 'lost a partition lease');
      await this.partitions.stop(partition, false);
    }
  }

  /**
   * Over the fair share (a worker joined): hand back the highest partitions. Each is released
   * once its current job finished, in the background: a job retrying in place must not hold
   * up the renewal of the other leases.
   */
  private async shed(share: number): Promise<void> {
    for (const partition of this.ownedPartitions.slice(share)) {
      this.owned.delete(partition);
      this.draining.add(partition);
      this.opts.log.info({ partition, share }, 'handing a partition back (over this worker’s share)');
      // Bounded: a job that cannot finish (its Redis record lost, a store away) must not keep
      // the partition from its new owner; BullMQ's global concurrency and PostgreSQL's job
      // order keep an overlap harmless.
      void withinMs(this.partitions.stop(partition, true), this.opts.ttlMs)
        .then(() => this.opts.redis.tidingsLeaseRelease(this.opts.keys.lease(partition), this.opts.workerId))
        .catch((err: unknown) => this.opts.log.warn({ err, partition }, 'could not hand a partition back'))
        .finally(() => this.draining.delete(partition));
    }
  }

  private async take(share: number): Promise<void> {
    const { redis, keys, workerId, ttlMs, partitions } = this.opts;
    const offset = firstChoice(workerId, partitions);
    for (let i = 0; i < partitions && this.owned.size < share && !this.closed; i++) {
      const partition = (offset + i) % partitions;
      if (this.owned.has(partition) || this.draining.has(partition)) continue;
      if ((await redis.tidingsLeaseClaim(keys.lease(partition), workerId, ttlMs)) !== 1) continue;
      this.owned.add(partition);
      this.opts.log.info({ partition, share }, 'took a partition');
      await this.partitions.start(partition);
    }
  }
}

/**
 * [error, reply] of a lease claim for each key. One pipeline on a single Redis; on a cluster,
 * where each lease is in its partition's slot and a pipeline must stay on one, the claims are
 * sent at once as separate calls (ioredis writes each to its master without waiting).
 */
async function claimAll(redis: ScriptedRedis, leases: string[], owner: string, ttlMs: number, cluster: boolean): Promise<[Error | null, unknown][]> {
  if (cluster) {
    const settled = await Promise.allSettled(leases.map((key) => redis.tidingsLeaseClaim(key, owner, ttlMs)));
    return settled.map((r): [Error | null, unknown] => (r.status === 'fulfilled' ? [null, r.value] : [r.reason as Error, 0]));
  }
  const pipeline = redis.pipeline() as unknown as ScriptedRedis & { exec(): Promise<[Error | null, unknown][] | null> };
  for (const key of leases) pipeline.tidingsLeaseClaim(key, owner, ttlMs);
  return (await pipeline.exec()) ?? [];
}

/** Resolves when `work` does or after `ms`, whichever comes first (never rejects). */
export function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void work.catch(() => {}).finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Where a worker starts looking for free partitions: spread by its id. */
function firstChoice(workerId: string, partitions: number): number {
  return createHash('sha1').update(workerId).digest().readUInt32BE(0) % partitions;
}
