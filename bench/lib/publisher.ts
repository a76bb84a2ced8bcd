/**
 * One raw-protocol publisher connection whose every publish is identified (payload `p`, `n`,
 * send time `t`), so acknowledgements land in the AckLedger and publish→ack times are known.
 * Sends at a fixed rate (paced by the clock, not by timer counts: each tick sends what is
 * due so far), or keeps a window of publishes in flight (topped up in one WebSocket message
 * per turn of the event loop), or sends a burst whose acknowledgements it awaits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { payload, type AckLedger } from './integrity.js';
import { RawClient } from './raw-client.js';

const TICK_MS = 1;

export class Publisher {
  sent = 0;
  acked = 0;
  failed = 0;
  /** publish→ack, ms, of the publishes sent inside [measureFrom, measureTo). */
  readonly ackMs: number[] = [];
  measureFrom = Infinity;
  measureTo = Infinity;
  private readonly pending = new Map<number, { n: number; t: number }>();
  private client!: RawClient;
  private window: { size: number; channelOf: (n: number) => string; scheduled: boolean } | undefined;

  private constructor(
    private readonly p: number,
    private readonly ledger: AckLedger,
  ) {}

  /** `p` identifies the publisher in payloads; it must be unique within a scenario. */
  static async open(url: string, token: string, p: number, ledger: AckLedger): Promise<Publisher> {
    const pub = new Publisher(p, ledger);
    pub.client = await RawClient.open(url, token, { onReply: (id, ok) => pub.onReply(id, ok) });
    return pub;
  }

  get unanswered(): number {
    return this.pending.size;
  }

  /** Publishes `rate` a second to `channel` for `ms`; resolves when the last is sent. */
  async atRate(channel: string, rate: number, ms: number): Promise<void> {
    const start = performance.now();
    const first = this.sent;
    for (;;) {
      const elapsed = performance.now() - start;
      const due =
        Math.min(Math.floor((elapsed * rate) / 1000), Math.round((ms * rate) / 1000)) - (this.sent - first);
      if (due > 0) this.send(due, () => channel);
      if (elapsed >= ms) return;
      await sleep(TICK_MS);
    }
  }

  /** Sends `count` publishes at once and resolves when all are answered (or after `timeoutMs`). */
  async burst(channel: string, count: number, timeoutMs = 30_000): Promise<void> {
    this.send(count, () => channel);
    await this.drained(timeoutMs);
  }

  /** Keeps `size` publishes in flight until `stopWindow()`; publish n goes to `channelOf(n)`. */
  keepInFlight(size: number, channelOf: (n: number) => string): void {
    this.window = { size, channelOf, scheduled: false };
    this.topUp();
  }

  stopWindow(): void {
    this.window = undefined;
  }

  /** Resolves true once nothing is in flight, false after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.pending.size > 0) {
      if (performance.now() > deadline || this.client.closed) return false;
      await sleep(5);
    }
    return true;
  }

  close(): void {
    this.client.close();
  }

  private topUp(): void {
    const w = this.window;
    if (!w || this.client.closed) return;
    w.scheduled = false;
    const room = w.size - this.pending.size;
    if (room > 0) this.send(room, w.channelOf);
  }

  private send(count: number, channelOf: (n: number) => string): void {
    const t = performance.now();
    const items: [string, string][] = [];
    for (let i = 0; i < count; i++) {
      const n = this.sent + i;
      items.push([channelOf(n), payload(this.p, n, t)]);
    }
    const first = this.client.publishEach(items);
    for (let i = 0; i < count; i++) this.pending.set(first + i, { n: this.sent + i, t });
    this.sent += count;
  }

  private onReply(id: number, ok: boolean): void {
    const sent = this.pending.get(id);
    if (!sent) return;
    this.pending.delete(id);
    if (this.window && !this.window.scheduled) {
      this.window.scheduled = true;
      setImmediate(() => this.topUp());
    }
    if (!ok) {
      this.failed++;
      return;
    }
    this.acked++;
    this.ledger.ack(this.p, sent.n);
    if (sent.t >= this.measureFrom && sent.t < this.measureTo) this.ackMs.push(performance.now() - sent.t);
  }
}
