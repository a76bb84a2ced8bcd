/**
 * The fan-out round (src/persist/fanout.ts, the fanout script in src/bus/scripts.ts) against
 * a real Redis: what a gateway hears on a channel topic is byte for byte the documented
 * format (src/bus/topic.ts), the cache and position match, acks come after every channel,
 * and rounds larger than one script call (channels, bytes, a channel's 1,000-member ZADD
 * chunks) lose nothing.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { withScripts, type ScriptedRedis } from '../../src/bus/scripts.js';
import { decodeTopicMessage, encodeTopicMessage } from '../../src/bus/topic.js';
import { decodeAcks } from '../../src/ingest/acks.js';
import { fanoutCommitted, type CommittedJob } from '../../src/persist/fanout.js';
import { publicationJson } from '../../src/protocol/publication.js';
import type { StoredPublication } from '../../src/db/repos/publications.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const EPOCH = 'abcdefgh';

function stored(channel: string, offset: number, data = `{"n":${offset}}`): StoredPublication {
  return { id: randomUUID(), channel, data, offset, epoch: EPOCH, user: 'u1' };
}

function job(pubs: StoredPublication[], gatewayId = 'gw-test'): CommittedJob {
  const tops = new Map<string, { epoch: string; top: number }>();
  for (const p of pubs) tops.set(p.channel, { epoch: EPOCH, top: Math.max(tops.get(p.channel)?.top ?? 0, p.offset) });
  return {
    gatewayId,
    outcome: {
      stored: pubs,
      tops,
      rejected: [],
      results: pubs.map((p) => ({ id: p.id, channel: p.channel, offset: p.offset, epoch: EPOCH, fresh: true })),
    },
  };
}

describe('fan-out round', () => {
  const stack = new TestStack();
  const keys = makeKeys(stack.prefix);
  let redis: ScriptedRedis;
  let listener: Redis;
  const heard: { topic: string; message: string }[] = [];

  beforeAll(async () => {
    redis = withScripts(new Redis(stack.redisUrl));
    listener = new Redis(stack.redisUrl);
    listener.on('pmessage', (_pattern, topic, message) => heard.push({ topic, message }));
    await listener.psubscribe(`${stack.prefix}*`);
  });
  afterAll(async () => {
    redis?.disconnect();
    listener?.disconnect();
    await stack.close();
  });

  const messagesOn = (topic: string) => heard.filter((h) => h.topic === topic).map((h) => h.message);

  it('publishes the documented topic message, fills cache and position, then acks', async () => {
    const [a, b] = [uniqueChannel('fan-a'), uniqueChannel('fan-b')];
    const gatewayId = `gw-${randomUUID()}`;
    // Two jobs of one round, offsets of channel a split between them and given out of order.
    const first = [stored(a, 2, '{"text":"line\\nbreak é"}'), stored(b, 1)];
    const second = [stored(a, 1), stored(a, 3)];
    const before = Date.now();
    await fanoutCommitted(redis, keys, () => ({ size: 100, ttlS: 60 }), [job(first, gatewayId), job(second, gatewayId)]);
    await waitFor('the acks', () => messagesOn(keys.acks(gatewayId)).length === 1);

    const [message] = messagesOn(keys.topic(a));
    const decoded = decodeTopicMessage(message!)!;
    expect(decoded.committedAt).toBeGreaterThanOrEqual(before);
    const inOrder = [second[0]!, first[0]!, second[1]!];
    const expected = inOrder.map((p) => ({ offset: p.offset, json: publicationJson(p, EPOCH) }));
    expect(message).toBe(encodeTopicMessage(EPOCH, expected, decoded.committedAt));
    expect(messagesOn(keys.topic(b))).toHaveLength(1);

    expect(await redis.zrange(keys.history(a), '0', '-1')).toEqual(expected.map((p) => p.json));
    expect(await redis.hgetall(keys.meta(a))).toEqual({ e: EPOCH, t: '3' });
    expect(await redis.ttl(keys.history(a))).toBeGreaterThan(50);
    expect(await redis.ttl(keys.meta(a))).toBeGreaterThan(50);
    // The acks come last: by then every channel's message was published.
    const order = heard.map((h) => h.topic);
    expect(order.indexOf(keys.acks(gatewayId))).toBeGreaterThan(order.indexOf(keys.topic(a)));
    expect(order.indexOf(keys.acks(gatewayId))).toBeGreaterThan(order.indexOf(keys.topic(b)));
    const acks = decodeAcks(messagesOn(keys.acks(gatewayId))[0]!);
    expect(acks.map((ack) => ack[0]).sort()).toEqual([...first, ...second].map((p) => p.id).sort());
  });

  it('trims the cache to its size, skips it at size 0, and never moves a position back', async () => {
    const [kept, uncached] = [uniqueChannel('fan-trim'), uniqueChannel('fan-none')];
    const policy = (channel: string) => (channel === kept ? { size: 2, ttlS: 60 } : { size: 0, ttlS: 60 });
    const three = [1, 2, 3].map((o) => stored(kept, o));
    await fanoutCommitted(redis, keys, policy, [job(three), job([stored(uncached, 5)])]);
    const json = (p: StoredPublication) => publicationJson(p, EPOCH);
    expect(await redis.zrange(keys.history(kept), '0', '-1', 'WITHSCORES')).toEqual([json(three[1]!), '2', json(three[2]!), '3']);
    expect(await redis.exists(keys.history(uncached))).toBe(0);
    expect(await redis.hget(keys.meta(uncached), 't')).toBe('5');

    // A repeated old round (a retry, a re-run job) leaves the newer position alone.
    await fanoutCommitted(redis, keys, policy, [job([stored(uncached, 4)])]);
    expect(await redis.hget(keys.meta(uncached), 't')).toBe('5');
  });

  it('splits a large round over several script calls and loses nothing', async () => {
    const many = Array.from({ length: 1500 }, (_, i) => uniqueChannel(`fan-many-${i}`));
    const deep = uniqueChannel('fan-deep');
    const gatewayId = `gw-${randomUUID()}`;
    const big = 'x'.repeat(3000);
    const pubs = [
      ...many.map((channel) => stored(channel, 1, `"${big}"`)),
      ...Array.from({ length: 2500 }, (_, i) => stored(deep, i + 1)),
    ];
    await fanoutCommitted(redis, keys, () => ({ size: 5000, ttlS: 60 }), [job(pubs, gatewayId)]);
    await waitFor('the acks', () => messagesOn(keys.acks(gatewayId)).length === 1);
    for (const channel of [many[0]!, many[999]!, many[1000]!, many[1499]!]) {
      expect(await redis.zcard(keys.history(channel))).toBe(1);
      expect(messagesOn(keys.topic(channel))).toHaveLength(1);
    }
    expect(await redis.zcard(keys.history(deep))).toBe(2500);
    expect(decodeTopicMessage(messagesOn(keys.topic(deep))[0]!)!.pubs.map((p) => p.offset)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    expect(decodeAcks(messagesOn(keys.acks(gatewayId))[0]!)).toHaveLength(pubs.length);
  });
});
