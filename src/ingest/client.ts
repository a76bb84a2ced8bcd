/**
 * The gateway side of ingest: hands publications to the partition queues and resolves each
 * one when a worker acknowledges its commit (guarantee 1: no success reply before commit).
 *
 * Batching adapts to load: a partition with fewer than `inflightJobs` jobs awaiting their
 * acks sends a publication at once, as a job of one; a busier partition gathers what
 * arrives meanwhile into the next job (up to `batchMax` publications or `BATCH_MAX_BYTES`).
 * Jobs of one partition are added strictly one after another, so the queue order is the
 * order in which this gateway accepted the publications (guarantee 3).
 *
 * Partitions whose owner is known (./owners.ts) share one BullMQ job, a bundle (./job.ts):
 * each batch keeps its own slot, stream and seq, so everything below holds per partition as
 * before, while BullMQ's cost is paid once per bundle. A bundle holds one owner's partitions
 * only, so a channel's commits stay with one worker. The gateway as a whole has
 * `inflightJobs` slots for these jobs, and the owners take them in turn: while a bundle is
 * out, every partition gathers what arrives, and each owner's next bundle carries it all
 * (an owner with much waiting gets a job of its own meanwhile, and so do the others once a
 * job has been out too long: see `pump`).
 *
 * Every reply is definitive (guarantee 1, issue 12): success means committed, an error means
 * never committed. A publication not acknowledged within `publishTimeoutMs` is answered
 * then: one still waiting here was never sent and can never commit (error); one whose job
 * was sent is answered with what PostgreSQL decides for the job (./decide.ts: committed, or
 * cancelled for good). After the ack topic reconnects, jobs in flight are looked up in
 * PostgreSQL, since their acks may have been dropped meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { RedisClient } from '../bus/client.js';
import { decodeAcks, type Ack } from './acks.js';
import { Decider, type SentJob } from './decide.js';
import type { Found, JobOutcomes } from './outcomes.js';
import { partitionOf, partitionQueueName, type Keys } from '../bus/keys.js';
import type { PubSub } from '../bus/pubsub.js';
import type { NewPublication } from '../protocol/publication.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { errorByCode, Errors, ProtocolError } from '../protocol/codes.js';
import {
  HISTORY_REMOVE_JOB_NAME,
  INGEST_BUNDLE_JOB_NAME,
  INGEST_JOB_NAME,
  jobStream,
  type BundlePart,
  type HistoryRemoveJob,
  type IngestBundle,
  type IngestJob,
  type Sequenced,
} from './job.js';
import { PartitionOwners } from './owners.js';
import { LatencyWindow, type LatencySummary } from './latency.js';
import { failedJobs, queueCounts, type FailedJob, type QueueCounts } from './stats.js';

/** BullMQ keeps job data in one Redis string; keep jobs well below what hurts Redis latency. */
const BATCH_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Publications waiting for one owner's partitions that earn it a job of its own while the
 * gateway's slots are taken (see `pump`). A job costs its worker, Redis and PostgreSQL about
 * as much as a few dozen publications do (docs/benchmarks.md), so one this large pays it
 * many times over.
 */
const OWN_SLOT_PUBLICATIONS = 256;

/**
 * How long a job holds one of the gateway's slots (see `pump`). Jobs are answered within a
 * few tens of ms when their worker is alive; one out longer than this keeps only its owner's
 * slot, so a worker that dies holds up only its own partitions until the takeover.
 */
const SLOT_PATIENCE_MS = 250;

/** One partition as API `queue_stats` shows it. */
export interface PartitionStats extends QueueCounts {
  partition: number;
  /** Recent publish→commit times of this gateway's publications to the partition. */
  latency: LatencySummary;
}

export interface Committed {
  offset: number;
  epoch: string;
}

export interface IngestSettings {
  partitions: number;
  batchMax: number;
  inflightJobs: number;
  publishTimeoutMs: number;
  /**
   * Publications allowed to wait per partition (not yet sent as a job) before a publish is
   * refused with 111: the last resort, for the HTTP API. Client publishes are flow-controlled
   * instead (./flow.ts): they wait for room well below this, and are never refused by it.
   */
  backlogMax: number;
}

interface Entry {
  pub: NewPublication;
  bytes: number;
  resolve(result: Committed): void;
  reject(err: Error): void;
  settled: boolean;
  onSettled?: () => void;
  /** performance.now() when accepted, for the publish→commit histogram. */
  startedAt: number;
  /** A history removal (`pub` carries only id and channel): a job of its own kind, alone. */
  remove?: true;
  /** The job it went out in; absent while it waits here (then it can still be dropped). */
  job?: SentJob<Entry>;
}

interface Partition {
  index: number;
  queue: Queue;
  waiting: Entry[];
  inflight: number;
  /** The previous add; the next one starts after it, to keep queue order = accept order. */
  tail: Promise<unknown>;
  /** Number of the next job added to this partition: PostgreSQL commits them in this order. */
  nextSeq: number;
  /** An add failed (its job may or may not exist): the next job need not wait for it. */
  lostAdd: boolean;
  /** This gateway's stream on this partition (`ingest_streams`). */
  stream: string;
  /** Jobs sent with publications not answered yet, oldest first. */
  open: SentJob<Entry>[];
}

/** A partition's batch on its way into a job. */
interface BundlePartToSend {
  partition: Partition;
  batch: Entry[];
}

/** Batches of one owner's partitions gathered into one job, and their size. */
interface Bundle {
  parts: BundlePartToSend[];
  bytes: number;
}

export class IngestClient {
  readonly gatewayId = `gw-${randomUUID()}`;
  private readonly partitions: Partition[];
  private readonly byId = new Map<string, Entry>();
  private readonly expiry: NodeJS.Timeout;
  private readonly stopping = new AbortController();
  private readonly decider: Decider<Entry>;
  /** One topic; in Redis Cluster mode one per partition (src/bus/keys.ts `ackTopic`). */
  private readonly ackTopics: string[];
  private readonly owners: PartitionOwners;
  /**
   * Jobs out of partitions with known owners (bundles, or a batch alone), each until all its
   * batches are answered: when each was sent (the gateway's slots), and how many per owner.
   */
  private readonly slotsTaken = new Set<{ sentAt: number }>();
  private readonly ownerInflight = new Map<string, number>();
  /** When each owner was last sent a job (in `bundlesSent`), so that they take turns. */
  private readonly lastSentTo = new Map<string, number>();
  private pumpScheduled = false;
  private bundlesSent = 0;
  private readonly latency: LatencyWindow;
  private closed = false;

  constructor(
    redis: RedisClient,
    private readonly pubsub: PubSub,
    private readonly keys: Keys,
    private readonly settings: IngestSettings,
    private readonly log: Logger,
    /** PostgreSQL's word on jobs whose acks did not come (./outcomes.ts). */
    outcomes: JobOutcomes,
  ) {
    this.ackTopics = keys.ackTopics(this.gatewayId);
    this.latency = new LatencyWindow(settings.partitions);
    this.owners = new PartitionOwners(redis, keys, settings.partitions, log);
    this.decider = new Decider<Entry>(outcomes, (entry, found) => this.answerDecided(entry, found), log, this.stopping.signal);
    this.partitions = Array.from({ length: settings.partitions }, (_, i) => ({
      index: i,
      queue: new Queue(partitionQueueName(i), {
        connection: redis,
        prefix: keys.queuePrefixOf(i),
        defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 10_000 }, attempts: 1 },
      }),
      waiting: [],
      inflight: 0,
      tail: Promise.resolve(),
      nextSeq: 1,
      lostAdd: false,
      stream: jobStream(this.gatewayId, partitionQueueName(i)),
      open: [],
    }));
    // Without a listener BullMQ prints connection errors to stderr, outside our logs; the
    // redis connection's own listener already reports them.
    for (const p of this.partitions) p.queue.on('error', () => {});
    // Every publication is answered once it has waited publishTimeoutMs since it was
    // accepted, whether its job went out or it still waits behind a job that is stuck
    // (PostgreSQL or Redis away). One timer for all, not one per job: a job's timer would
    // start only when the job is sent, late for what queued behind a stuck one. A short tick,
    // so that the answer reaches the client well before its SDK's own 5 s call timeout.
    this.expiry = setInterval(
      () => this.expireOverdue(),
      Math.max(10, Math.min(100, settings.publishTimeoutMs / 8)),
    );
    this.expiry.unref();
  }

  /** Must resolve before the first publish: acks sent before we listen would be lost. */
  async start(): Promise<void> {
    await this.owners.start();
    await this.listenForAcks();
    this.pubsub.onReconnect(() => void this.afterReconnect());
  }

  private listenForAcks(): Promise<void> {
    const onAcks = (msg: string) => this.onAcks(decodeAcks(msg));
    return Promise.all(this.ackTopics.map((topic) => this.pubsub.listen(topic, onAcks))).then(() => {});
  }

  /**
   * Acks published while pub/sub was away are gone. Subscribe again and wait until Redis
   * confirms (from then on every ack arrives), then look up in PostgreSQL what committed
   * before: each commit is seen one way or the other. Read-only: a job still queued is left
   * alone, and its publication timeout still decides it.
   */
  private async afterReconnect(): Promise<void> {
    try {
      await this.listenForAcks();
      await this.decider.answerCommitted(this.partitions.flatMap((p) => p.open));
    } catch (err) {
      this.log.warn({ err }, 'could not look for commits whose acks were lost; their timeouts will');
    }
  }

  /** Jobs waiting in each partition queue (all gateways'), for the queue-depth gauge. */
  waitingJobs(): Promise<number[]> {
    return Promise.all(this.partitions.map((p) => p.queue.getWaitingCount()));
  }

  /** Every partition queue's counts, with this gateway's recent publish→commit times. */
  queueStats(): Promise<PartitionStats[]> {
    return Promise.all(
      this.partitions.map(async (p) => ({ partition: p.index, ...(await queueCounts(p.queue)), latency: this.latency.summary(p.index) })),
    );
  }

  /** A partition's failed jobs (its dead letters), newest first; undefined for no such partition. */
  failedJobs(partition: number, start: number, count: number): Promise<FailedJob[]> | undefined {
    const p = this.partitions[partition];
    return p && failedJobs(p.queue, start, count);
  }

  /** Number of publications accepted and not yet acknowledged. */
  get pending(): number {
    return this.byId.size;
  }

  /**
   * Publications waiting in the channel's partition, not yet sent as a job: what flow control
   * (./flow.ts) holds client publishes back on.
   */
  backlogOf(channel: string): number {
    return this.partitions[partitionOf(channel, this.settings.partitions)]!.waiting.length;
  }

  /**
   * `flowControlled`: the caller waited for room first (./flow.ts; client publishes), so the
   * backlog bound does not refuse it. Everyone else (the HTTP API) gets 111 at `backlogMax`.
   */
  publish(pub: Omit<NewPublication, 'id'>, flowControlled = false): Promise<Committed> {
    return this.enqueue({ id: randomUUID(), ...pub }, false, flowControlled);
  }

  /**
   * Clears the channel's stored publications, keeping its epoch and top offset (API
   * `history_remove`). Queued like a publish, so it is ordered with the publications this
   * gateway accepted before and after it; resolves with the channel's position once a
   * worker has committed it.
   */
  removeHistory(channel: string): Promise<Committed> {
    return this.enqueue({ id: randomUUID(), channel, data: '' }, true);
  }

  private enqueue(full: NewPublication, remove: boolean, flowControlled = false): Promise<Committed> {
    if (this.closed) return Promise.reject(new ProtocolError(Errors.internal));
    const partition = this.partitions[partitionOf(full.channel, this.settings.partitions)]!;
    // Workers behind (or PostgreSQL away): what is not flow-controlled is refused early with
    // a temporary error rather than queued without bound (flow-controlled publishes are
    // bounded where they wait: ./flow.ts). Jobs in Redis stay bounded too: at most
    // `inflightJobs` per partition per gateway.
    if (!flowControlled && partition.waiting.length >= this.settings.backlogMax) {
      metrics.publishOutcomes.inc({ outcome: 'rejected' });
      return Promise.reject(new ProtocolError(Errors.tooManyRequests, 'ingest backlog full'));
    }
    return new Promise<Committed>((resolve, reject) => {
      const entry: Entry = {
        pub: full,
        bytes: approximateBytes(full),
        resolve,
        reject,
        settled: false,
        startedAt: performance.now(),
      };
      if (remove) entry.remove = true;
      this.byId.set(full.id, entry);
      partition.waiting.push(entry);
      this.pump();
    });
  }

  /**
   * A freed slot sends in a microtask rather than at once: one ack message frees the slots of
   * every partition in a bundle, and they should make the next bundle together. (A publish
   * sends at once: on an idle partition it goes out as a job of one, without waiting.)
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Every partition with publications waiting and a free slot sends its next batch. A history
   * removal always goes alone, and so does a batch whose owner is not known (it travels on its
   * own partition's queue). The batches of partitions with a known owner go in a bundle, one
   * owner's at a time, within BATCH_MAX_BYTES.
   *
   * The gateway's slots for these jobs (`inflightJobs` in all, not per owner) are what make
   * bundles large: while they are taken, every partition gathers what arrives. Each slot that
   * frees goes to the owner sent to least recently, whose bundle then carries all its
   * partitions gathered. BullMQ's work, the commit round and the fan-out round are paid per
   * job, so at two workers this costs 13–25 % less CPU per publication than a slot per owner
   * did (bench T1 and T2: docs/benchmarks.md). An owner with OWN_SLOT_PUBLICATIONS
   * waiting gets a job of its own even while the gateway's slots are taken: at that size a job
   * pays its fixed cost many times over, and owners working in parallel add throughput. A job
   * out for more than SLOT_PATIENCE_MS stops holding a slot of the gateway's. Each owner still
   * has at most `inflightJobs` jobs out.
   */
  private pump(): void {
    if (this.closed) return;
    for (;;) {
      const byOwner = new Map<string, { partitions: Partition[]; waiting: number }>();
      for (const partition of this.partitions) {
        if (partition.waiting.length === 0 || partition.inflight >= this.settings.inflightJobs) continue;
        const owner = this.owners.ownerOf(partition.index);
        if (owner === undefined) {
          this.send([{ partition, batch: this.takeBatch(partition) }]);
          continue;
        }
        const of = byOwner.get(owner) ?? { partitions: [], waiting: 0 };
        of.partitions.push(partition);
        of.waiting += partition.waiting.length;
        byOwner.set(owner, of);
      }
      const owner = this.nextOwner(byOwner);
      if (owner === undefined) return;
      this.sendOwned(byOwner.get(owner)!.partitions);
    }
  }

  /**
   * The owner whose partitions go next, if any may: the one sent to least recently, among
   * those with a free slot of their own, while the gateway has a slot free; otherwise among
   * those with OWN_SLOT_PUBLICATIONS waiting.
   */
  private nextOwner(byOwner: Map<string, { waiting: number }>): string | undefined {
    const gatewaySlot = this.gatewaySlotsTaken() < this.settings.inflightJobs;
    let next: string | undefined;
    for (const [owner, { waiting }] of byOwner) {
      if ((this.ownerInflight.get(owner) ?? 0) >= this.settings.inflightJobs) continue;
      if (!gatewaySlot && waiting < OWN_SLOT_PUBLICATIONS) continue;
      if (next === undefined || (this.lastSentTo.get(owner) ?? -1) < (this.lastSentTo.get(next) ?? -1)) next = owner;
    }
    if (next === undefined) return undefined;
    // Owners come and go (each worker process is a new one): forget the old ones now and then.
    if (this.lastSentTo.size > 1024) this.lastSentTo.clear();
    this.lastSentTo.set(next, this.bundlesSent++);
    return next;
  }

  /**
   * The gateway's slots taken by jobs out for less than SLOT_PATIENCE_MS. A job out longer
   * (its worker died or froze, and its partitions wait for the takeover) keeps only its
   * owner's slot, so the other owners' partitions are not held up with it.
   */
  private gatewaySlotsTaken(): number {
    const since = performance.now() - SLOT_PATIENCE_MS;
    let taken = 0;
    for (const slot of this.slotsTaken) if (slot.sentAt > since) taken++;
    return taken;
  }

  /** One owner's ready partitions: their batches in one bundle (more past BATCH_MAX_BYTES); a removal alone. */
  private sendOwned(partitions: Partition[]): void {
    const owner = this.owners.ownerOf(partitions[0]!.index)!;
    let bundle: Bundle | undefined;
    for (const partition of partitions) {
      const batch = this.takeBatch(partition);
      if (batch[0]!.remove) {
        this.send([{ partition, batch }]);
        continue;
      }
      const bytes = batch.reduce((n, e) => n + e.bytes, 0);
      if (bundle && bundle.bytes + bytes > BATCH_MAX_BYTES) {
        this.send(bundle.parts, owner);
        bundle = undefined;
      }
      bundle ??= { parts: [], bytes: 0 };
      bundle.parts.push({ partition, batch });
      bundle.bytes += bytes;
    }
    if (bundle) this.send(bundle.parts, owner);
  }

  private takeBatch(partition: Partition): Entry[] {
    let bytes = 0;
    let count = 0;
    for (const entry of partition.waiting) {
      // A removal ends the batch before it and then goes alone (it is another job kind).
      if (entry.remove) {
        if (count === 0) count = 1;
        break;
      }
      if (count >= this.settings.batchMax || (count > 0 && bytes + entry.bytes > BATCH_MAX_BYTES)) break;
      bytes += entry.bytes;
      count++;
    }
    return partition.waiting.splice(0, count);
  }

  /**
   * Sends one job: a partition's batch, or a bundle of several partitions' batches. With
   * `owner`, the job holds one of the gateway's slots and one of the owner's until every
   * batch in it is answered.
   */
  private send(parts: BundlePartToSend[], owner?: string): void {
    let release: (() => void) | undefined;
    if (owner !== undefined) {
      const slot = { sentAt: performance.now() };
      this.slotsTaken.add(slot);
      this.ownerInflight.set(owner, (this.ownerInflight.get(owner) ?? 0) + 1);
      let open = parts.length;
      release = () => {
        if (--open > 0) return;
        this.slotsTaken.delete(slot);
        const left = (this.ownerInflight.get(owner) ?? 1) - 1;
        if (left > 0) this.ownerInflight.set(owner, left);
        else this.ownerInflight.delete(owner);
      };
    }
    const sent = parts.map(({ partition, batch }) => ({ partition, batch, job: this.open(partition, batch, release) }));
    // Each partition's adds stay strictly one after another (queue order = accept order).
    const added = Promise.all(parts.map((p) => p.partition.tail)).then(() => this.addJob(sent));
    for (const { partition, job } of sent) {
      partition.tail = added.catch(() => {
        partition.lostAdd = true;
      });
      // No timer of its own: expireOverdue answers each publication publishTimeoutMs after it
      // was accepted, and in the same pass drops what is overdue and still waiting, so a slot
      // freed by expiry is never taken by publications that already got their error.
      added.catch((err: unknown) => this.onAddFailed(partition, job, err));
    }
  }

  /** Takes a slot of the partition for the batch, until the last of its publications is answered. */
  private open(partition: Partition, batch: Entry[], onDone?: () => void): SentJob<Entry> {
    partition.inflight++;
    const job: SentJob<Entry> = { stream: partition.stream, seq: partition.nextSeq++, entries: batch, deciding: false };
    for (const entry of batch) entry.job = job;
    partition.open.push(job);
    // A countdown rather than a promise per publication: the batch frees its slot when the
    // last of its publications is answered (committed, rejected or expired).
    let unsettled = batch.length;
    const onSettled = () => {
      if (--unsettled > 0) return;
      partition.inflight--;
      partition.open.splice(partition.open.indexOf(job), 1);
      onDone?.();
      this.schedulePump();
    };
    for (const entry of batch) {
      if (entry.settled) onSettled();
      else entry.onSettled = onSettled;
    }
    return job;
  }

  /**
   * One add, one round trip. (This used to assert the queue's global concurrency before
   * every add, because Redis forgetting it could let two jobs of one gateway commit out of
   * order; PostgreSQL now commits each gateway's jobs in their order whatever Redis
   * remembers, and workers re-assert the setting on their own.)
   */
  private async addJob(sent: { partition: Partition; batch: Entry[]; job: SentJob<Entry> }[]) {
    // Read when the previous adds have settled (adds are chained), so a failure just before
    // is seen; the lost job is decided in PostgreSQL (onAddFailed), not waited for.
    const orderOf = (partition: Partition, seq: number): Sequenced => {
      const order = { s: seq, ...(partition.lostAdd ? { x: true } : {}) };
      partition.lostAdd = false;
      return order;
    };
    if (sent.length > 1) {
      // Any of its partitions' queues will do (the owner consumes them all); taking them in
      // turn spreads many gateways' bundles over the owner's queues and their active-job bounds.
      const { queue } = sent[this.bundlesSent % sent.length]!.partition;
      const parts: BundlePart[] = sent.map(({ partition, batch, job }) => ({
        q: partition.index,
        p: batch.map((e) => e.pub),
        ...orderOf(partition, job.seq),
      }));
      return queue.add(INGEST_BUNDLE_JOB_NAME, { g: this.gatewayId, b: parts } satisfies IngestBundle);
    }
    const { partition, batch, job } = sent[0]!;
    const { queue } = partition;
    const order = orderOf(partition, job.seq);
    const first = batch[0]!;
    if (first.remove) {
      const removal: HistoryRemoveJob = { g: this.gatewayId, i: first.pub.id, channel: first.pub.channel, ...order };
      return queue.add(HISTORY_REMOVE_JOB_NAME, removal);
    }
    return queue.add(INGEST_JOB_NAME, { g: this.gatewayId, p: batch.map((e) => e.pub), ...order } satisfies IngestJob);
  }

  /**
   * The add failed, yet the job may exist (the reply, not the write, may be what was lost).
   * Deciding it in PostgreSQL answers its publishers for certain; right away only when no
   * earlier job of the partition is still open, since abandoning a job also ends the earlier
   * undecided ones of its stream, and those may be healthy. Otherwise its timeout decides it.
   */
  private onAddFailed(partition: Partition, job: SentJob<Entry>, err: unknown): void {
    this.log.warn({ err, publications: job.entries.length }, 'could not queue publications; deciding them in PostgreSQL');
    if (partition.open[0] === job) this.decider.decide(job);
  }

  /** Answers never-sent publications with error 100: nothing was queued, they can never commit. */
  private expire(batch: Entry[]): void {
    for (const entry of batch) this.settle(entry, undefined, Errors.internal.code);
  }

  /**
   * Answers every publication accepted more than publishTimeoutMs ago. One never sent is
   * dropped from its partition's backlog with error 100 (it can never commit: sending it now
   * would commit what its publisher was told failed); one whose job went out waits for
   * PostgreSQL's decision on the job (./decide.ts). Entries are in accept order, and a job
   * holds only entries accepted after those of the jobs before it, so a job is decided only
   * once all earlier jobs of its partition are overdue too: abandoning it never ends an
   * earlier job that still had time.
   */
  private expireOverdue(): void {
    // A slot past its patience frees the gateway's turn for the other owners.
    if (this.slotsTaken.size > 0) this.schedulePump();
    const deadline = performance.now() - this.settings.publishTimeoutMs;
    for (const entry of this.byId.values()) {
      if (entry.startedAt > deadline) break; // byId is in accept order
      if (entry.job) {
        this.decider.decide(entry.job);
      } else {
        metrics.publishTimeouts.inc({ outcome: 'unsent' });
        this.settle(entry, undefined, Errors.internal.code);
      }
    }
    for (const partition of this.partitions) {
      let expired = 0;
      while (expired < partition.waiting.length && partition.waiting[expired]!.settled) expired++;
      if (expired > 0) partition.waiting.splice(0, expired);
    }
  }

  private onAcks(acks: Ack[]): void {
    for (const ack of acks) {
      const entry = this.byId.get(ack[0]);
      if (!entry) continue; // timed out earlier, or another gateway's stale ack
      if (ack.length === 4) this.settle(entry, undefined, ack[3]);
      else this.settle(entry, { offset: ack[1], epoch: ack[2] });
    }
  }

  /** PostgreSQL's decision: committed at `found`, or never (the final error 100). */
  private answerDecided(entry: Entry, found: Found | undefined): void {
    this.settle(entry, found, found ? undefined : Errors.internal.code);
  }

  private settle(entry: Entry, result: Committed | undefined, code?: number): void {
    if (entry.settled) return;
    entry.settled = true;
    this.byId.delete(entry.pub.id);
    if (result) {
      const ms = performance.now() - entry.startedAt;
      metrics.publishToCommit.observe(ms / 1000);
      this.latency.record(partitionOf(entry.pub.channel, this.settings.partitions), ms);
      metrics.publishOutcomes.inc({ outcome: 'committed' });
      entry.resolve(result);
    } else {
      metrics.publishOutcomes.inc({ outcome: 'error' });
      entry.reject(new ProtocolError(errorFor(code)));
    }
    entry.onSettled?.();
  }

  /**
   * Stops accepting; what is waiting (never sent) gets an error. What is in flight may still
   * be acked, and is otherwise left unanswered: the gateway closes its connections before
   * this (src/app/gateway.ts), and an error now, without PostgreSQL's word, could be untrue.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.expiry);
    this.owners.stop();
    this.stopping.abort();
    for (const partition of this.partitions) this.expire(partition.waiting.splice(0));
    await Promise.all(this.partitions.map((p) => p.queue.close().catch(() => {})));
  }
}

function errorFor(code: number | undefined) {
  return (code === undefined ? undefined : errorByCode(code)) ?? Errors.internal;
}

function approximateBytes(pub: NewPublication): number {
  return pub.data.length + pub.channel.length + (pub.connInfo?.length ?? 0) + 200;
}
