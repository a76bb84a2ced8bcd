/**
 * The integrity checks of the issue 11 workloads (a figure counts only with all of them at 0):
 *
 *  - at every subscriber: no offset lost (each of base+1..top arrived), none duplicated
 *    (arrived twice, or at or below the position the client started from), none out of
 *    order (arrived after a higher one);
 *  - in PostgreSQL: every acknowledged publish is stored (its payload names it: publisher
 *    `p`, sequence `n`), none is stored twice, and every channel's offsets are 1..n.
 *
 * "Top" is the channel's highest stored offset, read after the load has drained, so a
 * publish that was not acknowledged (an error, a timeout) but committed anyway must still
 * reach every subscriber: the subscriber's promise is the stream, not the acks.
 */
import pg from 'pg';

/** One subscriber's stream of one channel, from the position its subscribe reply gave it. */
export class StreamCheck {
  private base = 0;
  private seen = new Uint8Array(1024);
  private highest = 0;
  /** Every offset base+1..contiguousTo has arrived. */
  contiguousTo = 0;
  received = 0;
  duplicated = 0;
  outOfOrder = 0;
  /** performance.now() when contiguousTo first reached `target` (see `expect`). */
  completedAt: number | undefined;
  private target = Infinity;

  /** The position the client starts from (its subscribe reply's offset, or its recovery offset). */
  start(base: number): void {
    this.base = base;
    this.highest = base;
    this.contiguousTo = base;
  }

  /** Marks `completedAt` once every offset up to `top` has arrived. */
  expect(top: number): void {
    this.target = top;
    this.checkComplete();
  }

  add(offset: number): void {
    this.received++;
    const i = offset - this.base - 1;
    if (i < 0 || this.has(i)) {
      this.duplicated++;
      return;
    }
    this.mark(i);
    if (offset < this.highest) this.outOfOrder++;
    else this.highest = offset;
    while (this.has(this.contiguousTo - this.base)) this.contiguousTo++;
    this.checkComplete();
  }

  /** Offsets of base+1..top that never arrived. */
  lost(top: number): number {
    let n = 0;
    for (let i = 0; i < top - this.base; i++) if (!this.has(i)) n++;
    return n;
  }

  get startedAt(): number {
    return this.base;
  }

  private checkComplete(): void {
    if (this.completedAt === undefined && this.contiguousTo >= this.target)
      this.completedAt = performance.now();
  }

  private has(i: number): boolean {
    return i < this.seen.length && this.seen[i] === 1;
  }

  private mark(i: number): void {
    if (i >= this.seen.length) {
      const grown = new Uint8Array(Math.max(i + 1, this.seen.length * 2));
      grown.set(this.seen);
      this.seen = grown;
    }
    this.seen[i] = 1;
  }
}

export interface StreamIntegrity {
  subscribers: number;
  /** Deliveries the subscribers should have had (top − base, summed). */
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Subscribers missing at least one offset. */
  incomplete: number;
}

/** Sums the checks of many subscribers; `topOf` gives each one's channel top. */
export function streamIntegrity(
  subs: { check: StreamCheck; channel: string }[],
  topOf: (channel: string) => number,
): StreamIntegrity {
  const out: StreamIntegrity = {
    subscribers: subs.length,
    expected: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    incomplete: 0,
  };
  for (const { check, channel } of subs) {
    const top = topOf(channel);
    const lost = check.lost(top);
    out.expected += Math.max(0, top - check.startedAt);
    out.delivered += check.received;
    out.lost += lost;
    out.duplicated += check.duplicated;
    out.outOfOrder += check.outOfOrder;
    if (lost > 0) out.incomplete++;
  }
  return out;
}

/** Resolves true once every subscriber has its channel's top, false after `timeoutMs`. */
export function waitComplete(
  subs: { check: StreamCheck; channel: string }[],
  topOf: (channel: string) => number,
  timeoutMs: number,
): Promise<boolean> {
  return waitFor(() => subs.every((s) => s.check.contiguousTo >= topOf(s.channel)), timeoutMs);
}

/** Polls `check` every few ms: true once it holds, false after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/**
 * A publish's data: 64 bytes of JSON naming its publisher and sequence (and, for latency,
 * its send time in `t`, which the raw client reads from the push without decoding it).
 */
export function payload(p: number, n: number, t?: number): string {
  const head =
    t === undefined ? `{"p":${p},"n":${n},"pad":"` : `{"t":${t.toFixed(3)},"p":${p},"n":${n},"pad":"`;
  return `${head}${'x'.repeat(Math.max(0, 64 - head.length - 2))}"}`;
}

const KEY = /"p":(\d+),"n":(\d+)/;

/** The publishes that were acknowledged (a success reply: committed, guarantee 1). */
export class AckLedger {
  private readonly keys = new Set<string>();

  ack(p: number, n: number): void {
    this.keys.add(`${p}:${n}`);
  }

  get size(): number {
    return this.keys.size;
  }

  values(): IterableIterator<string> {
    return this.keys.values();
  }
}

export interface StoredIntegrity {
  channels: number;
  stored: number;
  /** Every channel's offsets are exactly 1..count. */
  gapless: boolean;
  ackedNotStored: number;
  storedTwice: number;
  /** Channel → highest stored offset. */
  tops: Map<string, number>;
}

/** Reads back every publication of the channels starting with `prefix` and checks them against `acked`. */
export async function storedIntegrity(
  databaseUrl: string,
  prefix: string,
  acked: AckLedger,
): Promise<StoredIntegrity> {
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => {}); // the server may be killed under us (deadline, signal); the query fails instead
  await db.connect();
  try {
    const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const { rows } = await db.query<{ channel: string; offset: string; data: string }>(
      `select channel, "offset"::text as "offset", data from publications where channel like $1`,
      [pattern],
    );
    const counts = new Map<string, { n: number; hi: number }>();
    const stored = new Set<string>();
    let storedTwice = 0;
    for (const row of rows) {
      const c = counts.get(row.channel) ?? { n: 0, hi: 0 };
      c.n++;
      c.hi = Math.max(c.hi, Number(row.offset));
      counts.set(row.channel, c);
      const m = KEY.exec(row.data);
      if (!m) continue;
      const key = `${m[1]}:${m[2]}`;
      if (stored.has(key)) storedTwice++;
      stored.add(key);
    }
    let ackedNotStored = 0;
    for (const key of acked.values()) if (!stored.has(key)) ackedNotStored++;
    // Offsets are ≥ 1 and unique per channel (the primary key), so n == max means 1..n.
    const gapless = [...counts.values()].every((c) => c.n === c.hi);
    return {
      channels: counts.size,
      stored: rows.length,
      gapless,
      ackedNotStored,
      storedTwice,
      tops: new Map([...counts].map(([channel, c]) => [channel, c.hi])),
    };
  } finally {
    await db.end();
  }
}

/** All the checks together: what the result's `integrity` carries and whether the run passes. */
export function integrityReport(streams: StreamIntegrity, stored: StoredIntegrity) {
  const failures =
    streams.lost +
    streams.duplicated +
    streams.outOfOrder +
    stored.ackedNotStored +
    stored.storedTwice +
    (stored.gapless ? 0 : 1);
  const { tops: _tops, ...storedFigures } = stored;
  return { ok: failures === 0, failures, ...streams, ...storedFigures };
}
