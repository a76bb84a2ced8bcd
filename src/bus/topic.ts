/**
 * The channel topic's message format on Redis pub/sub, written by the persist worker and
 * read by gateways. It is line-based so a gateway splits instead of JSON-parsing the
 * publication bodies it only forwards. (Acks, the other worker → gateway message, belong
 * to the ingest client: src/ingest/acks.ts.)
 *
 * Topic message (one per channel per job):
 *   line 1: the channel epoch, a space, the commit time (ms since the epoch, worker clock)
 *   then one line per publication: `<offset> <publication JSON>`, offsets ascending.
 * The publication JSON is the exact text a client receives inside `pub`, encoded once by the
 * worker; it never contains a raw newline (JSON escapes them inside strings).
 */

export interface BusPublication {
  offset: number;
  json: string;
}

export function encodeTopicMessage(epoch: string, pubs: BusPublication[], committedAt = Date.now()): string {
  let out = `${epoch} ${committedAt}`;
  for (const pub of pubs) out += `\n${pub.offset} ${pub.json}`;
  return out;
}

export interface TopicMessage {
  epoch: string;
  committedAt: number;
  pubs: BusPublication[];
}

/** Returns undefined for a message that is not in this format (never throws). */
export function decodeTopicMessage(text: string): TopicMessage | undefined {
  const lines = text.split('\n');
  const [epoch, committed] = (lines[0] ?? '').split(' ');
  if (epoch === undefined) return undefined;
  const pubs: BusPublication[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const space = line.indexOf(' ');
    const offset = Number(line.slice(0, space));
    if (space <= 0 || !Number.isSafeInteger(offset) || offset <= 0) return undefined;
    pubs.push({ offset, json: line.slice(space + 1) });
  }
  return { epoch, committedAt: Number(committed) || 0, pubs };
}
