/**
 * Group commit: several ingest jobs in one call of `tidings_commit_many` (migrations/0004, decided in one pass since 0005),
 * one transaction and one WAL flush for all of them. Each job is decided exactly as
 * `persistBatch` decides one (its turn in its stream, ids and keys seen before, contiguous
 * offsets per channel), so a job's outcome does not depend on which jobs shared its call.
 *
 * A job whose stream is missing an earlier job answers an `OrderGap` of its own and commits
 * nothing; the rest of the group commits. A data error (one publication PostgreSQL refuses)
 * fails the whole call: the caller then commits the jobs one by one, where the savepoint
 * path isolates the bad publication.
 */
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient, QueryArrayConfig } from 'pg';
import type { NewPublication } from '../../protocol/publication.js';
import { EPOCH_LENGTH, epochFrom, outcomeOf, type CommitRow, type PersistOutcome } from './publications.js';
import { OrderGap, type JobOrder } from './streams.js';

export interface JobToCommit {
  batch: NewPublication[];
  /** Absent for jobs of gateways that predate streams. */
  order: JobOrder | undefined;
}

/** One entry per job, in the order given: its outcome, or the gap it waits on. */
export type JobCommitResult = PersistOutcome | OrderGap;

/**
 * The call, as a named prepared statement taken straight to pg: each pooled connection parses
 * and plans it once, and rows come back as arrays. This is the hottest statement of the
 * service (one per round), and drizzle's query building plus PostgreSQL's parse and plan of it
 * on every call were a measurable part of a round's CPU (docs/benchmarks.md).
 */
const COMMIT_MANY = {
  name: 'tidings_commit_many',
  text: `select job, kind, id, channel, "offset", epoch from tidings_commit_many(
    $1::text[], $2::bigint[], $3::boolean[], $4::int[], $5::text[], $6::uuid[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])`,
  rowMode: 'array',
} as const satisfies Omit<QueryArrayConfig, 'values'>;

type CommitManyRow = [job: number, kind: CommitRow['kind'], id: string, channel: string, offset: number, epoch: string];

/** Jobs of one stream must be given in seq order (a later one would find its turn not come yet). */
export async function commitJobs(pg: Pool | PoolClient, jobs: JobToCommit[]): Promise<JobCommitResult[]> {
  const pubs = jobs.flatMap((j) => j.batch);
  const col = <K extends keyof NewPublication>(k: K) => pubs.map((p) => p[k] ?? null);
  const result = await pg.query<CommitManyRow>({
    ...COMMIT_MANY,
    values: [
      jobs.map((j) => j.order?.stream ?? null),
      jobs.map((j) => j.order?.seq ?? 0),
      jobs.map((j) => j.order?.skipGap ?? false),
      jobs.map((j) => j.batch.length),
      col('channel'),
      col('id'),
      col('data'),
      col('user'),
      col('client'),
      col('connInfo'),
      col('chanInfo'),
      col('tags'),
      col('idempotencyKey'),
      newEpochs(pubs),
    ],
  });
  const rowsByJob = jobs.map((): CommitRow[] => []);
  for (const [job, kind, id, channel, offset, epoch] of result.rows) rowsByJob[job - 1]!.push({ kind, id, channel, offset, epoch });
  return jobs.map((job, i) => {
    try {
      return outcomeOf(job.batch, rowsByJob[i]!, job.order);
    } catch (err) {
      if (err instanceof OrderGap) return err;
      throw err;
    }
  });
}

/**
 * The epoch each publication's channel gets if this call creates it: one per channel, drawn
 * from one buffer of random bytes (a channel that exists keeps its own; most do).
 */
function newEpochs(pubs: NewPublication[]): string[] {
  const index = new Map<string, number>();
  for (const p of pubs) if (!index.has(p.channel)) index.set(p.channel, index.size);
  const bytes = randomBytes(index.size * EPOCH_LENGTH);
  const epochs = Array.from({ length: index.size }, (_, i) => epochFrom(bytes, i * EPOCH_LENGTH));
  return pubs.map((p) => epochs[index.get(p.channel)!]!);
}
