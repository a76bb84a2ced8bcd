/**
 * Reads for history and recovery. Redis holds a bounded, recent window of each channel
 * (the cache the worker writes); PostgreSQL holds everything still retained. A read asks
 * Redis first and takes from PostgreSQL whatever part of the range Redis does not hold, so
 * the result is the same whichever store answered: contiguous offsets, no duplicates.
 *
 * Positions (epoch + top offset) come from the Redis copy of the channels row, and from
 * PostgreSQL when Redis has lost it or it is older than what a client has already seen.
 *
 * It is the `GapSource` of recovery (./recovery.ts), which decides what to read and when.
 *
 * Reads for a reply (`page`, `chunk`) are bounded in bytes as well as in count, read in
 * batches that stop once the reply is full (./budget.ts), and run at most HEAVY_READS at a
 * time per gateway (./permits.ts), so no reply and no burst of them can hold an unbounded
 * amount of publications in memory (issue 9).
 */
import type { RedisClient } from '../bus/client.js';
import type { BusPublication } from '../bus/topic.js';
import type { Keys } from '../bus/keys.js';
import { publicationJson } from '../protocol/publication.js';
import type { Db } from '../db/client.js';
import { readBefore, readPosition, readRange, type ChannelPosition, type PublicationRow } from '../db/repos/publications.js';
import { readCatchup, type CatchupChannel } from '../db/repos/catchup.js';
import { latestVersions, publicationAt, type StoredVersion } from '../db/repos/edits.js';
import { metrics } from '../observability/metrics.js';
import { withScripts, type ScriptedRedis } from '../bus/scripts.js';
import { readWithin, ReplyBudget } from './budget.js';
import { Permits } from './permits.js';
import { contiguousFrom, type GapSource } from './recovery.js';

export type { ChannelPosition };

export interface HistoryPage {
  publications: BusPublication[];
  epoch: string;
  top: number;
}

export interface PageRequest {
  limit: number;
  sinceOffset?: number | undefined;
  reverse: boolean;
  /** Bytes of publications the reply may carry (the first one always comes). */
  maxBytes: number;
}

/**
 * History pages and recovery chunks read at once per gateway; the others wait their turn.
 * With 1–4 MiB per reply this bounds what reads hold to some tens of MiB.
 */
export const HEAVY_READS = 32;

export class HistoryReader implements GapSource {
  private readonly redis: ScriptedRedis;
  private readonly permits = new Permits(HEAVY_READS);
  /** Identical Redis reads in flight at once share one round trip (see SharedReads). */
  private readonly shared = new SharedReads();

  /**
   * `replica` (DATABASE_READ_URL): where publications are read first. Positions always come
   * from `db`, the primary, which also answers every read the replica cannot answer in full.
   */
  /**
   * Catch-up across channels (./catchup.ts), from the primary (unread counts need the read
   * cursors, which only it has for sure), under the permits of the other heavy reads.
   */
  catchup(user: string, wanted: { channel: string; after: number }[], limit: number, maxBytes: number): Promise<CatchupChannel[]> {
    return this.permits.run(() => readCatchup(this.db, user, wanted, limit, maxBytes));
  }

  /** The publication at `offset` (PostgreSQL, the truth), for an edit or delete to check its target. */
  publicationAt(channel: string, offset: number): Promise<StoredVersion | undefined> {
    return publicationAt(this.db, channel, offset);
  }

  /** The last edit or delete of each of `offsets` (`history` with `latest: true`). */
  latestVersions(channel: string, offsets: number[]): Promise<Map<number, StoredVersion & { op: string }>> {
    return latestVersions(this.db, channel, offsets);
  }

  constructor(
    redis: RedisClient,
    private readonly db: Db,
    private readonly keys: Keys,
    private readonly cacheTtlS: number,
    private readonly replica?: Db,
  ) {
    this.redis = withScripts(redis);
  }

  /** Where the sequence of reads stands: `position(…, joinAfter)` joins only reads sent after it. */
  mark(): number {
    return this.shared.mark();
  }

  /**
   * `atLeast`: an offset some client already saw; a cached top below it is stale.
   * `joinAfter`: a `mark()`; only a read in flight that was sent after it is joined (a
   * subscriber's position must come from a read sent once it buffers, see SharedReads).
   */
  async position(channel: string, atLeast = 0, joinAfter?: number): Promise<ChannelPosition> {
    const key = this.keys.meta(channel);
    const [epoch, top] = await this.shared.run(`p\n${key}`, () => this.redis.hmget(key, 'e', 't'), joinAfter);
    if (epoch !== null && epoch !== undefined && top !== null && top !== undefined && Number(top) >= atLeast) {
      return { epoch, top: Number(top) };
    }
    const truth = await readPosition(this.db, channel);
    if (truth.epoch !== '') {
      // Refill the cache so the next subscriber does not ask PostgreSQL again. Forward-only,
      // so it can never undo a newer position a worker wrote meanwhile.
      await this.redis.tidingsAdvancePosition(this.keys.meta(channel), truth.epoch, truth.top, this.cacheTtlS);
    }
    return truth;
  }

  /**
   * Publications with offsets after+1 .. upTo (at most `limit` of them), oldest first. The
   * result is contiguous from after+1; it is shorter than asked only where PostgreSQL no
   * longer retains the publications.
   */
  async range(
    channel: string,
    epoch: string,
    after: number,
    upTo: number,
    limit: number,
    source?: { fromDb: number },
  ): Promise<BusPublication[]> {
    const last = Math.min(upTo, after + limit);
    if (last <= after) return [];
    const cached = await this.cachedRange(channel, after, last);
    const firstCached = cached[0]?.offset ?? last + 1;
    if (firstCached === after + 1) return cached;
    const fromDb = await this.storedRange(channel, epoch, after, firstCached - 1);
    if (source) source.fromDb += fromDb.length;
    return contiguousFrom(after + 1, [...fromDb, ...cached]);
  }

  /**
   * Centrifugo history semantics: forward from `since`, or newest first with `reverse`; at
   * most `limit` publications and `maxBytes` of them, so the client pages on with `since`.
   */
  page(channel: string, opts: PageRequest): Promise<HistoryPage> {
    return this.permits.run(async () => {
      const pos = await this.position(channel, opts.sinceOffset ?? 0);
      if (opts.limit <= 0 || pos.top === 0) return { publications: [], epoch: pos.epoch, top: pos.top };
      const budget = new ReplyBudget(opts.limit, opts.maxBytes);
      const publications = opts.reverse
        ? await this.backward(channel, pos, Math.min(opts.sinceOffset ?? pos.top + 1, pos.top + 1), budget)
        : await this.forward(channel, pos, opts.sinceOffset ?? 0, budget);
      return { publications, epoch: pos.epoch, top: pos.top };
    });
  }

  /**
   * Recovery's read: publications after+1 .. upTo, oldest first, contiguous from after+1, as
   * many as `maxBytes` holds (at least one when any is stored). The caller continues from the
   * last offset it got; shorter than the budget only where the stores no longer hold the rest.
   */
  chunk(
    channel: string,
    epoch: string,
    after: number,
    upTo: number,
    maxBytes: number,
    source?: { fromDb: number },
  ): Promise<BusPublication[]> {
    if (upTo <= after) return Promise.resolve([]);
    const budget = new ReplyBudget(upTo - after, maxBytes);
    return this.permits.run(() =>
      readWithin(budget, after, (cursor, n) => this.range(channel, epoch, cursor, upTo, n, source)),
    );
  }

  private forward(channel: string, pos: ChannelPosition, after: number, budget: ReplyBudget): Promise<BusPublication[]> {
    return readWithin(budget, after, async (cursor, n) => {
      const pubs = await this.range(channel, pos.epoch, cursor, pos.top, n);
      // History, unlike recovery, shows what is still stored: when the start of the range is
      // gone (history_remove, retention), it begins at the oldest publication kept.
      if (pubs.length > 0 || cursor !== after || cursor >= pos.top) return pubs;
      return this.storedRange(channel, pos.epoch, cursor, pos.top, n);
    });
  }

  /** Newest first, before `before`: PostgreSQL's index read backwards, a batch at a time. */
  private async backward(channel: string, pos: ChannelPosition, before: number, budget: ReplyBudget): Promise<BusPublication[]> {
    // readWithin moves its cursor to the last offset read, which going backwards is the next `before`.
    return readWithin(budget, before, async (cursor, n) => {
      // Complete when it starts at the newest one asked for: a lagging replica lacks the newest.
      const rows = await this.fromReplicaFirst(
        (db) => readBefore(db, channel, cursor, n),
        (got) => got[0]?.offset === cursor - 1,
      );
      return rows.map((r) => ({ offset: r.offset, json: publicationJson(r, pos.epoch) }));
    });
  }

  /** The cache's contiguous run that ends at `last` (a hole below it is read from PostgreSQL). */
  private async cachedRange(channel: string, after: number, last: number): Promise<BusPublication[]> {
    const key = this.keys.history(channel);
    const raw = await this.shared.run(`r\n${key}\n${after}\n${last}`, () =>
      this.redis.zrangebyscore(key, after + 1, last, 'WITHSCORES'),
    );
    const pubs: BusPublication[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) pubs.push({ offset: Number(raw[i + 1]), json: raw[i]! });
    let start = pubs.length;
    while (start > 0 && pubs[start - 1]!.offset === (start < pubs.length ? pubs[start]!.offset - 1 : last)) start--;
    return pubs.slice(start);
  }

  private async storedRange(channel: string, epoch: string, after: number, upTo: number, limit = upTo - after): Promise<BusPublication[]> {
    // Complete when the page is full or reaches upTo: a lagging replica lacks the newest.
    const rows = await this.fromReplicaFirst(
      (db) => readRange(db, channel, after, upTo, limit),
      (got) => got.length === limit || got.at(-1)?.offset === upTo,
    );
    return rows.map((r) => ({ offset: r.offset, json: publicationJson(r, epoch) }));
  }

  /**
   * A read of publications from the replica when there is one, and from the primary when the
   * replica's answer is not `complete` or it fails. A replica applies commits in order, and a
   * channel's offsets are assigned in commit order, so what it holds of a channel is a prefix:
   * a lagging one comes back short at the newest end, which `complete` checks. (It may still
   * return publications deleted on the primary moments ago, by retention or history_remove:
   * stale, never out of order or missing.)
   */
  private async fromReplicaFirst(read: (db: Db) => Promise<PublicationRow[]>, complete: (rows: PublicationRow[]) => boolean) {
    if (this.replica) {
      try {
        const rows = await read(this.replica);
        if (complete(rows)) {
          metrics.replicaReads.inc({ outcome: 'served' });
          return rows;
        }
        metrics.replicaReads.inc({ outcome: 'behind' });
      } catch {
        metrics.replicaReads.inc({ outcome: 'failed' });
      }
    }
    return read(this.db);
  }
}

/**
 * Reads in flight, by what they ask: a second identical read joins the first instead of
 * making its own round trip. A reconnect storm has thousands of subscribers of one channel
 * ask for the same position and the same cached range within milliseconds (bench R1: 5,000
 * at once), and each answer cost the gateway a Redis reply to decode. Joining a read that
 * was sent a moment before one's own request is safe for ranges: a cached range that lacks
 * the newest publications is completed from PostgreSQL, and a position older than what the
 * client saw is refused by the caller (`atLeast`).
 *
 * A subscriber's position is different: it must come from a read sent after the subscriber
 * began buffering its channel's publications. Otherwise a publication committed between the
 * earlier read and the attach is in neither the position nor the buffer (its topic message
 * reached the hub first), and the subscriber would not get it until the next publication
 * showed the gap. Such a caller passes a `mark()` taken once it buffers, and joins only reads
 * sent after it. Callers only read the shared result.
 */
class SharedReads {
  /** Reads sent so far: a read's number orders it against marks. */
  private sent = 0;
  private readonly reads = new Map<string, { seq: number; pending: Promise<unknown> }>();

  mark(): number {
    return this.sent;
  }

  run<T>(key: string, read: () => Promise<T>, joinAfter = -1): Promise<T> {
    const current = this.reads.get(key);
    if (current && current.seq > joinAfter) return current.pending as Promise<T>;
    const seq = ++this.sent;
    const pending = read().finally(() => {
      // A newer read of the same key may have taken its place meanwhile.
      if (this.reads.get(key)?.seq === seq) this.reads.delete(key);
    });
    this.reads.set(key, { seq, pending });
    return pending;
  }
}
