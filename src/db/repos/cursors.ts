/**
 * Read cursors and unread counts (issue 15), one statement each: a cursor moves forward only
 * (the greater offset wins), never past the channel's top, and unread is top - read.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../client.js';

export interface ChannelReadState {
  channel: string;
  /** The channel's top offset (0: never published to). */
  offset: number;
  /** The user's cursor (0: none). */
  read: number;
  unread: number;
}

type Row = {
  channel: string;
  top: number;
  read: number;
};

function stateOf(row: Row): ChannelReadState {
  const top = Number(row.top);
  const read = Math.min(Number(row.read), top);
  return { channel: row.channel, offset: top, read, unread: top - read };
}

/**
 * Moves the user's cursor on `channel` to `offset` (held to the channel's top) unless it is
 * already further; answers the state after. A channel never published to keeps no cursor.
 */
export async function setReadCursor(db: Db, user: string, channel: string, offset: number): Promise<ChannelReadState> {
  const result = await db.execute<Row>(sql`
    with target as (
      select c.name, c.top_offset from channels c where c.name = ${channel}
    ), moved as (
      insert into read_cursors ("user", channel, "offset")
      select ${user}, t.name, least(${offset}::bigint, t.top_offset) from target t
      on conflict ("user", channel) do update set "offset" = excluded."offset", updated_at = now()
        where read_cursors."offset" < excluded."offset"
      returning "offset"
    )
    select ${channel} as channel, coalesce((select top_offset from target), 0) as top,
           greatest(coalesce((select "offset" from moved), 0),
                    coalesce((select "offset" from read_cursors where "user" = ${user} and channel = ${channel}), 0)) as read`);
  return stateOf(result.rows[0]!);
}

/** The state of each of `channels` for the user, in the order given. */
export async function readStates(db: Db, user: string, channels: string[]): Promise<ChannelReadState[]> {
  const result = await db.execute<Row>(sql`
    select w.name as channel, coalesce(c.top_offset, 0) as top, coalesce(r."offset", 0) as read
      from unnest(${sql.param(channels)}::text[]) with ordinality as w(name, ord)
      left join channels c on c.name = w.name
      left join read_cursors r on r."user" = ${user} and r.channel = w.name
     order by w.ord`);
  return result.rows.map(stateOf);
}

/** Every channel where the user has a cursor, at most `limit`, by name. */
export async function cursorChannels(db: Db, user: string, limit: number): Promise<string[]> {
  const result = await db.execute<{ channel: string }>(sql`
    select channel from read_cursors where "user" = ${user} order by channel limit ${limit}`);
  return result.rows.map((r) => r.channel);
}

/** The repository bound to a database: what gateways and the API hold. */
export interface CursorStore {
  set(user: string, channel: string, offset: number): Promise<ChannelReadState>;
  states(user: string, channels: string[]): Promise<ChannelReadState[]>;
  channels(user: string, limit: number): Promise<string[]>;
}

export function cursorStore(db: Db): CursorStore {
  return {
    set: (user, channel, offset) => setReadCursor(db, user, channel, offset),
    states: (user, channels) => readStates(db, user, channels),
    channels: (user, limit) => cursorChannels(db, user, limit),
  };
}
