/**
 * What the fault tests measure: publishers that remember which of their publishes were
 * acknowledged, the publications PostgreSQL holds, and an audit that compares the two
 * with what each subscriber received.
 *
 * Every publication carries `{ k: "<publisher>-<seq>" }`, so a stored row and a received
 * publication can be traced back to the publish that made it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Centrifuge } from 'centrifuge';
import pg from 'pg';
import type { Received } from './client.js';
import { within } from './wait.js';

export interface PublishData {
  k: string;
}

/**
 * Publishes `count` messages in order, keeping up to `window` of them in flight, and
 * records each outcome. A publish that gets an error (an error reply, or the SDK's own
 * error when no reply came) is recorded as failed with its code: an error reply (code 100 and
 * up, from the server) means never committed (guarantee 1), the SDK's own codes (below 100:
 * timeout, connection closed) promise nothing either way.
 */
export class Publisher {
  /** Keys in the order they were sent. */
  readonly sent: string[] = [];
  readonly acked = new Set<string>();
  readonly failed = new Map<string, string>();
  /**
   * Key → the connection it went out on (0 = the connection the client had when this
   * publisher was made, 1 = the next, …): guarantee 3 is about one connection's publishes.
   * A publish made while the client is away goes out on the next connection (or fails).
   */
  readonly connectionOf = new Map<string, number>();
  private seq = 0;
  private connection = 0;

  constructor(
    readonly client: Centrifuge,
    readonly channel: string,
    readonly name: string,
  ) {
    if (client.state !== 'connected') this.connection = -1;
    client.on('connected', () => void this.connection++);
  }

  private connectionForNext(): number {
    return this.client.state === 'connected' ? this.connection : this.connection + 1;
  }

  get settled(): number {
    return this.acked.size + this.failed.size;
  }

  /** Resolves once every publish got its reply (or its error); fails after `timeoutMs`. */
  run(count: number, window = 16, timeoutMs = 60_000): Promise<void> {
    const before = this.settled;
    return within(
      () =>
        `publisher ${this.name} to get the replies to its ${count} publishes (has ${this.settled - before})`,
      this.publish(count, window),
      timeoutMs,
    );
  }

  private async publish(count: number, window: number): Promise<void> {
    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) {
      while (inflight.size >= window) await Promise.race(inflight);
      const key = `${this.name}-${this.seq++}`;
      this.sent.push(key);
      this.connectionOf.set(key, this.connectionForNext());
      const data: PublishData = { k: key };
      const done: Promise<void> = this.client.publish(this.channel, data).then(
        () => void this.acked.add(key),
        (err: { code?: number; message?: string }) =>
          void this.failed.set(key, `${err?.code ?? '?'} ${err?.message ?? ''}`),
      );
      const tracked = done.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.all(inflight);
  }

  /**
   * Steady traffic: one publish every `intervalMs` (at most `window` in flight) until
   * `signal` aborts or `max` have been sent; resolves once every publish it sent has got its
   * reply or error (the SDK's call timeout bounds each).
   */
  async stream(opts: { signal: AbortSignal; max: number; intervalMs?: number; window?: number }): Promise<void> {
    const { signal, max, intervalMs = 20, window = 8 } = opts;
    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < max && !signal.aborted; i++) {
      while (inflight.size >= window && !signal.aborted) await Promise.race(inflight);
      if (signal.aborted) break;
      const key = `${this.name}-${this.seq++}`;
      this.sent.push(key);
      this.connectionOf.set(key, this.connectionForNext());
      const data: PublishData = { k: key };
      const done: Promise<void> = this.client.publish(this.channel, data).then(
        () => void this.acked.add(key),
        (err: { code?: number; message?: string }) =>
          void this.failed.set(key, `${err?.code ?? '?'} ${err?.message ?? ''}`),
      );
      const tracked = done.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
      await sleep(intervalMs);
    }
    await Promise.all(inflight);
  }
}

export interface StoredRow {
  offset: number;
  key: string;
}

/** The channel's publications in PostgreSQL, in offset order. */
export async function storedPublications(databaseUrl: string, channel: string): Promise<StoredRow[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ offset: string; data: string }>(
      'select "offset", data from publications where channel = $1 order by "offset"',
      [channel],
    );
    return rows.map((r) => ({ offset: Number(r.offset), key: (JSON.parse(r.data) as PublishData).k }));
  } finally {
    await db.end();
  }
}

export interface SubscriberAudit {
  name: string;
  received: number;
  duplicates: number;
  outOfOrder: number;
  /** Stored publications this subscriber never received. */
  missing: number;
  /** Received publications that are not stored, or whose data is not the stored data. */
  unexpected: number;
}

/** Failures that are error replies from the server (code ≥ 100), not the SDK's own errors. */
export function isErrorReply(why: string): boolean {
  return Number(why.split(' ')[0]) >= 100;
}

export interface Audit {
  test: string;
  sent: number;
  acknowledged: number;
  /** Publishes that failed: error replies plus the SDK's own errors (no reply came). */
  errorReplies: number;
  /** Guarantee 1, second half: publishes answered with an error reply that PostgreSQL holds. */
  errorRepliedButStored: number;
  stored: number;
  /** Stored offsets that are not exactly 1..stored. */
  offsetGaps: number;
  /** Same publish stored twice, plus every duplicate delivery to a subscriber. */
  duplicates: number;
  /** Deliveries whose offset is not above the previous one, over all subscribers. */
  outOfOrder: number;
  /** Acknowledged publishes not stored, plus stored publications a subscriber did not get. */
  missing: number;
  /** Of `missing`: acknowledged publishes PostgreSQL does not hold (guarantee 1). */
  ackedLost: number;
  /** Of `missing`: stored publications some subscriber did not get, over all subscribers. */
  missingAtSubscribers: number;
  /** Received publications that were never stored (or differ from what was stored). */
  unexpected: number;
  /**
   * Guarantee 3: publishes of one connection stored in another order than sent, or
   * acknowledged publishes of one publisher stored in another order than sent.
   */
  fifoViolations: number;
  /** What fifoViolations counted, as "key@offset before key@offset (connection n)". */
  fifoDetails: string[];
  /**
   * A failure: publishes of an older connection of a publisher that got an error reply yet
   * were stored after publishes of a newer one (e.g. run by a frozen gateway once it thawed).
   * An error reply means never committed, so there can be none (issue 12).
   */
  reorderedAcrossReconnects: number;
  /**
   * Not a failure: the same for publishes that got no reply at all (the SDK's own timeout or
   * closed connection): a frozen gateway reads them from its socket when it thaws, after
   * the client gave up on it, and nothing can tell it they are stale. The app knows their
   * outcome is unknown.
   */
  unansweredReorderedAcrossReconnects: number;
  subscribers: SubscriberAudit[];
}

export function auditRun(
  test: string,
  input: {
    publishers: Publisher[];
    stored: StoredRow[];
    subscribers: { name: string; received: Received[] }[];
  },
): Audit {
  const { publishers, stored } = input;
  const offsetOf = new Map<string, number>();
  let storedTwice = 0;
  for (const row of stored) {
    if (offsetOf.has(row.key)) storedTwice++;
    else offsetOf.set(row.key, row.offset);
  }
  const keyAt = new Map(stored.map((r) => [r.offset, r.key]));
  const offsetGaps = stored.filter((r, i) => r.offset !== i + 1).length;

  let ackedMissing = 0;
  let errorRepliedButStored = 0;
  let fifoViolations = 0;
  let reorderedAcrossReconnects = 0;
  let unansweredReorderedAcrossReconnects = 0;
  const fifoDetails: string[] = [];
  for (const p of publishers) {
    for (const key of p.acked) if (!offsetOf.has(key)) ackedMissing++;
    for (const [key, why] of p.failed) if (isErrorReply(why) && offsetOf.has(key)) errorRepliedButStored++;
    // Guarantee 3: what one connection sent is stored in that order; and since an ack
    // means committed, acknowledged publishes keep their order across reconnects too.
    const lastOn = new Map<number, { key: string; offset: number }>();
    let lastAcked = { key: '', offset: 0 };
    /** connection → the lowest offset stored from it. */
    const lowestOn = new Map<number, number>();
    for (const key of p.sent) {
      const offset = offsetOf.get(key);
      if (offset === undefined) continue;
      const connection = p.connectionOf.get(key) ?? 0;
      const before = lastOn.get(connection);
      const acked = p.acked.has(key);
      if ((before && offset <= before.offset) || (acked && offset <= lastAcked.offset)) {
        fifoViolations++;
        const prev = before && offset <= before.offset ? before : lastAcked;
        fifoDetails.push(`${prev.key}@${prev.offset} before ${key}@${offset} (connection ${connection})`);
      }
      lastOn.set(connection, { key, offset });
      if (acked) lastAcked = { key, offset };
      lowestOn.set(connection, Math.min(offset, lowestOn.get(connection) ?? offset));
    }
    // Unacknowledged publishes of an older connection committed after something a newer
    // connection sent (e.g. a gateway froze with them in its socket buffer and ran them when
    // it thawed): a failure if the client was told they failed, else allowed but shown.
    for (const key of p.sent) {
      const offset = offsetOf.get(key);
      if (offset === undefined || p.acked.has(key)) continue;
      const connection = p.connectionOf.get(key) ?? 0;
      if (![...lowestOn].some(([c, lowest]) => c > connection && lowest < offset)) continue;
      const why = p.failed.get(key);
      if (why !== undefined && isErrorReply(why)) reorderedAcrossReconnects++;
      else unansweredReorderedAcrossReconnects++;
    }
  }

  const subscribers = input.subscribers.map(({ name, received }): SubscriberAudit => {
    const seen = new Set<number>();
    let duplicates = 0;
    let outOfOrder = 0;
    let unexpected = 0;
    let previous = 0;
    for (const r of received) {
      if (seen.has(r.offset)) duplicates++;
      seen.add(r.offset);
      if (r.offset <= previous) outOfOrder++;
      previous = r.offset;
      if (keyAt.get(r.offset) !== (r.data as PublishData | undefined)?.k) unexpected++;
    }
    const missing = stored.filter((r) => !seen.has(r.offset)).length;
    return { name, received: received.length, duplicates, outOfOrder, missing, unexpected };
  });

  const sum = (f: (s: SubscriberAudit) => number) => subscribers.reduce((n, s) => n + f(s), 0);
  return {
    test,
    sent: publishers.reduce((n, p) => n + p.sent.length, 0),
    acknowledged: publishers.reduce((n, p) => n + p.acked.size, 0),
    errorReplies: publishers.reduce((n, p) => n + p.failed.size, 0),
    errorRepliedButStored,
    stored: stored.length,
    offsetGaps,
    duplicates: storedTwice + sum((s) => s.duplicates),
    outOfOrder: sum((s) => s.outOfOrder),
    missing: ackedMissing + sum((s) => s.missing),
    ackedLost: ackedMissing,
    missingAtSubscribers: sum((s) => s.missing),
    unexpected: sum((s) => s.unexpected),
    fifoViolations,
    fifoDetails,
    reorderedAcrossReconnects,
    unansweredReorderedAcrossReconnects,
    subscribers,
  };
}

/**
 * A short pause before an audit, once every count has been reached, so that a publication
 * delivered twice (or late) has the time to show up in it. Not a performance bound.
 */
export function settle(ms = 300): Promise<void> {
  return sleep(ms);
}

/** One line in the CI log per test. */
export function printAudit(audit: Audit): void {
  const { subscribers, fifoDetails, ...totals } = audit;
  console.log(`[audit] ${JSON.stringify(totals)}`);
  for (const s of subscribers) console.log(`[audit]   ${audit.test} / ${JSON.stringify(s)}`);
  for (const d of fifoDetails.slice(0, 20)) console.log(`[audit]   ${audit.test} / publisher order broken: ${d}`);
}

/**
 * A fixed-width table, one row per audit: the traffic, then every count that must be zero
 * (acknowledged-but-lost, error-replied-but-stored, duplicates, out-of-order,
 * missing-at-subscriber, offset gaps, unexpected, publisher-order violations, reorderings of
 * error-replied publishes), and last the reorderings of unanswered publishes, which are allowed.
 */
export function auditTable(audits: Audit[]): string {
  const head = [
    'fault',
    'sent',
    'acked',
    'errors',
    'stored',
    'acked-but-lost',
    'error-but-stored',
    'duplicates',
    'out-of-order',
    'missing-at-sub',
    'offset-gaps',
    'unexpected',
    'fifo',
    'reordered-across-reconnects',
    'unanswered-reordered (allowed)',
  ];
  const rows = audits.map((a) => [
    a.test,
    ...[a.sent, a.acknowledged, a.errorReplies, a.stored, a.ackedLost, a.errorRepliedButStored, a.duplicates]
      .concat([a.outOfOrder, a.missingAtSubscribers, a.offsetGaps, a.unexpected, a.fifoViolations])
      .concat([a.reorderedAcrossReconnects, a.unansweredReorderedAcrossReconnects])
      .map(String),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/** What auditFailures must return: every one of them zero, whatever the fault. */
export const NO_FAILURES: Readonly<Record<string, number>> = Object.freeze({
  offsetGaps: 0,
  duplicates: 0,
  outOfOrder: 0,
  missing: 0,
  unexpected: 0,
  fifoViolations: 0,
  errorRepliedButStored: 0,
  reorderedAcrossReconnects: 0,
});

/** The parts of an audit that must be zero whatever the fault. */
export function auditFailures(audit: Audit): Record<string, number> {
  return {
    offsetGaps: audit.offsetGaps,
    duplicates: audit.duplicates,
    outOfOrder: audit.outOfOrder,
    missing: audit.missing,
    unexpected: audit.unexpected,
    fifoViolations: audit.fifoViolations,
    errorRepliedButStored: audit.errorRepliedButStored,
    reorderedAcrossReconnects: audit.reorderedAcrossReconnects,
  };
}
