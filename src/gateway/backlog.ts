/**
 * What a connection has received and not finished with (issues 9 and 12): the commands
 * waiting their turn in the connection's chain, and the publishes that ran but await their
 * commit ack. Both are the client's work in progress on this gateway, so both count.
 *
 * Commands run one after another, and each waits until the client has read what the ones
 * before produced (Connection.dispatch); a publish only waits to be queued, then stays in
 * flight until a worker acknowledges its commit. A client that sends faster than its commands
 * run, that stops reading and so stalls them, or that keeps piling publishes on without
 * waiting for their acks, would otherwise grow this backlog, and the gateway's memory (and
 * the partitions' queues), without bound. So: over the high-water mark the socket is no
 * longer read (TCP then pushes back on the client, whose own buffers fill); at or under the
 * low-water mark reading resumes. Pausing is backpressure, not a refusal: a legitimate client
 * is only slowed, never answered 111 (issue 12: a bulk sync keeping 50–100 publishes in flight
 * is exactly what the SDK's promise-returning `publish` invites).
 *
 * After a pause `ws` still hands over what it had already read from the socket, so the
 * backlog may pass the high-water mark by about one socket read. Only a client that takes it
 * past the hard limit regardless is closed (3013).
 */

export interface BacklogLimit {
  commands: number;
  bytes: number;
}

export interface BacklogLimits {
  /** Pause reading above this. */
  high: BacklogLimit;
  /** Resume reading at or below this. */
  low: BacklogLimit;
  /** Close the connection above this. */
  hard: BacklogLimit;
}

/**
 * A legitimate SDK sends connect plus at most a channel limit's worth of subscribes in one
 * frame, and keeps at most a bounded number of publishes in flight (a bulk sync: 50–100).
 * Past 256 commands (waiting or in flight) or 4 MiB the client outpaces the pipeline or
 * stopped reading, and waits; resuming at 128 keeps a full pipe for the one that only
 * outpaces it. The bytes allow 100 publications in flight of 40 KiB each before a pause.
 * The hard limit is far beyond what one socket read can add after a pause.
 */
export const BACKLOG_LIMITS: BacklogLimits = {
  high: { commands: 256, bytes: 4 << 20 },
  low: { commands: 128, bytes: 2 << 20 },
  hard: { commands: 8192, bytes: 16 << 20 },
};

/** The part of a `ws` WebSocket the backlog drives. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export class Backlog {
  private commands = 0;
  private bytes = 0;
  private paused = false;

  constructor(
    private readonly socket: Pausable,
    private readonly limits: BacklogLimits = BACKLOG_LIMITS,
  ) {}

  /** Counts a frame in. False when it takes the backlog past the hard limit: close the client. */
  add(commands: number, bytes: number): boolean {
    this.commands += commands;
    this.bytes += bytes;
    const { hard } = this.limits;
    if (this.commands > hard.commands || this.bytes > hard.bytes) return false;
    this.adjust();
    return true;
  }

  /** Counts a frame out once its commands ran. */
  remove(commands: number, bytes: number): void {
    this.commands -= commands;
    this.bytes -= bytes;
    this.adjust();
  }

  /**
   * Counts a publish in flight (queued for a worker, its ack not back) until the returned
   * function is called; calling it again does nothing. Never closes the client: a publish
   * only goes in flight from a frame already counted in, which the hard limit has passed.
   */
  hold(bytes: number): () => void {
    this.commands++;
    this.bytes += bytes;
    this.adjust();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.remove(1, bytes);
    };
  }

  private adjust(): void {
    const { high, low } = this.limits;
    if (!this.paused && (this.commands > high.commands || this.bytes > high.bytes)) {
      this.paused = true;
      this.socket.pause();
    } else if (this.paused && this.commands <= low.commands && this.bytes <= low.bytes) {
      this.paused = false;
      this.socket.resume();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Commands waiting or in flight. */
  get pending(): number {
    return this.commands;
  }
}
