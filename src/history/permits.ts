/**
 * A counting semaphore: at most `size` holders at once, the others wait in arrival order.
 *
 * History pages and recovery chunks each take one while they read (issue 9). A reply is
 * bounded in bytes, but a thousand of them read at the same moment are not: the permits
 * bound how many replies' worth of publications a gateway holds in memory at once, and a
 * burst of heavy reads queues here instead of crowding PostgreSQL and Redis.
 */
export class Permits {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  /** Runs `work` once a permit is free; the permit is given back however `work` ends. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the permit straight to the oldest waiter, so a stream of newcomers cannot starve it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
