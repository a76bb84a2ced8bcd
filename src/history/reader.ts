/**
 * Reads for history and recovery. Redis holds a bounded, recent window of each channel
 * (the cache the worker writes); PostgreSQL holds everything still retained. A read asks
 * Redis first and takes from PostgreSQL whatever part of the range Redis does not hold, so
 * the result is the same whichever store answered: contiguous offsets, no duplicates.
 *
 * Positions (epoch + top offset) come from the Redis copy of the channels row, and from
 * PostgreSQL when Redis has lost it or it is older than what a client has already seen.
 */
import type { Redis } from 'ioredis';
import type { BusPublication } from '../channels/bus.js';
import type { Keys } from '../channels/keys.js';
import { publicationJson } from '../channels/publication.js';
import type { Db } from '../db/client.js';
import { readBefore, readPosition, readRange, type ChannelPosition } from '../db/repos/publications.js';
import { withPositionScript, type PositionRedis } from '../persist/fanout.js';

export type { ChannelPosition };

export interface HistoryPage {
  publications: BusPublication[];
  epoch: string;
  top: number;
}

export class HistoryReader {
  private readonly redis: PositionRedis;

  constructor(
    redis: Redis,
    private readonly db: Db,
    private readonly keys: Keys,
    private readonly cacheTtlS: number,
  ) {
    this.redis = withPositionScript(redis);
  }

  /** `atLeast`: an offset some client already saw; a cached top below it is stale. */
  async position(channel: string, atLeast = 0): Promise<ChannelPosition> {
    const cached = await this.redis.hmget(this.keys.meta(channel), 'e', 't');
    const [epoch, top] = cached;
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
    if (source) source.fromDb = fromDb.length;
    return contiguousFrom(after + 1, [...fromDb, ...cached]);
  }

  /** Centrifugo history semantics: forward from `since`, or newest first with `reverse`. */
  async page(
    channel: string,
    opts: { limit: number; sinceOffset?: number | undefined; reverse: boolean },
  ): Promise<HistoryPage> {
    const pos = await this.position(channel, opts.sinceOffset ?? 0);
    if (opts.limit <= 0 || pos.top === 0) return { publications: [], epoch: pos.epoch, top: pos.top };
    if (!opts.reverse) {
      const after = opts.sinceOffset ?? 0;
      let pubs = await this.range(channel, pos.epoch, after, pos.top, opts.limit);
      // History, unlike recovery, shows what is still stored: when the start of the range is
      // gone (history_remove, retention), it begins at the oldest publication kept.
      if (pubs.length === 0 && after < pos.top) pubs = await this.storedRange(channel, pos.epoch, after, pos.top, opts.limit);
      return { publications: pubs, epoch: pos.epoch, top: pos.top };
    }
    const before = Math.min(opts.sinceOffset ?? pos.top + 1, pos.top + 1);
    const rows = await readBefore(this.db, channel, before, opts.limit);
    const publications = rows.map((r) => ({ offset: r.offset, json: publicationJson(r, pos.epoch) }));
    return { publications, epoch: pos.epoch, top: pos.top };
  }

  /** The cache's contiguous run that ends at `last` (a hole below it is read from PostgreSQL). */
  private async cachedRange(channel: string, after: number, last: number): Promise<BusPublication[]> {
    const raw = await this.redis.zrangebyscore(this.keys.history(channel), after + 1, last, 'WITHSCORES');
    const pubs: BusPublication[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) pubs.push({ offset: Number(raw[i + 1]), json: raw[i]! });
    let start = pubs.length;
    while (start > 0 && pubs[start - 1]!.offset === (start < pubs.length ? pubs[start]!.offset - 1 : last)) start--;
    return pubs.slice(start);
  }

  private async storedRange(channel: string, epoch: string, after: number, upTo: number, limit = upTo - after): Promise<BusPublication[]> {
    const rows = await readRange(this.db, channel, after, upTo, limit);
    return rows.map((r) => ({ offset: r.offset, json: publicationJson(r, epoch) }));
  }
}

/** The longest run of consecutive offsets starting exactly at `first` (empty if it is missing). */
export function contiguousFrom(first: number, pubs: BusPublication[]): BusPublication[] {
  const out: BusPublication[] = [];
  for (const pub of pubs) {
    if (pub.offset !== first + out.length) break;
    out.push(pub);
  }
  return out;
}
