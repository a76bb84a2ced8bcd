/**
 * Seeds a channel's history straight into PostgreSQL, for tests that need a large history
 * fast: thousands of 60 KB publications through the worker would take minutes, one SQL
 * statement takes seconds. It writes what the worker would have committed — a `channels`
 * row (epoch, top) and publications 1..n with contiguous offsets — and nothing in Redis, so
 * reads take it from PostgreSQL, as after a cache loss. Use a fresh channel: a position
 * cached in Redis would hide what is written here.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface Seeded {
  channel: string;
  epoch: string;
  top: number;
}

/**
 * `count` publications `{"n":offset,"pad":"xxx…"}` of about `bytes` bytes each (the JSON the
 * client gets adds the offset and, for offset 1, the epoch).
 */
export async function seedHistory(databaseUrl: string, channel: string, count: number, bytes: number): Promise<Seeded> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const epoch = Array.from(randomBytes(8), (b) => String.fromCharCode(97 + (b % 26))).join('');
    await db.query('insert into channels (name, epoch, top_offset) values ($1, $2, $3)', [channel, epoch, count]);
    // One statement; the padding is built by PostgreSQL, not sent over the wire.
    await db.query(
      `insert into publications (channel, "offset", id, data)
       select $1, g, gen_random_uuid(), json_build_object('n', g, 'pad', repeat('x', $3::int))::text
       from generate_series(1, $2::int) g`,
      [channel, count, Math.max(0, bytes - 20)],
    );
    return { channel, epoch, top: count };
  } finally {
    await db.end();
  }
}
