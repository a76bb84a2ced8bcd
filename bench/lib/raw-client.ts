/**
 * A minimal client of the Centrifugo JSON protocol over `ws`, for the load generator only:
 * connect, subscribe, pipelined publishes, answer pings, and count or hand over what
 * arrives. It exists because one SDK instance per socket costs the load generator more CPU
 * than the server it measures, once there are 1,000 sockets or 20,000 publishes a second
 * on the same two cores; the latency scenario uses the official SDK instead.
 *
 * Frames are lines joined by '\n' both ways (PROTOCOL.md A.2).
 */
import WebSocket from 'ws';

const PUSH = Buffer.from('{"push"');
const NEWLINE = 0x0a;
const MAX_FRAME_CHARS = 16 * 1024;

export interface RawClientOptions {
  /** Called with each reply line that no `request` waits for (id, whether it is an error). */
  onReply?: (id: number, ok: boolean) => void;
  /** Called with each push line (not used in counting mode). */
  onPush?: (line: string) => void;
}

export class RawClient {
  private nextId = 1;
  private readonly waiters = new Map<number, { resolve(line: string): void; reject(err: Error): void }>();
  /** In counting mode pushes are only counted (a buffer search, no decoding). */
  private counting = false;
  pushes = 0;
  closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly opts: RawClientOptions,
  ) {
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.values()) w.reject(new Error('socket closed'));
      this.waiters.clear();
    });
    ws.on('error', () => {});
  }

  /** Opens the socket and completes `connect`; rejects on a refused or failed handshake. */
  static async open(
    url: string,
    token: string,
    opts: RawClientOptions = {},
    timeoutMs = 30_000,
  ): Promise<RawClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`handshake answered ${res.statusCode}`)),
      );
    });
    const client = new RawClient(ws, opts);
    const reply = await client.request(
      `"connect":{"token":${JSON.stringify(token)},"name":"bench"}`,
      timeoutMs,
    );
    if (reply.includes('"error"')) throw new Error(`connect failed: ${reply}`);
    return client;
  }

  /** Sends one command (its body without braces or id) and resolves with the reply line. */
  request(body: string, timeoutMs = 30_000): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`no reply to command ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, {
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.ws.send(`{"id":${id},${body}}`);
    });
  }

  async subscribe(channel: string): Promise<void> {
    const reply = await this.request(`"subscribe":{"channel":${JSON.stringify(channel)}}`);
    if (reply.includes('"error"')) throw new Error(`subscribe failed: ${reply}`);
  }

  /** From now on, pushes are counted in `pushes` and not decoded. */
  countPushes(): void {
    this.counting = true;
  }

  /**
   * Queues publishes whose replies go to `onReply`, in one WebSocket message. `data` must be
   * JSON text. Returns the id of the first one (the rest follow consecutively).
   */
  publishMany(channel: string, data: string[]): number {
    const first = this.nextId;
    const ch = JSON.stringify(channel);
    let frame = '';
    for (let i = 0; i < data.length; i++) {
      const line = `{"id":${this.nextId++},"publish":{"channel":${ch},"data":${data[i]}}}`;
      // Stay well under the server's message size limit (64 KiB by default; over it is close 1009).
      if (frame.length + line.length + 1 > MAX_FRAME_CHARS) {
        this.ws.send(frame);
        frame = '';
      }
      frame = frame ? `${frame}\n${line}` : line;
    }
    if (frame) this.ws.send(frame);
    return first;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(): void {
    this.closed = true;
    this.ws.terminate();
  }

  private onMessage(data: Buffer): void {
    if (isPingOnly(data)) {
      this.ws.send('{}');
      return;
    }
    if (this.counting && data[0] === 0x7b && data[1] === 0x22 && data[2] === 0x70) {
      // Starts with {"p…: a batch of pushes (replies start with {"id"). Count without decoding.
      this.pushes += countOccurrences(data, PUSH);
      if (hasPingLine(data)) this.ws.send('{}');
      return;
    }
    this.onLines(data.toString('utf8'));
  }

  private onLines(text: string): void {
    for (const line of text.split('\n')) {
      if (line === '{}') {
        this.ws.send('{}');
      } else if (line.startsWith('{"id":')) {
        const id = parseInt(line.slice(6), 10);
        const waiter = this.waiters.get(id);
        if (waiter) {
          this.waiters.delete(id);
          waiter.resolve(line);
        } else {
          this.opts.onReply?.(id, !line.includes('"error":{'));
        }
      } else if (line.startsWith('{"push"')) {
        if (this.counting) this.pushes++;
        else this.opts.onPush?.(line);
      }
    }
  }
}

function isPingOnly(data: Buffer): boolean {
  return data.length === 2 && data[0] === 0x7b && data[1] === 0x7d;
}

/** A `{}` line anywhere in a multi-line message. */
function hasPingLine(data: Buffer): boolean {
  let at = data.indexOf('{}');
  while (at >= 0) {
    const startsLine = at === 0 || data[at - 1] === NEWLINE;
    const endsLine = at + 2 === data.length || data[at + 2] === NEWLINE;
    if (startsLine && endsLine) return true;
    at = data.indexOf('{}', at + 2);
  }
  return false;
}

function countOccurrences(data: Buffer, needle: Buffer): number {
  let n = 0;
  let at = data.indexOf(needle);
  while (at >= 0) {
    n++;
    at = data.indexOf(needle, at + needle.length);
  }
  return n;
}
