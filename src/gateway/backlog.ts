/**
 * The commands a connection has received but not run yet (issue 9).
 *
 * Commands run one after another, and each waits until the client has read what the ones
 * before produced (Connection.dispatch). A client that sends faster than its commands run,
 * or that stops reading and so stalls them, would otherwise grow this backlog, and the
 * gateway's memory, without bound. So: over the high-water mark the socket is no longer read
 * (TCP then pushes back on the client, whose own buffers fill); under the low-water mark
 * reading resumes. Pausing is backpressure, not a refusal: a legitimate client is only slowed.
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
 * frame, and keeps publishes moving (each waits only to be queued); 256 commands or 1 MiB
 * waiting means the client outpaces the gateway or stopped reading.
 */
export const BACKLOG_LIMITS: BacklogLimits = {
  high: { commands: 256, bytes: 1 << 20 },
  low: { commands: 64, bytes: 256 << 10 },
  hard: { commands: 8192, bytes: 8 << 20 },
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
    const { high, hard } = this.limits;
    if (this.commands > hard.commands || this.bytes > hard.bytes) return false;
    if (!this.paused && (this.commands > high.commands || this.bytes > high.bytes)) {
      this.paused = true;
      this.socket.pause();
    }
    return true;
  }

  /** Counts a frame out once its commands ran. */
  remove(commands: number, bytes: number): void {
    this.commands -= commands;
    this.bytes -= bytes;
    const { low } = this.limits;
    if (this.paused && this.commands <= low.commands && this.bytes <= low.bytes) {
      this.paused = false;
      this.socket.resume();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }
}
