/**
 * Recovery: bringing a subscriber from the position it claims (offset + epoch) up to the
 * channel's top with every publication once, in offset order, or saying plainly that it
 * cannot. The whole algorithm lives here, as in centrifuge's `internal/recovery`; callers
 * only decide when each step runs (STYLE.md habit 3, PROTOCOL.md D.3–D.4):
 *
 *   src/gateway/subscribe.ts   attach (buffer) → read the reply's chunk (`recoverFirstChunk`)
 *                              → reply → start, where the hub releases its buffer (`releaseBuffer`)
 *   src/channels/hub.ts        a hole in the live stream, or the rest of a recovery the reply did
 *                              not carry: read chunk after chunk (`readGapChunk`), write the run
 *                              that continues the position (`contiguousFrom`), give up past the
 *                              limit (`withinRecoveryMax`) or where history has lost the range
 *   src/history/reader.ts      merges the Redis and PostgreSQL parts of a range (`contiguousFrom`)
 *
 * The decision (PROTOCOL.md D.3): a position is recovered when its epoch is the stream's (or
 * empty, as Centrifugo accepts: a client that subscribed before the first publication never
 * got one), its offset is not ahead of the top, the gap is within the limit, and history still
 * holds the start of the gap. Anything else is an explicit outcome, never a partial replay: the
 * reply says `recovered` is absent, or the hub asks the client to resubscribe (`onGap`, 2500).
 *
 * One limit: the subscriber's namespace's `recovery_max`, for a subscribe and for every fill
 * the hub does later. TIDINGS_RECOVERY_MAX only feeds the namespace defaults
 * (src/config/namespaces.ts); nothing here reads configuration.
 *
 * Reads are bounded (issue 9): a chunk holds at most `maxBytes` of publications (at least one
 * when any is stored), read in batches that stop once it is full (./budget.ts), at most
 * HEAVY_READS at a time per gateway (./permits.ts); the hub reads the next chunk only once
 * the subscriber has drained the last.
 */
import type { BusPublication } from '../bus/topic.js';
import type { ChannelPosition } from '../db/repos/publications.js';
import { metrics } from '../observability/metrics.js';

/**
 * Where recovery reads history: the hub and a subscribe ask this, never a concrete reader
 * (src/history/reader.ts implements it; unit tests fake it).
 */
export interface GapSource {
  /** The channel's epoch and top; `atLeast`: an offset some client already saw (a cached top below it is stale). */
  position(channel: string, atLeast?: number): Promise<ChannelPosition>;
  /**
   * Publications after+1 .. upTo, oldest first, contiguous from after+1, as many as `maxBytes`
   * holds (at least one when any is stored). Shorter than asked only where history no longer
   * holds the rest; empty when it no longer holds after+1. `source.fromDb` counts those that
   * came from PostgreSQL.
   */
  chunk(
    channel: string,
    epoch: string,
    after: number,
    upTo: number,
    maxBytes: number,
    source?: { fromDb: number },
  ): Promise<BusPublication[]>;
}

/** Where a client says it is: the last offset it was given, in the epoch it was given it ('' for none). */
export interface ClaimedPosition {
  offset: number;
  epoch: string;
}

/** A recovery's first chunk, for the subscribe reply. */
export interface Recovered {
  publications: BusPublication[];
  /** How many of them PostgreSQL supplied (Redis no longer held them). */
  fromDb: number;
}

/**
 * The one limit: a gap from `from` (delivered) up to `to` (wanted) is recovered only when it
 * spans at most `recoveryMax` publications. `to` below `from`: an offset ahead of the stream,
 * which no read can close.
 */
export function withinRecoveryMax(from: number, to: number, recoveryMax: number): boolean {
  const missing = to - from;
  return missing >= 0 && missing <= recoveryMax;
}

/**
 * The decision before any read: same epoch (or none), not ahead of the top, within the limit.
 * An empty epoch is accepted as Centrifugo does (`isStreamRecovered`), and is no way around
 * the bounds: its gap is held to `recovery_max` and streamed like any other.
 */
export function canRecover(claim: ClaimedPosition, pos: ChannelPosition, recoveryMax: number): boolean {
  if (claim.epoch !== '' && claim.epoch !== pos.epoch) return false;
  return withinRecoveryMax(claim.offset, pos.top, recoveryMax);
}

/**
 * A subscribe's recovery: the first chunk of what the client missed (at most `maxBytes`), or
 * undefined when it cannot be recovered. With `maxBytes` 0 the chunk is a single publication:
 * proof that history still holds the start of the gap, for a reply that carries none.
 */
export async function recoverFirstChunk(
  source: GapSource,
  channel: string,
  claim: ClaimedPosition,
  pos: ChannelPosition,
  recoveryMax: number,
  maxBytes: number,
): Promise<Recovered | undefined> {
  const first = await readFirstChunk(source, channel, claim, pos, recoveryMax, maxBytes);
  metrics.recoveries.inc({ outcome: first === undefined ? 'not_recovered' : first.fromDb > 0 ? 'postgres' : 'cache' });
  return first;
}

async function readFirstChunk(
  source: GapSource,
  channel: string,
  claim: ClaimedPosition,
  pos: ChannelPosition,
  recoveryMax: number,
  maxBytes: number,
): Promise<Recovered | undefined> {
  if (!canRecover(claim, pos, recoveryMax)) return undefined;
  if (pos.top === claim.offset) return { publications: [], fromDb: 0 };
  const counter = { fromDb: 0 };
  const publications = await source.chunk(channel, pos.epoch, claim.offset, pos.top, maxBytes, counter);
  // A chunk is contiguous from offset+1: empty means history no longer holds the start of the gap.
  return publications.length > 0 ? { publications, fromDb: counter.fromDb } : undefined;
}

/**
 * The offset a subscribe reply leaves the client at: the client's own plus what the reply
 * carried when it recovered (the hub streams the rest), the top when it did not.
 */
export function replyPosition(claim: ClaimedPosition, pos: ChannelPosition, carried: BusPublication[] | undefined): number {
  return carried === undefined ? pos.top : claim.offset + carried.length;
}

/**
 * One chunk of a gap the hub fills, after+1 .. upTo, read at the channel's current epoch (a
 * position at least `upTo`: some subscriber has been told of it). Contiguous from after+1;
 * empty when history has lost the start of the range.
 */
export async function readGapChunk(
  source: GapSource,
  channel: string,
  after: number,
  upTo: number,
  maxBytes: number,
): Promise<BusPublication[]> {
  const pos = await source.position(channel, upTo);
  return source.chunk(channel, pos.epoch, after, upTo, maxBytes);
}

/** The longest run of consecutive offsets starting exactly at `first` (empty if it is missing). */
export function contiguousFrom<T extends { offset: number }>(first: number, pubs: readonly T[]): T[] {
  const out: T[] = [];
  for (const pub of pubs) {
    if (pub.offset !== first + out.length) break;
    out.push(pub);
  }
  return out;
}

/** What `start` does with the publications buffered during a subscribe. */
export interface Release<T> {
  /** Write these now, in this order: they continue the position without a gap. */
  deliver: T[];
  /** Then fill from history up to this offset (0: nothing to fill). */
  fillTo: number;
}

/**
 * The buffer merge, once the reply has been written (habit 3's merge and release). `position`:
 * where the reply left the client; `target`: the top the subscribe read, above `position` when
 * the reply carried only the first chunk of a recovery.
 *
 * With a target above the position, nothing buffered is written: it is read back from history
 * with the rest of the gap, so only the target it implies matters. Otherwise the buffer is
 * sorted, what the client already has and repeats are dropped, the run that continues the
 * position is written, and whatever lies beyond a hole is filled from history.
 */
export function releaseBuffer<T extends { offset: number }>(position: number, target: number, buffered: readonly T[]): Release<T> {
  if (target > position) {
    return { deliver: [], fillTo: buffered.reduce((top, pub) => Math.max(top, pub.offset), target) };
  }
  const sorted = [...buffered].sort((a, b) => a.offset - b.offset);
  const deliver: T[] = [];
  let at = position;
  for (const pub of sorted) {
    if (pub.offset <= at) continue; // already given: recovery overlap, or a repeated job
    if (pub.offset !== at + 1) break;
    deliver.push(pub);
    at = pub.offset;
  }
  const last = sorted.at(-1)?.offset ?? 0;
  return { deliver, fillTo: last > at ? last : 0 };
}
