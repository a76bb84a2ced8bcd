/**
 * The gateway side of ingest: hands publications to the partition queues and resolves each
 * one when a worker acknowledges its commit (guarantee 1: no success reply before commit).
 *
 * Batching adapts to load: a partition with fewer than `inflightJobs` jobs awaiting their
 * acks sends a publication at once, as a job of one; a busier partition gathers what
 * arrives meanwhile into the next job (up to `batchMax` publications or `BATCH_MAX_BYTES`).
 * Jobs of one partition are added strictly one after another, so the queue order is the
 * order in which this gateway accepted the publications (guarantee 3).
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { decodeAcks, type Ack } from '../channels/bus.js';
import { partitionOf, partitionQueueName, type Keys } from '../channels/keys.js';
import type { PubSub } from '../channels/pubsub.js';
import type { NewPublication } from '../db/repos/publications.js';
import type { Logger } from '../observability/logger.js';
import { errorByCode, Errors, ProtocolError } from '../protocol/codes.js';
import { INGEST_JOB_NAME, type IngestJob } from './job.js';

/** BullMQ keeps job data in one Redis string; keep jobs well below what hurts Redis latency. */
const BATCH_MAX_BYTES = 4 * 1024 * 1024;

export interface Committed {
  offset: number;
  epoch: string;
}

export interface IngestSettings {
  partitions: number;
  batchMax: number;
  inflightJobs: number;
  publishTimeoutMs: number;
}

interface Entry {
  pub: NewPublication;
  bytes: number;
  resolve(result: Committed): void;
  reject(err: Error): void;
  settled: boolean;
  onSettled?: () => void;
}

interface Partition {
  queue: Queue;
  waiting: Entry[];
  inflight: number;
  /** The previous add; the next one starts after it, to keep queue order = accept order. */
  tail: Promise<unknown>;
}

export class IngestClient {
  readonly gatewayId = `gw-${randomUUID()}`;
  private readonly partitions: Partition[];
  private readonly byId = new Map<string, Entry>();
  private closed = false;

  constructor(
    redis: Redis,
    private readonly pubsub: PubSub,
    private readonly keys: Keys,
    private readonly settings: IngestSettings,
    private readonly log: Logger,
  ) {
    this.partitions = Array.from({ length: settings.partitions }, (_, i) => ({
      queue: new Queue(partitionQueueName(i), {
        connection: redis,
        prefix: keys.queuePrefix,
        defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 10_000 }, attempts: 1 },
      }),
      waiting: [],
      inflight: 0,
      tail: Promise.resolve(),
    }));
  }

  /** Must resolve before the first publish: acks sent before we listen would be lost. */
  async start(): Promise<void> {
    await this.pubsub.listen(this.keys.acks(this.gatewayId), (msg) => this.onAcks(decodeAcks(msg)));
  }

  /** Number of publications accepted and not yet acknowledged. */
  get pending(): number {
    return this.byId.size;
  }

  publish(pub: Omit<NewPublication, 'id'>): Promise<Committed> {
    if (this.closed) return Promise.reject(new ProtocolError(Errors.internal));
    const full: NewPublication = { id: randomUUID(), ...pub };
    return new Promise<Committed>((resolve, reject) => {
      const entry: Entry = { pub: full, bytes: approximateBytes(full), resolve, reject, settled: false };
      this.byId.set(full.id, entry);
      const partition = this.partitions[partitionOf(pub.channel, this.settings.partitions)]!;
      partition.waiting.push(entry);
      this.pump(partition);
    });
  }

  private pump(partition: Partition): void {
    while (partition.waiting.length > 0 && partition.inflight < this.settings.inflightJobs) {
      this.send(partition, this.takeBatch(partition));
    }
  }

  private takeBatch(partition: Partition): Entry[] {
    let bytes = 0;
    let count = 0;
    for (const entry of partition.waiting) {
      if (count >= this.settings.batchMax || (count > 0 && bytes + entry.bytes > BATCH_MAX_BYTES)) break;
      bytes += entry.bytes;
      count++;
    }
    return partition.waiting.splice(0, count);
  }

  private send(partition: Partition, batch: Entry[]): void {
    partition.inflight++;
    const job: IngestJob = { g: this.gatewayId, p: batch.map((e) => e.pub) };
    const added = partition.tail.then(() => partition.queue.add(INGEST_JOB_NAME, job));
    partition.tail = added.catch(() => {});
    const timer = setTimeout(() => this.expire(batch), this.settings.publishTimeoutMs);
    timer.unref();
    added.catch((err: unknown) => {
      this.log.warn({ err, publications: batch.length }, 'could not queue publications');
      this.expire(batch);
    });
    void Promise.all(batch.map((e) => settledPromise(e))).then(() => {
      clearTimeout(timer);
      partition.inflight--;
      this.pump(partition);
    });
  }

  /** Answers the still-waiting publications with a temporary error (they may commit later). */
  private expire(batch: Entry[]): void {
    for (const entry of batch) this.settle(entry, undefined, Errors.internal.code);
  }

  private onAcks(acks: Ack[]): void {
    for (const ack of acks) {
      const entry = this.byId.get(ack[0]);
      if (!entry) continue; // timed out earlier, or another gateway's stale ack
      if (ack.length === 4) this.settle(entry, undefined, ack[3]);
      else this.settle(entry, { offset: ack[1], epoch: ack[2] });
    }
  }

  private settle(entry: Entry, result: Committed | undefined, code?: number): void {
    if (entry.settled) return;
    entry.settled = true;
    this.byId.delete(entry.pub.id);
    if (result) entry.resolve(result);
    else entry.reject(new ProtocolError(errorFor(code)));
    entry.onSettled?.();
  }

  /** Stops accepting; what is waiting gets an error, what is in flight may still be acked. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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

function settledPromise(entry: Entry): Promise<void> {
  if (entry.settled) return Promise.resolve();
  return new Promise((resolve) => {
    entry.onSettled = resolve;
  });
}
