/**
 * A connection's outgoing queue. Frames written during one tick leave as one WebSocket
 * message (joined with '\n', which the client splits on), so a burst of publications costs
 * one send per socket instead of one per publication. Frames are Buffers encoded once by
 * the hub and shared by every subscriber; they always go out as *text* frames, because the
 * JSON client cannot decode binary ones (PROTOCOL.md A.2).
 */
import type { WebSocket } from 'ws';

const NEWLINE = Buffer.from('\n');

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
  private frames: Buffer[] = [];
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
    const buf = typeof frame === 'string' ? Buffer.from(frame) : frame;
    this.frames.push(buf);
    this.bytes += buf.length;
    this.scheduler.mark(this);
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

function joinFrames(frames: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < frames.length; i++) {
    if (i > 0) parts.push(NEWLINE);
    parts.push(frames[i]!);
  }
  return Buffer.concat(parts);
}
