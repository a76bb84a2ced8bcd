/**
 * Issue 11, R1 (5,000 subscribers reconnecting at once): identical cache reads in flight at
 * the same moment share one Redis round trip, and what each caller gets is still its own
 * answer. Real Redis and PostgreSQL; the Redis client's methods are only counted.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { HistoryReader } from '../../src/history/reader.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';

describe('history reader', () => {
  const stack = new TestStack();
  let database: Database;
  let redis: Redis;
  const keys = makeKeys(stack.prefix);

  beforeAll(() => {
    database = openDatabase(stack.databaseUrl);
    redis = new Redis(stack.redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await database?.close();
    await stack.close();
  });

  async function cacheChannel(channel: string, top: number): Promise<void> {
    const members = Array.from({ length: top }, (_, i) => [i + 1, `{"offset":${i + 1}}`]).flat();
    await redis.zadd(keys.history(channel), ...members);
    await redis.hset(keys.meta(channel), 'e', 'abcdefgh', 't', String(top));
  }

  it('5,000 identical recoveries in flight at once make one cache read and one position read', async () => {
    const channel = uniqueChannel('storm');
    await cacheChannel(channel, 100);
    const reader = new HistoryReader(redis, database.db, keys, 60);
    const ranges = vi.spyOn(redis, 'zrangebyscore');
    const positions = vi.spyOn(redis, 'hmget');
    try {
      const results = await Promise.all(
        Array.from({ length: 5000 }, async () => {
          const pos = await reader.position(channel, 10);
          return reader.range(channel, pos.epoch, 10, pos.top, 1000);
        }),
      );
      expect(positions).toHaveBeenCalledTimes(1);
      expect(ranges).toHaveBeenCalledTimes(1);
      for (const pubs of results) expect(pubs.map((p) => p.offset)).toEqual(Array.from({ length: 90 }, (_, i) => i + 11));
      // Each caller got its own array: changing one changes no other.
      results[0]!.length = 0;
      expect(results[1]).toHaveLength(90);

      // Nothing is kept once the read is answered: a later read asks Redis again and sees what changed.
      await redis.zadd(keys.history(channel), 101, '{"offset":101}');
      await redis.hset(keys.meta(channel), 't', '101');
      const later = await reader.range(channel, 'abcdefgh', 100, (await reader.position(channel)).top, 10);
      expect(later.map((p) => p.offset)).toEqual([101]);
      expect(ranges).toHaveBeenCalledTimes(2);
    } finally {
      ranges.mockRestore();
      positions.mockRestore();
    }
  });

  it('different ranges and channels are not shared', async () => {
    const [a, b] = [uniqueChannel('share-a'), uniqueChannel('share-b')];
    await Promise.all([cacheChannel(a, 20), cacheChannel(b, 20)]);
    const reader = new HistoryReader(redis, database.db, keys, 60);
    const [fromA, fromB, later] = await Promise.all([
      reader.range(a, 'abcdefgh', 0, 20, 100),
      reader.range(b, 'abcdefgh', 0, 20, 100),
      reader.range(a, 'abcdefgh', 10, 20, 100),
    ]);
    expect(fromA.map((p) => p.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(fromB).toHaveLength(20);
    expect(later.map((p) => p.offset)).toEqual(Array.from({ length: 10 }, (_, i) => i + 11));
  });

  it('a subscriber position joins only a read sent after its mark, never an earlier one still in flight', async () => {
    const channel = uniqueChannel('mark');
    await cacheChannel(channel, 10);
    const reader = new HistoryReader(redis, database.db, keys, 60);
    const send = redis.hmget.bind(redis) as (...args: unknown[]) => Promise<(string | null)[]>;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The first position read is answered by Redis at once but reaches the reader late, as
    // when its reply is behind a topic message that the hub handled first.
    const positions = vi.spyOn(redis, 'hmget').mockImplementationOnce((async (...args: unknown[]) => {
      const answer = await send(...args);
      await held;
      return answer;
    }) as never);
    try {
      const early = reader.position(channel);
      await redis.ping(); // same connection: the early read has been answered by Redis
      await redis.hset(keys.meta(channel), 't', '11'); // a publication commits meanwhile
      const mark = reader.mark(); // a subscriber begins buffering
      const joiner = reader.position(channel); // no mark: joins what is in flight
      const subscriber = reader.position(channel, 0, mark);
      const another = reader.position(channel, 0, mark); // joins the subscriber's read
      release();
      expect((await early).top).toBe(10);
      expect((await joiner).top).toBe(10);
      expect((await subscriber).top).toBe(11);
      expect((await another).top).toBe(11);
      expect(positions).toHaveBeenCalledTimes(2);
      // Once both are answered nothing is kept: the next read, mark or not, asks Redis.
      expect((await reader.position(channel)).top).toBe(11);
      expect(positions).toHaveBeenCalledTimes(3);
    } finally {
      positions.mockRestore();
    }
  });
});
