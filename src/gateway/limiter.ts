/**
 * A token bucket per connection: `rate` commands per second on average, `burst` at once.
 * A command over the limit is answered with 111 (temporary: the SDK retries later); a
 * client that keeps going regardless — more rejected commands in a row than the burst —
 * is closed with 3013 so it cannot keep the gateway busy answering it.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private rejectedInARow = 0;

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
      this.rejectedInARow = 0;
      return 'ok';
    }
    this.rejectedInARow++;
    return this.rejectedInARow > this.burst ? 'abusive' : 'limited';
  }
}
