import { describe, expect, it } from 'vitest';
import { makeKeys, partitionOf } from '../../src/bus/keys.js';
import { crc16, partitionTags, SLOTS, slotOf } from '../../src/bus/slots.js';

/** The masters of a cluster made by `redis-cli --cluster create`: equal contiguous ranges. */
function masterOf(slot: number, masters: number): number {
  return Math.min(masters - 1, Math.floor((slot * masters) / SLOTS));
}

describe('Redis Cluster hash slots (issue 13)', () => {
  it('computes CRC16/XMODEM and slots as the cluster spec does', () => {
    // The spec's check value, and slots Redis's own CLUSTER KEYSLOT answers.
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('bar')).toBe(5061);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('{}foo')).toBe(crc16(Buffer.from('{}foo')) % SLOTS);
    expect(slotOf('a{b}{c}')).toBe(slotOf('b'));
  });

  it.each([8, 32, 100, 1024])('spaces %i partitions evenly over the slots', (partitions) => {
    const slots = partitionTags(partitions).map((tag) => slotOf(`{${tag}}`));
    expect(new Set(partitionTags(partitions)).size).toBe(partitions);
    // Partition p's slot lies in the p-th of N equal ranges, so consecutive ones are less
    // than two ranges apart and never collide.
    slots.forEach((slot, p) => {
      expect(slot).toBeGreaterThanOrEqual(Math.ceil((p * SLOTS) / partitions));
      expect(slot).toBeLessThan(Math.ceil(((p + 1) * SLOTS) / partitions));
    });
    for (const masters of [3, 5, 6]) {
      const perMaster = Array.from({ length: masters }, () => 0);
      for (const slot of slots) perMaster[masterOf(slot, masters)]!++;
      expect(Math.max(...perMaster) - Math.min(...perMaster)).toBeLessThanOrEqual(1);
    }
  });

  it('shows why bare tags are not used: {0}..{7} pile onto few masters', () => {
    const perMaster = [0, 0, 0];
    for (let p = 0; p < 8; p++) perMaster[masterOf(slotOf(`{${p}}`), 3)]!++;
    expect(Math.max(...perMaster)).toBeGreaterThanOrEqual(4);
  });

  it('puts every key and topic of a channel, and its partition’s queue, lease and acks, in one slot', () => {
    const partitions = 32;
    const keys = makeKeys('tidings', { partitions });
    for (const channel of ['room:1', 'chat:{evil}', '}{', 'user#42,43']) {
      const p = partitionOf(channel, partitions);
      const slot = slotOf(`{${partitionTags(partitions)[p]}}`);
      const names = [keys.history(channel), keys.meta(channel), keys.topic(channel), keys.presence(channel), keys.presenceExpiry(channel)];
      names.push(keys.lease(p), keys.ackTopic('gw-1', p), `${keys.queuePrefixOf(p)}:ingest-${p}:wait`);
      expect(names.map(slotOf)).toEqual(names.map(() => slot));
    }
    const registry = [keys.nodes, keys.node('u1'), keys.nodeChannels('u2')].map(slotOf);
    expect(new Set(registry).size).toBe(1);
    expect(keys.ackTopics('gw-1')).toHaveLength(partitions);
  });

  it('puts each webhook queue in one slot, and the connection hashes with their set (the take script touches both)', () => {
    const keys = makeKeys('tidings', { partitions: 8 });
    for (const p of [0, 1, 3]) {
      const queue = [`${keys.webhookQueuePrefixOf(p)}:webhook-${p}:wait`, `${keys.webhookQueuePrefixOf(p)}:webhook-${p}:active`];
      expect(new Set(queue.map(slotOf)).size).toBe(1);
    }
    const take = [keys.webhookConnections('gw-1'), keys.webhookConnections('gw-2'), keys.webhookGateways].map(slotOf);
    expect(new Set(take).size).toBe(1);
  });

  it('keeps the names of earlier versions outside cluster mode', () => {
    const keys = makeKeys('tidings');
    expect([keys.history('a'), keys.meta('a'), keys.topic('a'), keys.acks('g'), keys.lease(3), keys.control, keys.workers]).toEqual([
      'tidings:h:a',
      'tidings:m:a',
      'tidings:t:a',
      'tidings:ack:g',
      'tidings:lease:3',
      'tidings:control',
      'tidings:workers',
    ]);
    expect(keys.cluster).toBe(false);
    expect(keys.queuePrefixOf(5)).toBe('tidings');
    expect(keys.ackTopics('g')).toEqual(['tidings:ack:g']);
    expect(keys.ackTopic('g', 7)).toBe('tidings:ack:g');
  });
});
