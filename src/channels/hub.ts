/**
 * The hub: this gateway's index of channel → local subscribers, and the one place that
 * turns the publication stream of a channel into frames on subscribers' sockets.
 *
 * What it guarantees to each subscriber (guarantee 4): every publication once, in offset
 * order, with no gap. Redis pub/sub may drop or repeat messages (reconnects, a worker
 * repeating a job), so each subscriber keeps the offset it has been given up to:
 * an older or equal offset is dropped, the next one is written, and a later one starts a
 * fill: the missing range, up to and including it, is read from history (shared between
 * the subscribers that miss the same range). If that read cannot close the gap, the
 * subscriber is told to resubscribe with recovery (`onGap`), which its client does on its own.
 *
 * A subscriber starts in a buffering state (attach) and goes live at a known position
 * (start); the connection writes its subscribe reply between the two, so no publication
 * can overtake the reply (PROTOCOL.md B, subscribe ordering rule).
 *
 * Filling is bounded (issue 9). A gap — a hole in the live stream, or the rest of a recovery
 * the subscribe reply did not carry (`start` with a target above the position) — is read in
 * chunks of at most `chunkBytes`, the next only once the subscriber's queue has drained below
 * its bound (`writable`), so a subscriber never has more than about one chunk in memory.
 * While it fills, live publications are not held: each only raises the fill target, and is
 * read back from history with the rest (a gateway that hears of offset N can always read N
 * back: the worker writes the cache before it publishes). A gap wider than the subscriber's
 * `recoveryMax` (its namespace's `recovery_max`) is given up on: `onGap`.
 *
 * The hub owns when things happen (per-subscriber state, pacing, shared reads); what recovery
 * decides and reads — the buffer merge, contiguity, the one limit, the chunk read — is
 * src/history/recovery.ts. History is reached only through its `GapSource` interface.
 */
import { encodeJoinLeavePush, encodePushOfPublication } from '../protocol/codec.js';
import { decodeTopicMessage } from '../bus/topic.js';
import { decodeEvent } from '../bus/events.js';
import type { Keys } from '../bus/keys.js';
import type { PubSub } from '../bus/pubsub.js';
import { contiguousFrom, readGapChunk, releaseBuffer, withinRecoveryMax, type GapSource } from '../history/recovery.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

export interface Subscriber {
  /**
   * Writes an encoded push frame; must not throw. `paced`: a frame of a fill chunk, read
   * only after `writable()` resolved, so it is not held against the slow-client bound.
   */
  deliver(frame: Buffer, paced?: boolean): void;
  /** Resolves once the subscriber's queue is below its bound (or it closed). */
  writable(): Promise<void>;
  /** The hub could not close a gap: the subscription must be dropped and recovered. */
  onGap(channel: string): void;
  /** Whether join/leave pushes are wanted (the client asked and the namespace allows it). */
  readonly joinLeave?: boolean;
  /** The widest gap filled for it (its namespace's `recovery_max`); wider ones are given up. */
  readonly recoveryMax: number;
}

/** The part of the pub/sub connection the hub uses (a narrow type, so tests can stand in for it). */
export type Topics = Pick<PubSub, 'listen' | 'unlisten' | 'onReconnect'>;

interface Pending {
  offset: number;
  frame: Buffer;
}

class Member {
  /** Highest offset written to this subscriber; undefined while its subscribe is in progress. */
  position: number | undefined;
  /** A fill is running: publications up to `fillTo` come from history, not from the topic. */
  filling = false;
  fillTo = 0;
  /** Publications that came while the subscribe was in progress, released by `start`. */
  held: Pending[] = [];
  constructor(readonly subscriber: Subscriber) {}
}

class ChannelEntry {
  readonly members = new Map<Subscriber, Member>();
  /**
   * The members that asked for join/leave pushes. Every subscribe and unsubscribe of a
   * channel with join_leave on is an event, so walking all members for each would make a
   * mass reconnect of n subscribers cost n² when (as usually) few or none want them.
   */
  readonly eventListeners = new Map<Subscriber, Member>();
  ready: Promise<void> = Promise.resolve();
  epoch = '';
  constructor(readonly name: string) {}
}

/**
 * The push frame of one publication: built once, written to every subscriber. Protobuf
 * connections transcode it once too, keyed by this Buffer (src/protocol/protobuf/encode.ts),
 * so it must be the same Buffer for every subscriber, never a copy.
 */
export function pushFrame(channel: string, pubJson: string): Buffer {
  return Buffer.from(encodePushOfPublication(channel, pubJson));
}

export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  /** Chunk reads in flight, by channel and start: subscribers at the same position share one. */
  private readonly fills = new Map<string, Promise<Pending[]>>();
  private readonly channelWatchers: (() => void)[] = [];

  constructor(
    private readonly pubsub: Topics,
    private readonly keys: Keys,
    private readonly gaps: GapSource,
    /** Bytes of publications one fill chunk may read (the client reply cap). */
    private readonly chunkBytes: number,
    private readonly log: Logger,
  ) {
    // After a pub/sub reconnect, compare positions at once and once more a second later: the
    // resubscribe and the position read travel on different connections, so the first look
    // may come before the topic is live again.
    pubsub.onReconnect(() => {
      void this.resyncAll();
      setTimeout(() => void this.resyncAll(), 1000).unref();
    });
  }

  get channelCount(): number {
    return this.channels.size;
  }

  subscriberCount(channel: string): number {
    return this.channels.get(channel)?.members.size ?? 0;
  }

  channelNames(): IterableIterator<string> {
    return this.channels.keys();
  }

  /**
   * `listener` runs (synchronously, must not throw) when a channel gains its first or loses
   * its last local subscriber; the node registry (src/cluster/registry.ts) uses it.
   */
  onChannelsChanged(listener: () => void): void {
    this.channelWatchers.push(listener);
  }

  /**
   * Registers a buffering subscriber and resolves once this gateway listens to the
   * channel's topic: every publication committed after that reaches the buffer.
   */
  async attach(channel: string, subscriber: Subscriber): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = new ChannelEntry(channel);
      this.channels.set(channel, entry);
      for (const watcher of this.channelWatchers) watcher();
      const created = entry;
      entry.ready = this.pubsub.listen(this.keys.topic(channel), (msg) => this.onMessage(created, msg));
    }
    const member = new Member(subscriber);
    entry.members.set(subscriber, member);
    if (subscriber.joinLeave) entry.eventListeners.set(subscriber, member);
    else entry.eventListeners.delete(subscriber);
    try {
      await entry.ready;
    } catch (err) {
      this.detach(channel, subscriber);
      throw err;
    }
  }

  /**
   * The subscriber has been given everything up to `position`. With `fillTo` above it (a
   * recovery whose reply carried only its first chunk), the rest up to `fillTo` follows from
   * history in bounded chunks before any live publication; otherwise what was held is released.
   */
  start(channel: string, subscriber: Subscriber, position: number, fillTo = position): void {
    const member = this.channels.get(channel)?.members.get(subscriber);
    if (!member) return;
    member.position = position;
    const release = releaseBuffer(position, fillTo, member.held);
    member.held = [];
    for (const pub of release.deliver) this.offer(channel, member, pub);
    if (release.fillTo > 0) this.fillGap(channel, member, release.fillTo);
  }

  detach(channel: string, subscriber: Subscriber): void {
    const entry = this.channels.get(channel);
    if (!entry || !entry.members.delete(subscriber)) return;
    entry.eventListeners.delete(subscriber);
    if (entry.members.size > 0) return;
    this.channels.delete(channel);
    for (const watcher of this.channelWatchers) watcher();
    this.pubsub.unlisten(this.keys.topic(channel)).catch((err) => this.log.warn({ err, channel }, 'unsubscribe failed'));
  }

  /**
   * Positioning: compare each live subscriber's position with the channel's committed top
   * and fill any silent gap (a lost last message is invisible until the next one comes).
   */
  async resync(channel: string): Promise<void> {
    const entry = this.channels.get(channel);
    if (!entry) return;
    const pos = await this.gaps.position(channel);
    for (const member of entry.members.values()) {
      if (member.position === undefined || member.filling || member.position >= pos.top) continue;
      this.fillGap(channel, member, pos.top);
    }
  }

  async resyncAll(): Promise<void> {
    for (const channel of [...this.channels.keys()]) {
      await this.resync(channel).catch((err) => this.log.warn({ err, channel }, 'resync failed'));
    }
  }

  private onMessage(entry: ChannelEntry, message: string): void {
    const event = decodeEvent(message);
    if (event) return this.onEvent(entry, event.kind, event.infoJson);
    const decoded = decodeTopicMessage(message);
    if (!decoded) {
      this.log.warn({ channel: entry.name }, 'ignoring malformed topic message');
      return;
    }
    entry.epoch = decoded.epoch;
    if (decoded.committedAt > 0) metrics.commitToDeliver.observe(Math.max(0, Date.now() - decoded.committedAt) / 1000);
    for (const pub of decoded.pubs) {
      const pending = { offset: pub.offset, frame: pushFrame(entry.name, pub.json) };
      for (const member of entry.members.values()) this.offer(entry.name, member, pending);
    }
  }

  /** join/leave: no offset, no ordering with publications; only to live subscribers. */
  private onEvent(entry: ChannelEntry, kind: 'join' | 'leave', infoJson: string): void {
    let frame: Buffer | undefined;
    for (const member of entry.eventListeners.values()) {
      if (member.position === undefined) continue;
      frame ??= Buffer.from(encodeJoinLeavePush(entry.name, kind, infoJson));
      member.subscriber.deliver(frame);
    }
  }

  private offer(channel: string, member: Member, pub: Pending): void {
    if (member.position === undefined) {
      member.held.push(pub);
    } else if (member.filling) {
      member.fillTo = Math.max(member.fillTo, pub.offset);
    } else if (pub.offset === member.position + 1) {
      member.position = pub.offset;
      member.subscriber.deliver(pub.frame);
      metrics.deliveries.inc();
    } else if (pub.offset > member.position + 1) {
      this.fillGap(channel, member, pub.offset);
    }
    // pub.offset <= position: already delivered (a repeated job, or recovery overlap).
  }

  /** Fills the member up to `upTo` (and whatever arrives meanwhile) from history. */
  private fillGap(channel: string, member: Member, upTo: number): void {
    member.fillTo = Math.max(member.fillTo, upTo);
    if (member.filling) return;
    member.filling = true;
    this.fill(channel, member).then(
      (filled) => filled && metrics.gapFills.inc({ outcome: 'filled' }),
      (err: unknown) => {
        this.log.warn({ err, channel, at: member.position, upTo: member.fillTo }, 'gap fill failed; asking the client to recover');
        this.giveUp(channel, member);
      },
    );
  }

  /**
   * One chunk at a time: wait until the subscriber has read the last one, read the next
   * (shared with subscribers at the same position), write it. True once the member is level
   * with its target; false when it left or was given up on.
   */
  private async fill(channel: string, member: Member): Promise<boolean> {
    while (member.position! < member.fillTo) {
      if (!withinRecoveryMax(member.position!, member.fillTo, member.subscriber.recoveryMax)) {
        return this.giveUpOnGap(channel, member, 'gap wider than recovery_max');
      }
      await member.subscriber.writable();
      if (!this.isMember(channel, member)) return false;
      const chunk = await this.fetchShared(channel, member.position!, member.fillTo);
      if (!this.isMember(channel, member)) return false;
      if (!this.deliverChunk(member, chunk)) return this.giveUpOnGap(channel, member, 'gap not in history');
    }
    // Level with the target, in the same turn as the last check: the next live one is delivered.
    member.filling = false;
    return true;
  }

  /** Writes the chunk's publications that continue the member's position; false when none did. */
  private deliverChunk(member: Member, chunk: Pending[]): boolean {
    // A chunk read from the member's position is contiguous from it; this only guards that.
    const run = contiguousFrom(member.position! + 1, chunk);
    for (const pub of run) {
      member.position = pub.offset;
      member.subscriber.deliver(pub.frame, true);
      metrics.deliveries.inc();
    }
    return run.length > 0;
  }

  private isMember(channel: string, member: Member): boolean {
    return this.channels.get(channel)?.members.get(member.subscriber) === member;
  }

  private giveUpOnGap(channel: string, member: Member, why: string): false {
    this.log.warn({ channel, at: member.position, upTo: member.fillTo, why }, 'gap not filled; asking the client to recover');
    this.giveUp(channel, member);
    return false;
  }

  private giveUp(channel: string, member: Member): void {
    metrics.gapFills.inc({ outcome: 'failed' });
    this.detach(channel, member.subscriber);
    member.subscriber.onGap(channel);
  }

  /**
   * Subscribers filling from the same position share one chunk read (and its frames). The
   * first one's target bounds the read; one that wants more simply reads again after it.
   */
  private fetchShared(channel: string, after: number, upTo: number): Promise<Pending[]> {
    const key = `${channel}\u0000${after}`;
    let fetch = this.fills.get(key);
    if (!fetch) {
      fetch = this.readChunk(channel, after, upTo).finally(() => this.fills.delete(key));
      this.fills.set(key, fetch);
    }
    return fetch;
  }

  private async readChunk(channel: string, after: number, upTo: number): Promise<Pending[]> {
    const pubs = await readGapChunk(this.gaps, channel, after, upTo, this.chunkBytes);
    return pubs.map((pub) => ({ offset: pub.offset, frame: pushFrame(channel, pub.json) }));
  }
}
