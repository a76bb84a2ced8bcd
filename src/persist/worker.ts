/**
 * The persist worker: consumes the partition queues it owns (./leases.ts), taking several
 * jobs of a partition at once, and commits every job it holds in one transaction per round
 * (./group.ts). Offsets are assigned under each channel's row lock and each gateway's jobs
 * commit in their order (PostgreSQL refuses any other), so the grouping changes no
 * guarantee (2 and 3).
 *
 * A round is: commit (one PostgreSQL transaction) → fan out (one Redis round). Both steps
 * retry in place on transient failures. If this process dies mid-job, BullMQ's stall check
 * puts the job back at the head of the wait list and another worker repeats it; the
 * commit step recognises publications it already stored (guarantee 5), and the fan-out
 * step is idempotent.
 *
 * Two parts: the job processor (src/persist/processor.ts: what is done with one job) and
 * the concurrency/ownership guard (src/persist/guard.ts: who may take a job, start, close).
 */
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';
import { withScripts } from '../bus/scripts.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../observability/logger.js';
import type { CachePolicy } from './fanout.js';
import type { CommitHook } from '../webhooks/publications.js';
import { GroupCommit, type GroupJob } from './group.js';
import type { PersistOutcome } from '../db/repos/publications.js';
import { guardPartitions, type PersistWorker } from './guard.js';
import { makeJobProcessor } from './processor.js';

export type { PersistWorker } from './guard.js';

/** A persist worker, and its group commit for the outbox relay (./relay.ts). */
export interface RunningPersistWorker extends PersistWorker {
  /** Commits through this worker's group commit: resolves once committed, fanned out and hooked. */
  commit(job: GroupJob): Promise<PersistOutcome>;
}

export interface PersistWorkerOptions {
  database: Database;
  /** Shared connection for commands (fan-out); BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  keys: Keys;
  partitions: number;
  cache: CachePolicy;
  hook: CommitHook;
  lockMs: number;
  log: Logger;
  /** TIDINGS_NODE_NAME, shown beside the worker's id in API `workers` and the admin console. */
  name?: string;
}

export function startPersistWorker(opts: PersistWorkerOptions): RunningPersistWorker {
  const stopping = new AbortController();
  const { database, keys, cache, hook, log } = opts;
  const redis = withScripts(opts.redis);
  const group = new GroupCommit({ database, redis, keys, cache, hook, log, signal: stopping.signal });
  const processor = makeJobProcessor({ database, group, redis, keys, cache, log, signal: stopping.signal });
  const guard = guardPartitions({
    redis: opts.redis,
    keys,
    partitions: opts.partitions,
    lockMs: opts.lockMs,
    log,
    name: opts.name,
    processor,
    stopProcessing: () => stopping.abort(),
  });
  return { ...guard, commit: (job) => group.submit(job) };
}
