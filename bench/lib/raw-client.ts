/**
 * A minimal client of the Centrifugo JSON protocol over `ws`, for the load generator only:
 * connect, subscribe, pipelined publishes, answer pings, and count or hand over what
 * arrives (publications as offset + send time, found without decoding the JSON). It exists because one SDK instance per socket costs the load generator more CPU
 * than the server it measures, once there are 1,000 sockets or 20,000 publishes a second
 * on the same two cores; the latency scenario uses the official SDK instead.
 *
 * Frames are lines joined by '\n' both ways (PROTOCOL.md A.2).
 */
import WebSocket from 'ws';

const PUSH = Buffer.from('{"push"');
// A publication is `{"data":D,"offset":N,…}` (src/protocol/codec.ts encodePublicationJson):
// the offset always follows the data, so the first `,"offset":` after a push's start is its
// offset as long as the data carries no such key (the bench's payloads never do).
const OFFSET = Buffer.from(',"offset":');
const DATA = Buffer.from('"pub":{"data":{');
const SENT_AT = Buffer.from('"t":');
const NEWLINE = 0x0a;
const MAX_FRAME_CHARS = 16 * 1024;

export interface RawClientOptions {
  /** Called with each reply line that no `request` waits for (id, whether it is an error). */
  onReply?: (id: number, ok: boolean) => void;
  /** Called with each push line (not used in counting mode, nor for publications with onPublication). */
  onPush?: (line: string) => void;
  /**
   * Called with each publication push, found with buffer searches (no JSON decoding): its
   * offset, the number in its data's `"t"` key when that is the data's first key (the bench's
   * send time; NaN otherwise) and
   * `performance.now()` when the WebSocket message that carried it arrived.
   */
  onPublication?: (offset: number, sentAt: number, receivedAt: number) => void;
}

export class RawClient {
  private nextId = 1;
  private readonly waiters = new Map<
    number,
    { resolve(line: string): void; reject(err: Error): void; sync?: ((line: string) => void) | undefined }
  >();
  /** In counting mode pushes are only counted (a buffer search, no decoding). */
  private counting = false;
  pushes = 0;
  /** Pushes that are not publications (unsubscribe, disconnect, join/leave…), with the last one. */
  otherPushes = 0;
  lastOtherPush = '';
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

  /**
   * Sends one command (its body without braces or id) and resolves with the reply line.
   * `sync` sees the line as soon as it arrives, before any push that followed it in the same
   * message is handled (a promise continuation would run only after those).
   */
  request(body: string, timeoutMs = 30_000, sync?: (line: string) => void): Promise<string> {
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
        sync,
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

  /**
   * Queues publishes, each to its own channel, whose replies go to `onReply`, in as few
   * WebSocket messages as the size limit allows. Returns the id of the first one.
   */
  publishEach(items: readonly (readonly [channel: string, data: string])[]): number {
    const first = this.nextId;
    let frame = '';
    for (const [channel, data] of items) {
      const line = `{"id":${this.nextId++},"publish":{"channel":${JSON.stringify(channel)},"data":${data}}}`;
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
    const pushesOnly = data[0] === 0x7b && data[1] === 0x22 && data[2] === 0x70;
    if (this.counting && pushesOnly) {
      // Starts with {"p…: a batch of pushes (replies start with {"id"). Count without decoding.
      this.pushes += countOccurrences(data, PUSH);
      if (hasPingLine(data)) this.ws.send('{}');
      return;
    }
    if (this.opts.onPublication && pushesOnly) {
      this.scanPublications(data, performance.now());
      if (hasPingLine(data)) this.ws.send('{}');
      return;
    }
    this.onLines(data.toString('utf8'));
  }

  private onLines(text: string): void {
    const receivedAt = performance.now();
    for (const line of text.split('\n')) {
      if (line === '{}') {
        this.ws.send('{}');
      } else if (line.startsWith('{"id":')) {
        const id = parseInt(line.slice(6), 10);
        const waiter = this.waiters.get(id);
        if (waiter) {
          this.waiters.delete(id);
          waiter.sync?.(line);
          waiter.resolve(line);
        } else {
          this.opts.onReply?.(id, !line.includes('"error":{'));
        }
      } else if (line.startsWith('{"push"')) {
        if (this.counting) this.pushes++;
        else if (this.opts.onPublication) this.scanPublications(Buffer.from(line), receivedAt);
        else this.opts.onPush?.(line);
      }
    }
  }

  /** Each push in `data`: a publication goes to onPublication, anything else is counted. */
  private scanPublications(data: Buffer, receivedAt: number): void {
    let at = data.indexOf(PUSH);
    while (at >= 0) {
      const next = data.indexOf(PUSH, at + PUSH.length);
      const end = next < 0 ? data.length : next;
      const k = data.indexOf(OFFSET, at);
      if (k >= 0 && k < end) {
        // Only where the bench's payloads put it, first in the data: a search for "t" would
        // scan to the end of the message for every push without one (quadratic in big frames).
        const d = data.indexOf(DATA, at);
        const t =
          d >= 0 && d < k && startsWith(data, d + DATA.length, SENT_AT)
            ? d + DATA.length + SENT_AT.length
            : -1;
        const sentAt = t >= 0 ? readNumber(data, t) : NaN;
        this.opts.onPublication!(readNumber(data, k + OFFSET.length), sentAt, receivedAt);
      } else {
        this.otherPushes++;
        this.lastOtherPush = data.toString('utf8', at, Math.min(end, at + 300)).trim();
      }
      at = next;
    }
  }
}

function startsWith(data: Buffer, at: number, prefix: Buffer): boolean {
  if (at + prefix.length > data.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

/** The JSON number that starts at `from` (digits, sign, point, exponent). */
function readNumber(data: Buffer, from: number): number {
  let end = from;
  while (end < data.length) {
    const c = data[end]!;
    if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65 || c === 0x45) end++;
    else break;
  }
  return Number(data.toString('latin1', from, end));
}

/**
 * Offsets of the publications in a `subscribe` reply line (after `"publications":[`), in the
 * order they appear; the reply's own `"offset"` comes before that key and is not among them.
 */
export function replyPublicationOffsets(line: string): number[] {
  const start = line.indexOf('"publications":[');
  if (start < 0) return [];
  const buf = Buffer.from(line.slice(start));
  const out: number[] = [];
  for (let k = buf.indexOf(OFFSET); k >= 0; k = buf.indexOf(OFFSET, k + OFFSET.length)) {
    out.push(readNumber(buf, k + OFFSET.length));
  }
  return out;
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

/** What a `subscribe` reply line says (its result's own fields, not its publications). */
export interface SubscribeReply {
  error: string | undefined;
  offset: number;
  epoch: string;
  recovered: boolean;
}

export function parseSubscribeReply(line: string): SubscribeReply {
  const cut = line.indexOf('"publications":[');
  const head = cut < 0 ? line : line.slice(0, cut);
  const error = /"error":(\{[^}]*\})/.exec(head)?.[1];
  return {
    error,
    offset: Number(/"offset":(\d+)/.exec(head)?.[1] ?? 0),
    epoch: /"epoch":"([^"]*)"/.exec(head)?.[1] ?? '',
    recovered: head.includes('"recovered":true'),
  };
}
