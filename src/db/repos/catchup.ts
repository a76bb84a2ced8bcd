/**
 * One-call catch-up across many channels (issue 15): for each channel, the publications after
 * the caller's offset (at most `limit`), its position and the user's unread count, in two
 * statements whatever the number of channels.
 *
 * The reply is bounded in bytes as well: publications are taken in channel order, then
 * offset order, until `maxBytes` of them are taken (the first always comes). Past that point
 * PostgreSQL still says which rows there were (offsets only, no payload), so a channel cut
 * short says `more` and nothing large is ever read into memory.
 */
import { sql } from 'drizzle-orm';
import type { PublicationFields } from '../../protocol/publication.js';
import type { Db } from '../client.js';

export interface CatchupChannel {
  channel: string;
  epoch: string;
  top: number;
  read: number;
  /** At most `limit` publications after the asked offset, in offset order. */
  publications: PublicationFields[];
  /** More remain after the last one given (the limit or the byte budget cut it short). */
  more: boolean;
}

type StateRow = { channel: string; epoch: string; top: number; read: number };
type PubRow = {
  channel: string;
  offset: number;
  data: string | null;
  user: string | null;
  client: string | null;
  conn_info: string | null;
  chan_info: string | null;
  tags: string | null;
  cut: boolean;
};

export async function readCatchup(
  db: Db,
  user: string,
  wanted: { channel: string; after: number }[],
  limit: number,
  maxBytes: number,
): Promise<CatchupChannel[]> {
  const names = sql.param(wanted.map((w) => w.channel));
  const afters = sql.param(wanted.map((w) => w.after));
  const states = await db.execute<StateRow>(sql`
    select w.name as channel, coalesce(c.epoch, '') as epoch, coalesce(c.top_offset, 0) as top, coalesce(r."offset", 0) as read
      from unnest(${names}::text[]) with ordinality as w(name, ord)
      left join channels c on c.name = w.name
      left join read_cursors r on r."user" = ${user} and r.channel = w.name
     order by w.ord`);
  // Each row's bytes as the client will get them, roughly: the data plus room for the rest.
  const pubs = await db.execute<PubRow>(sql`
    select x.channel, x."offset", case when x.cut then null else x.data end as data,
           x."user", x.client, x.conn_info, x.chan_info, x.tags, x.cut
      from (
        select w.name as channel, p."offset", p.data, p."user", p.client, p.conn_info, p.chan_info, p.tags,
               sum(octet_length(p.data) + 64) over (order by w.ord, p."offset" rows unbounded preceding)
                 - (octet_length(p.data) + 64) >= ${maxBytes} as cut
          from unnest(${names}::text[], ${afters}::bigint[]) with ordinality as w(name, after, ord)
          cross join lateral (
            select pb."offset", pb.data, pb."user", pb.client, pb.conn_info, pb.chan_info, pb.tags
              from publications pb
             where pb.channel = w.name and pb."offset" > w.after
               and pb.created_at >= coalesce((select cp.starts_at from channel_periods cp
                     where cp.channel = w.name and cp.first_offset <= w.after + 1
                     order by cp.starts_at desc limit 1), '-infinity'::timestamptz)
             order by pb."offset" limit ${limit + 1}
          ) p
      ) x`);
  return assemble(states.rows, pubs.rows, limit);
}

function assemble(states: StateRow[], pubs: PubRow[], limit: number): CatchupChannel[] {
  const byChannel = new Map<string, PubRow[]>();
  for (const row of pubs) (byChannel.get(row.channel) ?? byChannel.set(row.channel, []).get(row.channel)!).push(row);
  return states.map((s) => {
    const rows = byChannel.get(s.channel) ?? [];
    const given = rows.slice(0, limit).filter((r) => !r.cut);
    const top = Number(s.top);
    return {
      channel: s.channel,
      epoch: s.epoch,
      top,
      read: Math.min(Number(s.read), top),
      publications: given.map((r) => ({
        offset: Number(r.offset),
        data: r.data!,
        user: r.user,
        client: r.client,
        connInfo: r.conn_info,
        chanInfo: r.chan_info,
        tags: r.tags,
      })),
      more: rows.length > given.length,
    };
  });
}
