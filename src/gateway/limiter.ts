/**
 * A token bucket per connection: `rate` commands per second on average, `burst` at once.
 * A command over the limit is answered with 111 (temporary: the SDK retries later).
 *
 * A client that keeps going regardless is closed with 3013, so it cannot keep the gateway
 * busy answering it: each refused command adds one to a debt, each allowed one pays one
 * back, and a debt over the burst closes it. So a client a little over the limit is only
 * answered 111 now and then, while one sending more than twice what it may is closed within
 * a few seconds. (Counting only refusals *in a row*, as this did before issue 12, never
 * closed anyone: at any rate a real client can send, a token refills between two refusals.)
 *
 * It is for abuse, not for pacing (issue 12): it counts only commands that nothing else
 * slows down. Publishes that get queued are flow-controlled instead (the connection's and
 * the partition's backlogs pause the socket: ./backlog.ts, src/ingest/flow.ts), so a client
 * publishing as fast as the pipeline commits never meets it; a publish refused before it
 * was queued (bad request, permission) takes a token like any other command.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  /** Refused commands not yet paid back by allowed ones. */
  private debt = 0;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** 'ok', 'limited' (answer 111) or 'abusive' (close 3013). */
  take(): 'ok' | 'limited' | 'abusive' {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      if (this.debt > 0) this.debt--;
      return 'ok';
    }
    this.debt++;
    return this.debt > this.burst ? 'abusive' : 'limited';
  }
}
