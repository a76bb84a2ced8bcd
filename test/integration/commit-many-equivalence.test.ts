/**
 * `tidings_commit_many` decides a whole group in one pass (migrations/0005). Its contract is
 * that every job's outcome is what `tidings_commit` (migrations/0002, one call per job, in
 * order) would give. This checks that on random groups that mix what a round can hold: several
 * streams and a stream-less job, jobs of one stream back to back, gaps and skips, a job
 * repeated within the group or from an earlier group, idempotency keys reused within a group
 * and across groups, several jobs on one channel.
 *
 * Each scenario runs twice on real PostgreSQL, under two name prefixes: as one group through
 * `commitJobs`, and job by job through `persistBatch`. The outcomes must be equal once
 * the prefixes and the publication ids are mapped back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { commitJobs, type JobCommitResult } from '../../src/db/repos/commit-many.js';
import { persistBatch } from '../../src/db/repos/publications.js';
import { OrderGap, type JobOrder } from '../../src/db/repos/streams.js';
import type { NewPublication } from '../../src/protocol/publication.js';
import { TestStack } from '../helpers/stack.js';

/** A small deterministic generator, so a failing scenario can be replayed from its seed. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

interface LogicalPub {
  ref: number;
  channel: number;
  key?: number;
}

interface LogicalJob {
  stream?: number;
  seq: number;
  skip: boolean;
  pubs: LogicalPub[];
}

/** Groups of jobs, each group committed in turn; refs repeat when a job is repeated. */
function scenario(seed: number): LogicalJob[][] {
  const pick = random(seed);
  const next = [0, 1, 1];
  let ref = 0;
  const earlier: LogicalJob[] = [];
  const groups: LogicalJob[][] = [];
  for (let g = 0; g < 3; g++) {
    const group: LogicalJob[] = [];
    for (let j = 0, n = 2 + pick(6); j < n; j++) {
      const roll = pick(10);
      if (roll === 0 && (earlier.length > 0 || group.length > 0)) {
        const pool = [...earlier, ...group];
        group.push(pool[pick(pool.length)]!); // a repeat: same stream, seq and ids
        continue;
      }
      const stream = pick(4) === 0 ? undefined : 1 + pick(2);
      const job: LogicalJob = { stream, seq: 0, skip: false, pubs: [] };
      if (stream !== undefined) {
        const gap = pick(8) === 0; // the next seq is lost: this one waits, or skips
        job.seq = next[stream]! + (gap ? 1 : 0);
        job.skip = gap && pick(2) === 0;
        if (!gap || job.skip) next[stream] = job.seq + 1;
      }
      for (let i = 0, m = 1 + pick(4); i < m; i++) {
        job.pubs.push({ ref: ref++, channel: pick(3), ...(pick(3) === 0 ? { key: pick(3) } : {}) });
      }
      group.push(job);
    }
    earlier.push(...group);
    groups.push(group);
  }
  return groups;
}

/** The scenario under one prefix: real names, ids and orders; and the way back to refs. */
function materialize(prefix: string, groups: LogicalJob[][]) {
  const ids = new Map<number, string>();
  const refOf = new Map<string, number>();
  const idOf = (ref: number) => {
    if (!ids.has(ref)) {
      const id = randomUUID();
      ids.set(ref, id);
      refOf.set(id, ref);
    }
    return ids.get(ref)!;
  };
  const jobs = groups.map((group) =>
    group.map((job) => {
      const batch: NewPublication[] = job.pubs.map((p) => ({
        id: idOf(p.ref),
        channel: `${prefix}:c${p.channel}`,
        data: `{"ref":${p.ref}}`,
        ...(p.key !== undefined ? { idempotencyKey: `k${p.key}` } : {}),
      }));
      const order: JobOrder | undefined = job.stream === undefined ? undefined : { stream: `${prefix}/s${job.stream}`, seq: job.seq, skipGap: job.skip };
      return { batch, order };
    }),
  );
  /** An outcome with names and ids replaced by what they stand for, in a stable order. */
  const normalize = (result: JobCommitResult) => {
    if (result instanceof OrderGap) return { gap: true };
    const local = (name: string) => name.slice(prefix.length);
    return {
      results: result.results.map((r) => [refOf.get(r.id), local(r.channel), r.offset, r.fresh]),
      stored: result.stored.map((p) => [refOf.get(p.id), local(p.channel), p.offset]),
      rejected: result.rejected.map((r) => [refOf.get(r.id), r.why]).sort(),
      tops: [...result.tops].map(([name, pos]) => [local(name), pos.top]).sort(),
    };
  };
  return { jobs, normalize };
}

describe('tidings_commit_many decides as tidings_commit, job by job, would', () => {
  const stack = new TestStack();
  let database: Database;

  beforeAll(() => {
    database = openDatabase(stack.databaseUrl);
  });
  afterAll(async () => {
    await database?.close();
    await stack.close();
  });

  it('on 40 random scenarios of three groups each', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const groups = scenario(seed);
      const run = randomUUID().slice(0, 8);
      const together = materialize(`g${run}`, groups);
      const alone = materialize(`a${run}`, groups);
      for (let g = 0; g < groups.length; g++) {
        const grouped = await commitJobs(database.pool, together.jobs[g]!);
        const oneByOne: JobCommitResult[] = [];
        for (const job of alone.jobs[g]!) {
          oneByOne.push(await persistBatch(database.db, job.batch, job.order).catch((err: unknown) => {
            if (err instanceof OrderGap) return err;
            throw err;
          }));
        }
        expect(grouped.map(together.normalize), `seed ${seed}, group ${g + 1}`).toEqual(oneByOne.map(alone.normalize));
      }
    }
  });
});
