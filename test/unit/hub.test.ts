/**
 * The hub (src/channels/hub.ts) alone, with a fake pub/sub and a fake gap source.
 *
 * Why fakes here (STYLE.md habit 13): what the hub is for is what real Redis and PostgreSQL
 * will not do on demand — a topic that repeats a message, drops one, delivers two out of
 * order; a history that has lost a range, or answers only when the test says so; a
 * subscriber whose queue stays full until the test drains it. These fakes produce each of
 * those exactly once, at a known moment. The same paths against real servers are covered by
 * test/integration/positioning.test.ts, faults-redis.test.ts and reply-bounds.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { makeKeys } from '../../src/bus/keys.js';
import { encodeTopicMessage, type BusPublication } from '../../src/bus/topic.js';
import { encodeEvent } from '../../src/bus/events.js';
import type { TopicHandler } from '../../src/bus/pubsub.js';
import { Hub, type Subscriber, type Topics } from '../../src/channels/hub.js';
import type { GapSource } from '../../src/history/recovery.js';
import { waitFor } from '../helpers/wait.js';

const EPOCH = 'abcdefgh';
const keys = makeKeys('unit');
const pub = (offset: number, pad = 0): BusPublication => ({ offset, json: `{"data":"${'x'.repeat(pad)}","offset":${offset}}` });

/** A topic the test publishes on by hand: repeats, holes and disorder on demand. */
class FakeTopics implements Topics {
  readonly handlers = new Map<string, TopicHandler>();
  async listen(topic: string, handler: TopicHandler): Promise<void> {
    this.handlers.set(topic, handler);
  }
  async unlisten(topic: string): Promise<void> {
    this.handlers.delete(topic);
  }
  onReconnect(): void {}
  publish(channel: string, ...offsets: number[]): void {
    this.handlers.get(keys.topic(channel))?.(encodeTopicMessage(EPOCH, offsets.map((o) => pub(o))));
  }
  announce(channel: string, kind: 'join' | 'leave', user: string): void {
    this.handlers.get(keys.topic(channel))?.(encodeEvent(kind, JSON.stringify({ user, client: `c-${user}` })));
  }
}

/**
 * A channel's history: offsets 1..top, minus those `lost`. Reads wait while `gate` is set,
 * so the test decides when they answer; every read is recorded.
 */
class FakeHistory implements GapSource {
  top = 0;
  pad = 0;
  readonly lost = new Set<number>();
  readonly reads: { after: number; upTo: number }[] = [];
  gate: Promise<void> | undefined;
  failWith: Error | undefined;

  async position(): Promise<{ epoch: string; top: number }> {
    return { epoch: EPOCH, top: this.top };
  }

  async chunk(_channel: string, _epoch: string, after: number, upTo: number, maxBytes: number): Promise<BusPublication[]> {
    this.reads.push({ after, upTo });
    await this.gate;
    if (this.failWith) throw this.failWith;
    const out: BusPublication[] = [];
    let bytes = 0;
    for (let o = after + 1; o <= Math.min(upTo, this.top) && !this.lost.has(o); o++) {
      const p = pub(o, this.pad);
      if (out.length > 0 && bytes + p.json.length > maxBytes) break;
      bytes += p.json.length;
      out.push(p);
    }
    return out;
  }

  /** Holds every read until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    return () => {
      this.gate = undefined;
      open();
    };
  }
}

/** A subscriber that records what it was given; its queue drains only when the test says, if `paced`. */
class FakeSubscriber implements Subscriber {
  readonly frames: Buffer[] = [];
  readonly pacedFrames: boolean[] = [];
  gaps = 0;
  waits = 0;
  private drains: (() => void)[] = [];
  constructor(
    readonly recoveryMax = 1000,
    private readonly paced = false,
    readonly joinLeave = false,
  ) {}

  deliver(frame: Buffer, paced?: boolean): void {
    this.frames.push(frame);
    this.pacedFrames.push(paced === true);
  }
  writable(): Promise<void> {
    this.waits++;
    if (!this.paced) return Promise.resolve();
    return new Promise((resolve) => this.drains.push(resolve));
  }
  /** The client read its queue: the pending `writable()` resolves. */
  drain(): void {
    const waiting = this.drains;
    this.drains = [];
    for (const resolve of waiting) resolve();
  }
  get waiting(): number {
    return this.drains.length;
  }
  onGap(): void {
    this.gaps++;
  }
  get offsets(): number[] {
    return this.frames.map((f) => (JSON.parse(f.toString()) as { push: { pub: { offset: number } } }).push.pub.offset);
  }
}

function setup(chunkBytes = 1 << 20) {
  const topics = new FakeTopics();
  const history = new FakeHistory();
  const hub = new Hub(topics, keys, history, chunkBytes, pino({ level: 'silent' }));
  /** Attaches and starts a subscriber at `position` (a subscribe whose reply left it there). */
  const live = async (channel: string, sub: FakeSubscriber, position = history.top, fillTo = position) => {
    await hub.attach(channel, sub);
    hub.start(channel, sub, position, fillTo);
    return sub;
  };
  return { topics, history, hub, live };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Lets every pending promise and timer-free step of the hub run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

const wait = { timeoutMs: 2000, intervalMs: 1 };

describe('Hub: live delivery', () => {
  it('writes each publication once, in offset order, one frame shared by every subscriber', async () => {
    const { topics, live } = setup();
    const a = await live('c', new FakeSubscriber());
    const b = await live('c', new FakeSubscriber());
    topics.publish('c', 1, 2);
    topics.publish('c', 3);
    expect(a.offsets).toEqual([1, 2, 3]);
    expect(b.offsets).toEqual([1, 2, 3]);
    a.frames.forEach((frame, i) => expect(frame).toBe(b.frames[i]));
    expect(a.pacedFrames).toEqual([false, false, false]);
  });

  it('drops duplicates: a repeated message and a repeated offset within one', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    topics.publish('c', 1, 2);
    topics.publish('c', 1, 2);
    topics.publish('c', 2, 3, 3);
    await settle();
    expect(a.offsets).toEqual([1, 2, 3]);
    expect(history.reads).toEqual([]);
  });

  it('fills a hole from the gap source, then goes on live', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 4;
    topics.publish('c', 1);
    topics.publish('c', 4); // 2 and 3 were lost by pub/sub
    await waitFor('the hole 2..3 filled from history', () => a.offsets.length === 4, wait);
    expect(a.offsets).toEqual([1, 2, 3, 4]);
    expect(history.reads).toEqual([{ after: 1, upTo: 4 }]);
    topics.publish('c', 5);
    expect(a.offsets).toEqual([1, 2, 3, 4, 5]);
  });

  it('delivers out-of-order publications in order, reading back what came early', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 3;
    const open = history.hold();
    topics.publish('c', 3);
    topics.publish('c', 1);
    topics.publish('c', 2);
    expect(a.offsets).toEqual([]); // nothing jumps the fill
    open();
    await waitFor('1..3 delivered after the fill', () => a.offsets.length === 3, wait);
    expect(a.offsets).toEqual([1, 2, 3]);
  });

  it('raises the fill target with what arrives while it fills, instead of holding it', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 6;
    const open = history.hold();
    topics.publish('c', 3);
    topics.publish('c', 5, 6);
    open();
    await waitFor('1..6 delivered', () => a.offsets.length === 6, wait);
    expect(a.offsets).toEqual(range(1, 6));
  });
});

describe('Hub: giving up (the client gets 2500 and recovers)', () => {
  it('gives up on a gap wider than recovery_max, without reading it', async () => {
    const { topics, history, hub, live } = setup();
    const a = await live('c', new FakeSubscriber(3));
    history.top = 10;
    topics.publish('c', 1);
    topics.publish('c', 10);
    await waitFor('onGap for a gap of 9 > recovery_max 3', () => a.gaps === 1, wait);
    expect(a.offsets).toEqual([1]);
    expect(history.reads).toEqual([]);
    expect(hub.subscriberCount('c')).toBe(0);
  });

  it('fills a gap exactly recovery_max wide', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber(3));
    history.top = 4;
    topics.publish('c', 1);
    topics.publish('c', 4);
    await waitFor('2..4 filled', () => a.offsets.length === 4, wait);
    expect(a.gaps).toBe(0);
  });

  it('gives up on a gap the source no longer holds', async () => {
    const { topics, history, hub, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 3;
    history.lost.add(2);
    topics.publish('c', 1);
    topics.publish('c', 3);
    await waitFor('onGap for a hole history lost', () => a.gaps === 1, wait);
    expect(a.offsets).toEqual([1]);
    expect(hub.subscriberCount('c')).toBe(0);
  });

  it('gives up when the source fails', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 3;
    history.failWith = new Error('redis and postgres both away');
    topics.publish('c', 3);
    await waitFor('onGap after a failed read', () => a.gaps === 1, wait);
    expect(a.offsets).toEqual([]);
  });

  it('gives up part way when history loses the rest while it streams', async () => {
    const { history, live } = setup(3 * pub(1).json.length);
    history.top = 9;
    history.lost.add(5);
    const a = await live('c', new FakeSubscriber(), 0, 9);
    await waitFor('onGap at the lost offset 5', () => a.gaps === 1, wait);
    expect(a.offsets).toEqual([1, 2, 3, 4]);
  });
});

describe('Hub: chunked fill', () => {
  it('reads the next chunk only once the subscriber drained the last', async () => {
    const { history, live } = setup(3 * pub(1).json.length);
    history.top = 8;
    const a = await live('c', new FakeSubscriber(1000, true), 0, 8);
    for (const [chunk, expected] of [
      [1, range(1, 3)],
      [2, range(1, 6)],
      [3, range(1, 8)],
    ] as const) {
      await waitFor(`the fill waiting for the queue before chunk ${chunk}`, () => a.waiting === 1, wait);
      await settle();
      expect(history.reads).toHaveLength(chunk - 1); // no read while the queue is full
      a.drain();
      await waitFor(`chunk ${chunk} written`, () => a.offsets.length === expected.length, wait);
      expect(a.offsets).toEqual(expected);
    }
    expect(a.pacedFrames.every((paced) => paced)).toBe(true);
    expect(a.waits).toBe(3);
  });

  it('shares one read between subscribers at the same position, frames included', async () => {
    const { topics, history, live } = setup();
    const a = await live('c', new FakeSubscriber());
    const b = await live('c', new FakeSubscriber());
    history.top = 3;
    const open = history.hold();
    topics.publish('c', 3);
    await waitFor('the shared read started', () => history.reads.length === 1, wait);
    open();
    await waitFor('both filled', () => a.offsets.length === 3 && b.offsets.length === 3, wait);
    expect(history.reads).toEqual([{ after: 0, upTo: 3 }]);
    a.frames.forEach((frame, i) => expect(frame).toBe(b.frames[i]));
  });

  it('reads separately for subscribers at different positions', async () => {
    const { topics, history, live } = setup();
    history.top = 1;
    const a = await live('c', new FakeSubscriber(), 0); // its reply left it at 0
    const b = await live('c', new FakeSubscriber(), 1);
    history.top = 4;
    topics.publish('c', 4);
    await waitFor('both at 4', () => a.offsets.length === 4 && b.offsets.length === 3, wait);
    expect(history.reads.map((r) => r.after).sort()).toEqual([0, 1]);
  });
});

describe('Hub: the subscribe buffer', () => {
  it('holds publications until start, then releases them in order without duplicates', async () => {
    const { topics, history, hub } = setup();
    const a = new FakeSubscriber();
    await hub.attach('c', a);
    topics.publish('c', 3);
    topics.publish('c', 2, 3);
    topics.publish('c', 1);
    expect(a.offsets).toEqual([]); // nothing before the reply
    hub.start('c', a, 1); // the reply left the client at 1
    expect(a.offsets).toEqual([2, 3]);
    expect(history.reads).toEqual([]);
  });

  it('fills a hole in the buffer from history at start', async () => {
    const { topics, history, hub } = setup();
    const a = new FakeSubscriber();
    await hub.attach('c', a);
    history.top = 5;
    topics.publish('c', 1);
    topics.publish('c', 5);
    hub.start('c', a, 0);
    await waitFor('1..5 after the start', () => a.offsets.length === 5, wait);
    expect(a.offsets).toEqual(range(1, 5));
    expect(history.reads).toEqual([{ after: 1, upTo: 5 }]);
  });

  it('streams the rest of a recovery first, reading the buffer back with it', async () => {
    const { topics, history, hub } = setup(2 * pub(1).json.length);
    const a = new FakeSubscriber();
    await hub.attach('c', a);
    history.top = 6;
    topics.publish('c', 6);
    hub.start('c', a, 2, 5); // the reply carried up to 2; the top was 5
    await waitFor('3..6 streamed', () => a.offsets.length === 4, wait);
    expect(a.offsets).toEqual(range(3, 6));
    expect(a.pacedFrames.every((paced) => paced)).toBe(true);
    topics.publish('c', 7);
    expect(a.offsets.at(-1)).toBe(7);
  });

  it('forgets a subscriber that leaves mid-fill and writes it nothing more', async () => {
    const { topics, history, hub, live } = setup();
    const a = await live('c', new FakeSubscriber());
    history.top = 3;
    const open = history.hold();
    topics.publish('c', 3);
    await waitFor('the read started', () => history.reads.length === 1, wait);
    hub.detach('c', a);
    open();
    await settle();
    expect(a.offsets).toEqual([]);
    expect(a.gaps).toBe(0);
    expect(hub.channelCount).toBe(0);
  });
});

describe('Hub: join and leave', () => {
  /** The kind and user of each join/leave push a subscriber was given. */
  const events = (sub: FakeSubscriber) =>
    sub.frames.map((f) => {
      const push = (JSON.parse(f.toString()) as { push: { join?: { info: { user: string } }; leave?: { info: { user: string } } } }).push;
      return push.join ? `join ${push.join.info.user}` : `leave ${push.leave!.info.user}`;
    });

  it('go to the live subscribers that asked for them, and to no one else', async () => {
    const { topics, hub, live } = setup();
    const asked = await live('c', new FakeSubscriber(1000, false, true));
    const silent = await live('c', new FakeSubscriber());
    const buffering = new FakeSubscriber(1000, false, true);
    await hub.attach('c', buffering); // its subscribe reply is not written yet
    topics.announce('c', 'join', 'u1');
    topics.announce('c', 'leave', 'u2');
    expect(events(asked)).toEqual(['join u1', 'leave u2']);
    expect(silent.frames).toEqual([]);
    expect(buffering.frames).toEqual([]);

    hub.start('c', buffering, 0);
    topics.announce('c', 'join', 'u3');
    expect(events(buffering)).toEqual(['join u3']);
    expect(events(asked)).toEqual(['join u1', 'leave u2', 'join u3']);
  });

  it('cost nothing per member that did not ask: an event looks only at those that did', async () => {
    const { topics, hub, live } = setup();
    let looks = 0;
    // A subscriber that did not ask for join/leave, counting how often the hub asks it.
    const counted = (): Subscriber => ({
      deliver: () => {},
      writable: () => Promise.resolve(),
      onGap: () => {},
      recoveryMax: 1000,
      get joinLeave() {
        looks++;
        return false;
      },
    });
    for (let i = 0; i < 1000; i++) {
      const sub = counted();
      await hub.attach('c', sub);
      hub.start('c', sub, 0);
    }
    const asked = await live('c', new FakeSubscriber(1000, false, true));
    const atAttach = looks;
    for (let i = 0; i < 10; i++) topics.announce('c', 'join', `u${i}`);
    expect(looks - atAttach, 'members that did not ask, looked at per event').toBe(0);
    expect(asked.frames).toHaveLength(10);
    expect(hub.subscriberCount('c')).toBe(1001);
  });

  it('stop when the subscriber leaves, while the others keep them', async () => {
    const { topics, hub, live } = setup();
    const a = await live('c', new FakeSubscriber(1000, false, true));
    const b = await live('c', new FakeSubscriber(1000, false, true));
    topics.announce('c', 'join', 'u0');
    expect(a.frames[0]).toBe(b.frames[0]); // encoded once, shared
    hub.detach('c', a);
    topics.announce('c', 'join', 'u1');
    expect(events(a)).toEqual(['join u0']);
    expect(events(b)).toEqual(['join u0', 'join u1']);
    hub.detach('c', b);
    expect(hub.channelCount).toBe(0);
  });
});
