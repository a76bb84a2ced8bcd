/**
 * Server pings and the pong check of one connection (PROTOCOL.md A.4): a ping every
 * interval, whatever else is sent (the client's watchdog expects it); with a pong timeout, a
 * client that has not answered the last ping within it is gone, and the connection closes it
 * (3012 "no pong", a reconnect code). An interval of 0 sends no pings: the client then runs
 * no watchdog either. Timers do not keep the process up.
 */
export class Heartbeat {
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;

  constructor(
    private readonly intervalS: number,
    private readonly pongTimeoutS: number,
    private readonly ping: () => void,
    private readonly onNoPong: () => void,
  ) {}

  start(): void {
    if (this.intervalS <= 0) return;
    this.pingTimer = setInterval(() => this.beat(), this.intervalS * 1000).unref();
  }

  /** The client answered. A pong with no ping before it is accepted (Go closes; we are lenient). */
  pong(): void {
    this.awaitingPong = false;
  }

  stop(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  private beat(): void {
    this.ping();
    if (this.pongTimeoutS <= 0) return;
    this.awaitingPong = true;
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.awaitingPong && this.onNoPong(), this.pongTimeoutS * 1000).unref();
  }
}
