/**
 * A raw WebSocket client for protocol tests that the SDK cannot express: malformed input,
 * hand-built batches, exact frame and close-code checks. It records every frame the server
 * sends (with its text/binary flag), splits frames into JSON messages on '\n' as the SDK
 * does, and lets a test wait for the next message, a reply to one id, or the close.
 */
import WebSocket from 'ws';

/** A message from the server: one line of a frame, parsed. */
export type Message = Record<string, unknown>;

export interface Frame {
  text: string;
  isBinary: boolean;
}

export interface CloseEvent {
  code: number;
  reason: string;
}

export class RawClient {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Every message (non-blank line of a frame) received, parsed, in order. */
  readonly messages: Message[] = [];
  closeEvent: CloseEvent | undefined;
  private cursor = 0;
  private nextId = 1;
  /** Re-run on every message and on close (event-driven, so a thousand waits stay fast). */
  private readonly watchers = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
      this.frames.push({ text, isBinary });
      for (const line of text.split('\n')) if (line.trim() !== '') this.messages.push(parseMessage(line));
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closeEvent = { code, reason: reason.toString('utf8') };
      this.notify();
    });
    ws.on('error', () => {}); // a close follows; tests look at closeEvent
  }

  static async open(url: string, timeoutMs = 5000, headers: Record<string, string> = {}): Promise<RawClient> {
    const ws = new WebSocket(url, { headers });
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`websocket to ${url} did not open within ${timeoutMs} ms`)),
        timeoutMs,
      );
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
    return client;
  }

  /** Sends text (or bytes, as a binary frame unless `binary: false`) exactly as given. */
  send(data: string | Buffer, opts: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: opts.binary ?? typeof data !== 'string' });
  }

  /** Sends `{"id":N,"<method>":body}` and returns N. */
  command(method: string, body: unknown = {}): number {
    const id = this.nextId++;
    this.send(JSON.stringify({ id, [method]: body }));
    return id;
  }

  /** The next message not yet taken by next(). */
  async next(what = 'a message', timeoutMs = 5000): Promise<Message> {
    const message = await this.until(what, () => this.messages[this.cursor], timeoutMs);
    this.cursor++;
    return message;
  }

  /**
   * The reply to command `id`, wherever it is among the received messages; next() then
   * continues after it (what came before the reply is skipped, but stays in `messages`).
   */
  async reply(id: number, timeoutMs = 5000): Promise<Message> {
    const at = await this.until(
      `reply to command ${id}`,
      () => this.messages.findIndex((m) => m.id === id) + 1,
      timeoutMs,
    );
    this.cursor = Math.max(this.cursor, at);
    return this.messages[at - 1]!;
  }

  /** Sends a command and waits for its reply. */
  call(method: string, body: unknown = {}, timeoutMs = 5000): Promise<Message> {
    return this.reply(this.command(method, body), timeoutMs);
  }

  /** Connects with `token`; throws unless the reply is a success. */
  async connect(token: string): Promise<Message> {
    const reply = await this.call('connect', { token, name: 'raw' });
    if (!reply.connect) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Resolves with the close code and reason once the server (or anyone) closed the socket. */
  closed(timeoutMs = 5000): Promise<CloseEvent> {
    return this.until('socket close', () => this.closeEvent, timeoutMs);
  }

  /**
   * Resolves with `check()` once it is truthy, re-checking on every message and on close;
   * rejects after `timeoutMs` saying what did not happen and what did arrive.
   */
  until<T>(what: string, check: () => T, timeoutMs = 5000): Promise<NonNullable<T>> {
    return new Promise((resolve, reject) => {
      const watch = (): void => {
        const value = check();
        if (!value) return;
        this.watchers.delete(watch);
        clearTimeout(timer);
        resolve(value as NonNullable<T>);
      };
      const timer = setTimeout(() => {
        this.watchers.delete(watch);
        const close = this.closeEvent
          ? `; socket closed ${this.closeEvent.code} "${this.closeEvent.reason}"`
          : '';
        const last = this.messages.slice(-3).map((m) => JSON.stringify(m).slice(0, 200));
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for: ${what} (received ${this.messages.length} messages, last ${last.join(' | ') || 'none'}${close})`,
          ),
        );
      }, timeoutMs);
      this.watchers.add(watch);
      watch();
    });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.terminate();
  }

  private notify(): void {
    for (const watch of [...this.watchers]) watch();
  }
}

/** A line that is not a JSON object is kept as `{unparsable: line}`, for the test to fail on. */
function parseMessage(line: string): Message {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Message;
  } catch {
    // fall through
  }
  return { unparsable: line };
}

/** What a tapped SDK socket sent and received, frame by frame. */
export interface Tap {
  sent: string[];
  received: string[];
}

/**
 * A `ws` WebSocket class for the SDK's `websocket` option that records every frame, so a
 * test can see what the unmodified SDK put on the wire (a refresh, a pong) and what it got.
 */
export function tappedWebSocket(tap: Tap): new (address: string, protocols?: string | string[]) => WebSocket {
  return class TappedWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols);
      this.on('message', (data) => tap.received.push(String(data)));
      const send = this.send.bind(this) as (...a: unknown[]) => void;
      this.send = ((data: unknown, ...rest: unknown[]) => {
        tap.sent.push(String(data));
        send(data, ...rest);
      }) as WebSocket['send'];
    }
  };
}
