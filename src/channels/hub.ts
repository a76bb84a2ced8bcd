/**
 * The hub: this gateway's index of channel → local subscribers, and the one place that
 * turns the publication stream of a channel into frames on subscribers' sockets.
 *
 * What it guarantees to each subscriber (guarantee 4): every publication once, in offset
 * order, with no gap. Redis pub/sub may drop or repeat messages (reconnects, a worker
 * repeating a job), so each subscriber keeps the offset it has been given up to:
 * an older or equal offset is dropped, the next one is written, and a later one is held
 * back while the missing range is read from history (shared between the subscribers that
 * miss the same range). If that read cannot close the gap, the subscriber is told to
 * resubscribe with recovery (`onGap`), which its client does on its own.
 *
 * A subscriber starts in a buffering state (attach) and goes live at a known position
 * (start); the connection writes its subscribe reply between the two, so no publication
 * can overtake the reply (PROTOCOL.md B, subscribe ordering rule).
 */
import { encodePushOfPublication } from '../protocol/codec.js';
import { decodeTopicMessage } from './bus.js';
import { decodeEvent } from './events.js';
import type { Keys } from './keys.js';
import type { PubSub } from './pubsub.js';
import type { HistoryReader } from '../history/reader.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

export interface Subscriber {
  /** Writes an encoded push frame; must not throw. */
  deliver(frame: Buffer): void;
  /** The hub could not close a gap: the subscription must be dropped and recovered. */
  onGap(channel: string): void;
  /** Whether join/leave pushes are wanted (the client asked and the namespace allows it). */
  readonly joinLeave?: boolean;
}

interface Pending {
  offset: number;
  frame: Buffer;
}

class Member {
  /** Highest offset written to this subscriber; undefined while its subscribe is in progress. */
  position: number | undefined;
  filling = false;
  held: Pending[] = [];
  constructor(readonly subscriber: Subscriber) {}
}

class ChannelEntry {
  readonly members = new Map<Subscriber, Member>();
  ready: Promise<void> = Promise.resolve();
  epoch = '';
  constructor(readonly name: string) {}
}

/** The push frame of one publication: built once, written to every subscriber. */
export function pushFrame(channel: string, pubJson: string): Buffer {
  return Buffer.from(encodePushOfPublication(channel, pubJson));
}

export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly fills = new Map<string, Promise<Pending[]>>();
  private readonly channelWatchers: (() => void)[] = [];

  constructor(
    private readonly pubsub: PubSub,
    private readonly keys: Keys,
    private readonly history: HistoryReader,
    private readonly recoveryMax: number,
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
    entry.members.set(subscriber, new Member(subscriber));
    try {
      await entry.ready;
    } catch (err) {
      this.detach(channel, subscriber);
      throw err;
    }
  }

  /** The subscriber has been given everything up to `position`; release what was held. */
  start(channel: string, subscriber: Subscriber, position: number): void {
    const member = this.channels.get(channel)?.members.get(subscriber);
    if (!member) return;
    member.position = position;
    const held = member.held.sort((a, b) => a.offset - b.offset);
    member.held = [];
    for (const pub of held) this.offer(channel, member, pub);
  }

  detach(channel: string, subscriber: Subscriber): void {
    const entry = this.channels.get(channel);
    if (!entry || !entry.members.delete(subscriber) || entry.members.size > 0) return;
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
    const pos = await this.history.position(channel);
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
    for (const member of entry.members.values()) {
      if (!member.subscriber.joinLeave || member.position === undefined) continue;
      frame ??= Buffer.from(`{"push":{"channel":${JSON.stringify(entry.name)},"${kind}":{"info":${infoJson}}}}`);
      member.subscriber.deliver(frame);
    }
  }

  private offer(channel: string, member: Member, pub: Pending): void {
    if (member.position === undefined || member.filling) {
      member.held.push(pub);
    } else if (pub.offset === member.position + 1) {
      member.position = pub.offset;
      member.subscriber.deliver(pub.frame);
      metrics.deliveries.inc();
    } else if (pub.offset > member.position + 1) {
      member.held.push(pub);
      this.fillGap(channel, member, pub.offset - 1);
    }
    // pub.offset <= position: already delivered (a repeated job, or recovery overlap).
  }

  private fillGap(channel: string, member: Member, upTo: number): void {
    const after = member.position!;
    member.filling = true;
    this.fetchShared(channel, after, upTo).then(
      (pubs) => this.afterFill(channel, member, after, upTo, pubs),
      (err: unknown) => {
        this.log.warn({ err, channel, after, upTo }, 'gap fill failed; asking the client to recover');
        this.giveUp(channel, member);
      },
    );
  }

  private afterFill(channel: string, member: Member, after: number, upTo: number, pubs: Pending[]): void {
    const entry = this.channels.get(channel);
    if (entry?.members.get(member.subscriber) !== member) return; // left meanwhile
    if (pubs.length < upTo - after) {
      this.log.warn({ channel, after, upTo, got: pubs.length }, 'gap not in history; asking the client to recover');
      this.giveUp(channel, member);
      return;
    }
    member.filling = false;
    metrics.gapFills.inc({ outcome: 'filled' });
    for (const pub of pubs) this.offer(channel, member, pub);
    const held = member.held.sort((a, b) => a.offset - b.offset);
    member.held = [];
    for (const pub of held) this.offer(channel, member, pub);
  }

  private giveUp(channel: string, member: Member): void {
    metrics.gapFills.inc({ outcome: 'failed' });
    this.detach(channel, member.subscriber);
    member.subscriber.onGap(channel);
  }

  /** Subscribers missing the same range share one read. */
  private fetchShared(channel: string, after: number, upTo: number): Promise<Pending[]> {
    const key = `${channel}\u0000${after}\u0000${upTo}`;
    let fetch = this.fills.get(key);
    if (!fetch) {
      fetch = this.readGap(channel, after, upTo).finally(() => this.fills.delete(key));
      this.fills.set(key, fetch);
    }
    return fetch;
  }

  private async readGap(channel: string, after: number, upTo: number): Promise<Pending[]> {
    if (upTo - after > this.recoveryMax) return [];
    const pos = await this.history.position(channel, upTo);
    const pubs = await this.history.range(channel, pos.epoch, after, upTo, upTo - after);
    return pubs.map((pub) => ({ offset: pub.offset, frame: pushFrame(channel, pub.json) }));
  }
}
