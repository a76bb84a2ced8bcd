/**
 * Bounded concurrency for the server HTTP API (issue 12): at most `maxInflight` requests run
 * at once on a gateway; the next `queueMax` wait in line, first come first served, for at
 * most `queueTimeoutMs`; anything beyond is answered at once with 503 and `Retry-After`.
 * Every request therefore ends in a result or a 503 within a known time, never silently: a
 * 503 means the request did not run at all (nothing was published), so repeating it is safe.
 *
 * Why a bound here: each running request holds its body (up to 1 MiB) and, for a publish, a
 * place in its partition's backlog until the commit, where a burst of them would otherwise
 * fill the backlog and earn its last-resort 111 (src/ingest/flow.ts). Queueing rather than
 * refusing at the bound absorbs bursts; the queue's own bounds keep a flood from turning
 * into unbounded memory or into requests that hang until the client gives up.
 *
 * A waiter whose client went away is dropped from the line (`abandon`), so a slot is never
 * handed to nobody.
 */

export interface ApiLimits {
  /** Requests running at once. */
  maxInflight: number;
  /** Requests waiting for a slot beyond those; one more is answered 503 at once. */
  queueMax: number;
  /** Longest wait for a slot; then 503. */
  queueTimeoutMs: number;
}

/** Frees a slot; calling it again does nothing. */
export type Release = () => void;

/** Why a request got no slot. */
export type Refusal = 'queue_full' | 'queue_timeout';

interface Waiter {
  grant(release: Release): void;
  refuse(reason: Refusal): void;
  timer: NodeJS.Timeout;
}

export class RequestLimiter {
  private active = 0;
  /** In arrival order (a Set keeps insertion order, and drops an abandoned waiter in O(1)). */
  private readonly line = new Set<Waiter>();

  constructor(private readonly limits: ApiLimits) {}

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.line.size;
  }

  /**
   * A slot: at once when one is free, else after waiting in line. Resolves with the release
   * function, or with the reason there is none (answer 503). `abandoned` is the client's
   * request going away: a waiter is then dropped, its promise never settles (no one listens).
   */
  acquire(abandoned?: (drop: () => void) => void): Promise<Release | Refusal> {
    if (this.active < this.limits.maxInflight) return Promise.resolve(this.take());
    if (this.line.size >= this.limits.queueMax) return Promise.resolve('queue_full');
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: resolve,
        refuse: resolve,
        timer: setTimeout(() => this.leave(waiter, 'queue_timeout'), this.limits.queueTimeoutMs),
      };
      waiter.timer.unref();
      this.line.add(waiter);
      abandoned?.(() => this.leave(waiter));
    });
  }

  private take(): Release {
    this.active++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.active--;
      this.next();
    };
  }

  /** Hands a freed slot to the first in line. */
  private next(): void {
    const first = this.line.values().next();
    if (first.done || this.active >= this.limits.maxInflight) return;
    this.line.delete(first.value);
    clearTimeout(first.value.timer);
    first.value.grant(this.take());
  }

  private leave(waiter: Waiter, reason?: Refusal): void {
    if (!this.line.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (reason) waiter.refuse(reason);
  }
}
