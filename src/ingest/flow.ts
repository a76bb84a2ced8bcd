/**
 * Flow control for client publishes (issue 12): a publish waits for room in its partition's
 * gateway backlog instead of being refused.
 *
 * The choice, and why. Each gateway keeps, per partition, the publications it accepted and
 * has not sent as a job yet (./client.ts `waiting`). With `backlogMax` as the only bound, a
 * client publish arriving while it was full got 111, so enough well-behaved clients on one
 * partition (a bulk sync each) were refused writes. Raising the bound would not do: what
 * many connections can pile on has no fixed ceiling (every one of them may keep its
 * connection backlog's worth in flight, src/gateway/backlog.ts). So client publishes wait
 * instead, before they are queued, while the partition holds `flowBound` publications:
 *
 * - the publish waits in its connection's command chain, so the commands behind it wait too
 *   (order is kept), the connection's backlog grows and its socket stops being read: TCP
 *   pushes back on the client, whose SDK simply sees slower acks;
 * - `flowBound` is two full jobs (`2 × batchMax`, at most `backlogMax`): with that much
 *   waiting, the next job leaves full the moment a slot frees, so waiting longer than that
 *   adds latency, never throughput; and what waits drains within about two job durations,
 *   far inside the publish timeout;
 * - publishes that waited are then queued whatever `backlogMax` says (./client.ts
 *   `flowControlled`): a burst of connections released at once can pass `flowBound` by one
 *   publication each, never by more. The 111 at `backlogMax` stays for the HTTP API, whose
 *   requests are bounded per gateway (src/api/limit.ts) but do not wait here.
 *
 * A publish waits at most an eighth of the publish timeout counted from when its frame was read
 * (the partition makes no progress: no worker, PostgreSQL away), then gets error 100
 * without ever being queued, so it is definitively not committed; what is queued keeps the
 * whole timeout. A bound counted from the frame's arrival (not from the start of each wait)
 * lets everything the connection had read give up together rather than one after another.
 *
 * Waiting costs no timer per publish: one poll per congested partition, shared by all its
 * waiters, wakes them every few milliseconds at most (a wake-up a little late loses nothing:
 * a full job is still waiting), and at least every ROOM_TICK_MS so each can check its own
 * deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../bus/keys.js';
import type { IngestClient, IngestSettings } from './client.js';

/** How often a congested partition is looked at again. */
const ROOM_POLL_MS = 2;
/** Waiters wake at least this often, to check their deadline. */
const ROOM_TICK_MS = 50;

export class IngestFlow {
  /** Publications waiting in a partition above which client publishes wait. */
  readonly flowBound: number;
  /** Longest wait for room, from the frame's arrival (performance.now() ms). */
  readonly maxWaitMs: number;
  /** A partition's shared poll, while someone waits on it. */
  private readonly polls = new Map<number, Promise<void>>();

  constructor(
    private readonly ingest: Pick<IngestClient, 'backlogOf'>,
    private readonly settings: Pick<IngestSettings, 'partitions' | 'batchMax' | 'backlogMax' | 'publishTimeoutMs'>,
  ) {
    this.flowBound = Math.min(settings.backlogMax, 2 * settings.batchMax);
    // Short: the publish timeout (and PostgreSQL's decision) still follow once it is queued,
    // and all of it must fit in the SDKs' 5 s call timeout.
    this.maxWaitMs = settings.publishTimeoutMs / 8;
  }

  /**
   * True at once when the channel's partition has room (the common case: no await needed);
   * otherwise resolves true once it has, or false once `maxWaitMs` have passed since
   * `receivedAt` without room.
   */
  room(channel: string, receivedAt: number): true | Promise<boolean> {
    if (this.hasRoom(channel)) return true;
    return this.waitForRoom(channel, receivedAt + this.maxWaitMs);
  }

  private hasRoom(channel: string): boolean {
    return this.ingest.backlogOf(channel) < this.flowBound;
  }

  private async waitForRoom(channel: string, deadline: number): Promise<boolean> {
    while (!this.hasRoom(channel)) {
      if (performance.now() >= deadline) return false;
      await this.tick(channel);
    }
    return true;
  }

  /** Resolves when the partition has room, or after ROOM_TICK_MS; one poll per partition. */
  private tick(channel: string): Promise<void> {
    const partition = partitionOf(channel, this.settings.partitions);
    let poll = this.polls.get(partition);
    if (!poll) {
      poll = this.poll(channel).finally(() => this.polls.delete(partition));
      this.polls.set(partition, poll);
    }
    return poll;
  }

  private async poll(channel: string): Promise<void> {
    const until = performance.now() + ROOM_TICK_MS;
    while (!this.hasRoom(channel) && performance.now() < until) {
      await sleep(ROOM_POLL_MS, undefined, { ref: false });
    }
  }
}
