/**
 * Outgoing Protobuf: every reply and push is written by the JSON encoders of ../codec.ts and
 * transcoded here into a length-delimited `Reply` of client.proto. One set of encoders means
 * both protocols always say the same thing; the transcoding is schema-driven, by field name
 * (the proto's snake_case names are the JSON keys).
 *
 * `bytes` fields (`data`, `conn_info`, `chan_info`, …) carry the JSON text of the value,
 * byte for byte, as Centrifugo does for JSON payloads on a Protobuf connection; JSON `null`
 * is an empty (absent) field, as Go's `Raw` writes an empty one as `null`. Keys the proto does
 * not have are JSON-only and left out.
 *
 * Cost: a push frame the hub shares between subscribers (a Buffer) is transcoded once, on the
 * first Protobuf subscriber's demand, and remembered for as long as the Buffer lives, so
 * fan-out stays one encode per publication per format, and a deployment without Protobuf
 * clients never transcodes anything. Replies are per connection and transcoded as written.
 */
import { elementsOf, membersOf } from '../json-spans.js';
import { ReplyType, TypeClass, type Field, type Type } from './types.js';

const shared = new WeakMap<Buffer, Uint8Array>();

/** The length-delimited Protobuf `Reply` of one JSON message (a string, or a shared push Buffer). */
export function protobufMessage(json: string | Buffer): Uint8Array {
  if (typeof json === 'string') return transcode(json);
  let out = shared.get(json);
  if (out === undefined) {
    out = transcode(json.toString('utf8'));
    shared.set(json, out);
  }
  return out;
}

function transcode(json: string): Uint8Array {
  return ReplyType.encodeDelimited(ReplyType.fromObject(messageOf(json, 0, ReplyType))).finish();
}

/** The object protobufjs' `fromObject` takes for the JSON object at `at`. */
function messageOf(text: string, at: number, type: Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, start, end } of membersOf(text, at)) {
    const field = type.fields[key];
    if (field === undefined || text.startsWith('null', start)) continue;
    out[key] = fieldValue(text, start, end, field);
  }
  return out;
}

function fieldValue(text: string, start: number, end: number, field: Field): unknown {
  if (field.map) {
    const entries: Record<string, unknown> = {};
    for (const m of membersOf(text, start)) entries[m.key] = singleValue(text, m.start, m.end, field);
    return entries;
  }
  if (field.repeated) return elementsOf(text, start).map(([s, e]) => singleValue(text, s, e, field));
  return singleValue(text, start, end, field);
}

function singleValue(text: string, start: number, end: number, field: Field): unknown {
  if (field.type === 'bytes') return Buffer.from(text.slice(start, end), 'utf8');
  if (field.resolvedType instanceof TypeClass) return messageOf(text, start, field.resolvedType);
  return JSON.parse(text.slice(start, end)) as unknown;
}

/** The server ping: an empty Reply (PROTOCOL.md A.4), length-delimited: one zero byte. */
export const PROTOBUF_PING = Uint8Array.of(0);
