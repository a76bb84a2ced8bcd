/**
 * Recovery's decisions (src/history/recovery.ts) without servers: the decision, the one
 * limit, contiguity, the buffer merge, and the reply's first chunk over a small in-memory
 * history. The same reads against real Redis and PostgreSQL are covered by
 * test/integration/protocol-subscribe.test.ts and reply-bounds.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { BusPublication } from '../../src/bus/topic.js';
import {
  canRecover,
  contiguousFrom,
  recoverFirstChunk,
  releaseBuffer,
  replyPosition,
  withinRecoveryMax,
  type GapSource,
} from '../../src/history/recovery.js';

const p = (offset: number): BusPublication => ({ offset, json: `{"offset":${offset}}` });
const offsets = (pubs: readonly { offset: number }[]) => pubs.map((x) => x.offset);
const pos = (top: number, epoch = 'abcdefgh') => ({ epoch, top });

describe('the decision', () => {
  it('recovers the same epoch, or none, within recovery_max and not ahead of the stream', () => {
    expect(canRecover({ offset: 5, epoch: 'abcdefgh' }, pos(8), 3)).toBe(true);
    expect(canRecover({ offset: 5, epoch: '' }, pos(8), 3)).toBe(true);
    expect(canRecover({ offset: 8, epoch: 'abcdefgh' }, pos(8), 0)).toBe(true);
  });

  it('refuses another epoch, an offset ahead of the top, and a gap wider than recovery_max', () => {
    expect(canRecover({ offset: 5, epoch: 'zzzzzzzz' }, pos(8), 100)).toBe(false);
    expect(canRecover({ offset: 9, epoch: 'abcdefgh' }, pos(8), 100)).toBe(false);
    expect(canRecover({ offset: 4, epoch: 'abcdefgh' }, pos(8), 3)).toBe(false);
    // The state-invalidation epoch "_" (PROTOCOL.md D.2) never matches, on purpose.
    expect(canRecover({ offset: 0, epoch: '_' }, pos(0), 100)).toBe(false);
  });

  it('holds an empty epoch to the same limit', () => {
    expect(canRecover({ offset: 0, epoch: '' }, pos(4), 3)).toBe(false);
  });

  it('has one limit, inclusive', () => {
    expect(withinRecoveryMax(10, 13, 3)).toBe(true);
    expect(withinRecoveryMax(10, 14, 3)).toBe(false);
    expect(withinRecoveryMax(10, 9, 3)).toBe(false);
  });
});

describe('contiguousFrom', () => {
  it('keeps the run that starts exactly where asked', () => {
    expect(offsets(contiguousFrom(3, [p(3), p(4), p(6)]))).toEqual([3, 4]);
    expect(contiguousFrom(3, [p(4), p(5)])).toEqual([]);
    expect(contiguousFrom(3, [])).toEqual([]);
  });
});

describe('releaseBuffer (the merge after the reply)', () => {
  it('sorts, drops what the client already has and repeats, and writes the run that continues', () => {
    const release = releaseBuffer(4, 4, [p(6), p(3), p(5), p(4), p(6), p(7)]);
    expect(offsets(release.deliver)).toEqual([5, 6, 7]);
    expect(release.fillTo).toBe(0);
  });

  it('fills a hole up to the highest buffered offset', () => {
    const release = releaseBuffer(4, 4, [p(9), p(5), p(7)]);
    expect(offsets(release.deliver)).toEqual([5]);
    expect(release.fillTo).toBe(9);
  });

  it('writes nothing buffered while a recovery still streams: it is read back with the rest', () => {
    expect(releaseBuffer(4, 10, [p(11), p(12)])).toEqual({ deliver: [], fillTo: 12 });
    expect(releaseBuffer(4, 10, [])).toEqual({ deliver: [], fillTo: 10 });
    expect(releaseBuffer(4, 10, [p(9)])).toEqual({ deliver: [], fillTo: 10 });
  });

  it('releases an empty buffer to nothing', () => {
    expect(releaseBuffer(4, 4, [])).toEqual({ deliver: [], fillTo: 0 });
  });

  it('does not reorder the buffer it was given', () => {
    const buffered = [p(6), p(5)];
    releaseBuffer(4, 4, buffered);
    expect(offsets(buffered)).toEqual([6, 5]);
  });
});

describe('replyPosition', () => {
  it('is the client offset plus what the reply carried, or the top when not recovered', () => {
    expect(replyPosition({ offset: 5, epoch: '' }, pos(20), [p(6), p(7)])).toBe(7);
    expect(replyPosition({ offset: 5, epoch: '' }, pos(20), [])).toBe(5);
    expect(replyPosition({ offset: 5, epoch: '' }, pos(20), undefined)).toBe(20);
  });
});

/** A history of offsets `from..top` (earlier ones lost), counting reads; `fromDb` for the lower half. */
function history(from: number, top: number): GapSource & { reads: number } {
  return {
    reads: 0,
    position: async () => pos(top),
    async chunk(_channel, _epoch, after, upTo, maxBytes, source) {
      this.reads++;
      const out: BusPublication[] = [];
      let bytes = 0;
      for (let o = after + 1; o <= upTo && o >= from; o++) {
        const pub = p(o);
        if (out.length > 0 && bytes + pub.json.length > maxBytes) break;
        bytes += pub.json.length;
        out.push(pub);
      }
      if (source) source.fromDb += out.filter((x) => x.offset <= (from + top) / 2).length;
      return out;
    },
  };
}

describe('recoverFirstChunk', () => {
  const claim = (offset: number, epoch = 'abcdefgh') => ({ offset, epoch });

  it('reads the first chunk, bounded in bytes, contiguous from the client offset', async () => {
    const source = history(1, 100);
    const got = await recoverFirstChunk(source, 'c', claim(10), pos(100), 1000, 3 * p(10).json.length);
    expect(offsets(got!.publications)).toEqual([11, 12, 13]);
    expect(got!.fromDb).toBe(3);
  });

  it('recovers an empty gap without reading', async () => {
    const source = history(1, 8);
    expect(await recoverFirstChunk(source, 'c', claim(8), pos(8), 10, 1000)).toEqual({ publications: [], fromDb: 0 });
    expect(source.reads).toBe(0);
  });

  it('is not recovered when history lost the start of the gap', async () => {
    expect(await recoverFirstChunk(history(6, 8), 'c', claim(3), pos(8), 10, 1000)).toBeUndefined();
  });

  it('is not recovered, without reading, past the decision', async () => {
    const source = history(1, 8);
    expect(await recoverFirstChunk(source, 'c', claim(3, 'zzzzzzzz'), pos(8), 10, 1000)).toBeUndefined();
    expect(await recoverFirstChunk(source, 'c', claim(3), pos(8), 4, 1000)).toBeUndefined();
    expect(await recoverFirstChunk(source, 'c', claim(9), pos(8), 10, 1000)).toBeUndefined();
    expect(source.reads).toBe(0);
  });

  it('with maxBytes 0 reads one publication: the proof, for a reply that carries none', async () => {
    const got = await recoverFirstChunk(history(1, 8), 'c', claim(3), pos(8), 10, 0);
    expect(offsets(got!.publications)).toEqual([4]);
  });
});
