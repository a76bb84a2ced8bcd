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
import { sql } from 'drizzle-orm';
import type { NewPublication } from '../../protocol/publication.js';
import type { Db } from '../client.js';
import { newEpoch, outcomeOf, type CommitRow, type PersistOutcome } from './publications.js';
import { OrderGap, type JobOrder } from './streams.js';

export interface JobToCommit {
  batch: NewPublication[];
  /** Absent for jobs of gateways that predate streams. */
  order: JobOrder | undefined;
}

/** One entry per job, in the order given: its outcome, or the gap it waits on. */
export type JobCommitResult = PersistOutcome | OrderGap;

/** Jobs of one stream must be given in seq order (a later one would find its turn not come yet). */
export async function commitJobs(db: Db, jobs: JobToCommit[]): Promise<JobCommitResult[]> {
  const pubs = jobs.flatMap((j) => j.batch);
  const epochs = new Map(pubs.map((p) => [p.channel, '']));
  for (const name of epochs.keys()) epochs.set(name, newEpoch());
  const col = <K extends keyof NewPublication>(k: K) => sql.param(pubs.map((p) => p[k] ?? null));
  const result = await db.execute<CommitRow & { job: number }>(sql`
    select * from tidings_commit_many(
      ${sql.param(jobs.map((j) => j.order?.stream ?? null))}::text[], ${sql.param(jobs.map((j) => j.order?.seq ?? 0))}::bigint[],
      ${sql.param(jobs.map((j) => j.order?.skipGap ?? false))}::boolean[], ${sql.param(jobs.map((j) => j.batch.length))}::int[],
      ${col('channel')}::text[], ${col('id')}::uuid[], ${col('data')}::text[], ${col('user')}::text[],
      ${col('client')}::text[], ${col('connInfo')}::text[], ${col('chanInfo')}::text[], ${col('tags')}::text[],
      ${col('idempotencyKey')}::text[], ${sql.param(pubs.map((p) => epochs.get(p.channel)!))}::text[])`);
  const rowsByJob = jobs.map((): CommitRow[] => []);
  for (const row of result.rows) rowsByJob[row.job - 1]!.push(row);
  return jobs.map((job, i) => {
    try {
      return outcomeOf(job.batch, rowsByJob[i]!, job.order);
    } catch (err) {
      if (err instanceof OrderGap) return err;
      throw err;
    }
  });
}
