/**
 * A connection's outgoing queue. Frames written during one tick leave as one WebSocket
 * message (joined with '\n', which the client splits on), so a burst of publications costs
 * one send per socket instead of one per publication. Push frames are Buffers encoded once
 * by the hub and shared by every subscriber; replies are strings, converted once per
 * message rather than once each. Everything goes out as *text* frames, because the JSON
 * client cannot decode binary ones (PROTOCOL.md A.2).
 */
import type { WebSocket } from 'ws';

const NEWLINE = 0x0a;

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
  private frames: (Buffer | string)[] = [];
  private bytes = 0;
  private closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly scheduler: FlushScheduler,
    private readonly maxBytes: number,
  ) {}

  /**
   * Queues a frame. Returns false when the client is not reading fast enough: what waits
   * here and in the socket's own buffer exceeds the bound. The caller disconnects it
   * (3008 "slow") rather than let one client's backlog grow without limit.
   */
  push(frame: Buffer | string, bounded = true): boolean {
    if (this.closed) return true;
    // Strings (replies) stay strings until the flush joins them: one conversion per message.
    this.frames.push(frame);
    this.bytes += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    if (this.frames.length === 1) this.scheduler.mark(this); // already marked otherwise
    return !bounded || this.bytes + this.ws.bufferedAmount <= this.maxBytes;
  }

  flush(): void {
    if (this.closed || this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    const payload = frames.length === 1 ? frames[0]! : joinFrames(frames);
    this.ws.send(payload, { binary: false });
  }

  /** Writes what is queued now (a reply before a close frame, say). */
  flushNow(): void {
    this.flush();
  }

  close(): void {
    this.closed = true;
    this.frames = [];
    this.bytes = 0;
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
