/**
 * How much one reply may carry: a count and a byte bound on the publications' JSON.
 *
 * Issue 9: `history` with `limit: -1` on 300 publications of 60 KB was one 17.5 MiB frame,
 * and a recovery of 10,000 of them built ~650 MB in the gateway. Every read for a reply now
 * goes through a budget, and reads in batches sized by what is left of it, so PostgreSQL and
 * Redis stop being read once the reply is full rather than read in full and trimmed.
 *
 * The rule: publications are taken in order while their JSON (plus a comma each) stays within
 * `maxBytes` less a fixed allowance for the reply's envelope, so the whole reply frame stays
 * within `maxBytes`. The first publication is always taken, however large: a reply always
 * moves the reader forward, and the client pages on with `since` = the last offset it got.
 */
import type { BusPublication } from '../bus/topic.js';

/** Room kept for the reply around the publications (`{"id":N,"subscribe":{…,"publications":[`…). */
export const REPLY_ENVELOPE_BYTES = 512;
/** The first batch is small: 16 publications of 60 KB already fill a 1 MiB reply. */
const FIRST_BATCH = 16;
/** No single read asks for more rows than this, whatever the budget left. */
const MAX_BATCH = 1000;

export class ReplyBudget {
  private readonly maxBytes: number;
  private bytes = 0;
  private taken = 0;
  private full = false;

  constructor(
    private readonly maxCount: number,
    maxBytes: number,
  ) {
    this.maxBytes = Math.max(1, maxBytes - REPLY_ENVELOPE_BYTES);
  }

  /** Nothing more fits: the count is reached, or a publication did not fit the bytes left. */
  get done(): boolean {
    return this.full || this.taken >= this.maxCount;
  }

  /** The longest prefix of `pubs` that fits; what does not fit ends the reply. */
  take(pubs: BusPublication[]): BusPublication[] {
    let n = 0;
    for (const pub of pubs) {
      const size = Buffer.byteLength(pub.json) + 1;
      if (this.taken >= this.maxCount || (this.taken > 0 && this.bytes + size > this.maxBytes)) {
        this.full = this.taken < this.maxCount;
        break;
      }
      this.bytes += size;
      this.taken++;
      n++;
    }
    // A first publication larger than the budget fills it alone: nothing more is read.
    if (this.bytes >= this.maxBytes) this.full = true;
    return n === pubs.length ? pubs : pubs.slice(0, n);
  }

  /**
   * How many publications to read next: as many as the bytes left hold at the mean size seen
   * so far (at least one, to learn whether the next fits), within the count left.
   */
  nextBatch(): number {
    const left = this.maxCount - this.taken;
    if (this.taken === 0) return Math.max(1, Math.min(left, FIRST_BATCH));
    const fits = Math.floor((this.maxBytes - this.bytes) / (this.bytes / this.taken));
    return Math.max(1, Math.min(left, fits, MAX_BATCH));
  }
}

/**
 * Reads batch after batch, each sized by the budget, from `start` on, until the budget is
 * spent or a batch comes back shorter than asked (the end of what is stored, or a hole).
 * `read(cursor, n)` returns up to `n` publications after `cursor` in reading order; the next
 * cursor is the last offset it returned.
 */
export async function readWithin(
  budget: ReplyBudget,
  start: number,
  read: (cursor: number, n: number) => Promise<BusPublication[]>,
): Promise<BusPublication[]> {
  const out: BusPublication[] = [];
  let cursor = start;
  while (!budget.done) {
    const n = budget.nextBatch();
    const got = await read(cursor, n);
    for (const pub of budget.take(got)) out.push(pub);
    if (got.length < n) break;
    cursor = got[got.length - 1]!.offset;
  }
  return out;
}
