import { describe, expect, it } from 'vitest';
import { decodeTopicMessage, encodeTopicMessage } from '../../src/bus/topic.js';
import { decodeAcks, encodeAcks } from '../../src/ingest/acks.js';
import { partitionOf } from '../../src/bus/keys.js';
import { assignOffsets, newEpoch } from '../../src/db/repos/publications.js';
import type { NewPublication } from '../../src/protocol/publication.js';

function pub(id: string, channel: string, idempotencyKey?: string): NewPublication {
  return { id, channel, data: '{}', idempotencyKey };
}

describe('assignOffsets', () => {
  const heads = () =>
    new Map([
      ['a', { epoch: 'eeeeeeee', top: 10 }],
      ['b', { epoch: 'ffffffff', top: 0 }],
    ]);

  it('numbers each channel contiguously in batch order', () => {
    const plan = assignOffsets([pub('1', 'a'), pub('2', 'b'), pub('3', 'a')], heads(), new Map(), new Map());
    expect(plan.results.map((r) => [r.id, r.offset])).toEqual([
      ['1', 11],
      ['2', 1],
      ['3', 12],
    ]);
    expect(plan.tops.get('a')?.top).toBe(12);
    expect(plan.inserts).toHaveLength(3);
  });

  it('skips publications already stored under the same id and replays them', () => {
    const plan = assignOffsets([pub('1', 'a'), pub('2', 'a')], heads(), new Map([['1', 7]]), new Map());
    expect(plan.results.map((r) => [r.offset, r.fresh])).toEqual([
      [7, false],
      [11, true],
    ]);
    expect(plan.inserts.map((p) => p.id)).toEqual(['2']);
    expect(plan.stored.map((p) => p.offset)).toEqual([7, 11]);
  });

  it('answers a repeated idempotency key with the first offset, within a batch and across batches', () => {
    const seen = new Map([['a\u0000k1', 5]]);
    const plan = assignOffsets([pub('1', 'a', 'k1'), pub('2', 'a', 'k2'), pub('3', 'a', 'k2')], heads(), new Map(), seen);
    expect(plan.results.map((r) => r.offset)).toEqual([5, 11, 11]);
    expect(plan.inserts.map((p) => p.id)).toEqual(['2']);
  });

  it('with the turn passed, acknowledges what is stored and rejects the rest', () => {
    const plan = assignOffsets([pub('1', 'a'), pub('2', 'a', 'k1')], heads(), new Map([['1', 7]]), new Map(), false);
    expect(plan.results.map((r) => [r.id, r.offset])).toEqual([['1', 7]]);
    expect(plan.rejected).toEqual([{ id: '2', why: 'turn passed' }]);
    expect(plan.inserts).toEqual([]);
  });

  it('makes 8-letter epochs', () => {
    expect(newEpoch()).toMatch(/^[a-z]{8}$/);
  });
});

describe('bus formats', () => {
  it('round-trips a topic message', () => {
    const text = encodeTopicMessage('epoch', [
      { offset: 1, json: '{"data":{"a":"x y"},"offset":1}' },
      { offset: 2, json: '{"data":2,"offset":2}' },
    ], 1234);
    expect(decodeTopicMessage(text)).toEqual({
      epoch: 'epoch',
      committedAt: 1234,
      pubs: [
        { offset: 1, json: '{"data":{"a":"x y"},"offset":1}' },
        { offset: 2, json: '{"data":2,"offset":2}' },
      ],
    });
    expect(decodeTopicMessage('e\nnot-a-number {}')).toBeUndefined();
  });

  it('round-trips acks and tolerates garbage', () => {
    expect(decodeAcks(encodeAcks([['id', 3, 'e'], ['id2', 0, '', 100]]))).toEqual([['id', 3, 'e'], ['id2', 0, '', 100]]);
    expect(decodeAcks('nonsense')).toEqual([]);
  });
});

describe('partitionOf', () => {
  it('is stable and spreads channels over every partition', () => {
    expect(partitionOf('room:1', 8)).toBe(partitionOf('room:1', 8));
    const used = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`room:${i}`, 8)));
    expect(used.size).toBe(8);
  });
});
