/**
 * A connection's outgoing queue. Frames written during one tick leave as one WebSocket
 * message (joined with '\n', which the client splits on), so a burst of publications costs
 * one send per socket instead of one per publication. Push frames are Buffers encoded once
 * by the hub and shared by every subscriber; replies are strings, converted once per
 * message rather than once each. A JSON connection's messages go out as *text* frames,
 * because the JSON client cannot decode binary ones (PROTOCOL.md A.2); a Protobuf one's
 * (`binary`) are length-delimited already and simply concatenated into a binary frame.
 *
 * Two kinds of frames, one bound (issue 9). Live pushes are *bounded*: when what the client
 * owes (queued here plus the socket's buffer) passes `maxBytes`, the push reports it and the
 * connection closes the client as slow (3008). Replies and recovery chunks are *paced*
 * instead: their producer waits for `writable()` (the client read enough to be under the
 * bound again) before it reads and pushes one, so a reply never makes the queue grow by more
 * than one reply, and a client that does not read simply gets nothing more. Paced bytes
 * still unsent are not held against live pushes, so a 1 MiB history reply on its way out
 * does not get the client closed for the next live publication.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebSocket } from 'ws';

const NEWLINE = 0x0a;
/** How often `writable()` looks again at a queue over its bound: soon at first, then seldom. */
const DRAIN_POLL_FIRST_MS = 2;
const DRAIN_POLL_MAX_MS = 200;

export class FlushScheduler {
  private readonly dirty = new Set<Outbox>();
  private scheduled = false;

  mark(outbox: Outbox): void {
    this.dirty.add(outbox);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flushAll());
  }

  private flushAll(): void {
    this.scheduled = false;
    const batch = [...this.dirty];
    this.dirty.clear();
    for (const outbox of batch) outbox.flush();
  }
}

export class Outbox {
  private frames: (Uint8Array | string)[] = [];
  private bytes = 0;
  /**
   * Paced bytes (replies, recovery chunks) that may still be unsent. Whatever has left the
   * process no longer counts: it is clipped to what is owed at each push. When paced frames
   * went out before live ones it overstates them by at most one reply or chunk, so live
   * pushes are held to `maxBytes` plus at most that much.
   */
  private paced = 0;
  private closed = false;
  private drained: Promise<void> | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly scheduler: FlushScheduler,
    private readonly maxBytes: number,
    private readonly binary = false,
  ) {}

  /**
   * Queues a frame. A bounded one returns false when the client is not reading fast enough:
   * the live bytes it owes exceed the bound. The caller disconnects it (3008 "slow") rather
   * than let one client's backlog grow without limit. An unbounded one (`bounded: false`)
   * is a paced reply or recovery frame: its producer waited for `writable()` first.
   */
  push(frame: Uint8Array | string, bounded = true): boolean {
    if (this.closed) return true;
    const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    const owed = this.pending();
    this.paced = Math.min(this.paced, owed);
    // Strings (replies) stay strings until the flush joins them: one conversion per message.
    this.frames.push(frame);
    this.bytes += size;
    if (this.frames.length === 1) this.scheduler.mark(this); // already marked otherwise
    if (!bounded) {
      this.paced += size;
      return true;
    }
    return owed + size - this.paced <= this.maxBytes;
  }

  /** Bytes the client has yet to receive: queued here and in the socket's buffer. */
  pending(): number {
    return this.bytes + this.ws.bufferedAmount;
  }

  /**
   * Resolves once the client has read enough that what it is owed is within the bound (at
   * once when it already is), or when the outbox closes: the caller re-checks its state.
   */
  writable(): Promise<void> {
    if (this.closed || this.pending() <= this.maxBytes) return Promise.resolve();
    this.drained ??= this.untilWritable();
    return this.drained;
  }

  /**
   * The socket has no public drain event; a poll that backs off costs a reading client a few
   * ms and one that never reads a few wake-ups a second. One poll per outbox, shared.
   */
  private async untilWritable(): Promise<void> {
    for (let delay = DRAIN_POLL_FIRST_MS; !this.closed && this.pending() > this.maxBytes; ) {
      await sleep(delay, undefined, { ref: false });
      delay = Math.min(delay * 2, DRAIN_POLL_MAX_MS);
    }
    this.drained = undefined;
  }

  flush(): void {
    if (this.closed || this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    if (this.binary) {
      this.ws.send(frames.length === 1 ? frames[0]! : Buffer.concat(frames as Uint8Array[]), { binary: true });
      return;
    }
    this.ws.send(frames.length === 1 ? frames[0]! : joinFrames(frames as (Buffer | string)[]), { binary: false });
  }

  /** Writes what is queued now (a reply before a close frame, say). */
  flushNow(): void {
    this.flush();
  }

  close(): void {
    this.closed = true;
    this.frames = [];
    this.bytes = 0;
    this.paced = 0;
  }
}

/** The frames joined with '\n': a string when all are strings, else one Buffer. */
function joinFrames(frames: (Buffer | string)[]): Buffer | string {
  let bytes = frames.length - 1;
  let strings = 0;
  for (const frame of frames) {
    if (typeof frame === 'string') strings++;
    else bytes += frame.length;
  }
  if (strings === frames.length) return (frames as string[]).join('\n');
  const parts = strings === 0 ? (frames as Buffer[]) : frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f));
  if (strings > 0) bytes = parts.reduce((n, p) => n + p.length, frames.length - 1);
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) out[at++] = NEWLINE;
    at += parts[i]!.copy(out, at);
  }
  return out;
}
