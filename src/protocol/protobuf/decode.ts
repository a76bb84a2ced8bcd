/**
 * Incoming Protobuf: a binary frame is one or more varint-length-delimited `Command`s of
 * client.proto (centrifuge-js `ProtobufCodec.encodeCommands`). Each is checked on the wire
 * against the schema, decoded by protobufjs, and handed on in the JSON protocol's shape (the
 * same object `JSON.parse` gives for a JSON command), through the JSON codec's own
 * structural verdict (`verdictOf`), so that everything after this point is shared.
 *
 * Contract, as decodeFrame's: never throws; one verdict per command, in order; a frame that
 * cannot be split (a truncated varint, a length past the end) ends with a failed verdict.
 *
 * The wire check comes first because protobufjs trusts its input: it reads a known field
 * with whatever wire type arrives, recurses into groups without bound, and accepts strings
 * that are not UTF-8. Here a known field must have its wire type, a string must be UTF-8,
 * groups (wire types 3 and 4, unused by proto3) and the reserved wire types 6 and 7 are
 * refused, and messages nest at most MAX_NESTING_DEPTH deep (`FilterNode` is recursive).
 * Unknown fields of a valid wire type are skipped, as protobuf wants for newer clients.
 *
 * `bytes` payloads (`data`) are JSON text in Tidings: they are parsed here as a JSON command's
 * `data` would be. A command whose payload is not UTF-8 JSON text is kept, with a `refusal`,
 * so the connection answers it 107 in its turn (docs/protocol.md, "Payloads").
 */
import { MAX_NESTING_DEPTH, nestingExceeds, verdictOf, type DecodedCommand } from '../codec.js';
import {
  CommandType,
  FieldClass,
  MapFieldClass,
  Reader,
  TypeClass,
  types,
  type Field,
  type Type,
  type WireReader,
} from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

const LENGTH_DELIMITED = 2;
/** Wire types protobufjs can skip: varint, fixed64, length-delimited, fixed32. */
const SKIPPABLE = new Set([0, 1, 2, 5]);

/** The commands of one binary frame (see the module comment). */
export function decodeProtobufFrame(frame: Uint8Array): DecodedCommand[] {
  const out: DecodedCommand[] = [];
  const reader = Reader.create(frame);
  while (reader.pos < reader.len) {
    const length = readLength(reader);
    if (typeof length === 'string') {
      out.push({ ok: false, reason: length });
      break;
    }
    out.push(decodeCommand(frame.subarray(reader.pos, reader.pos + length)));
    reader.pos += length;
  }
  return out;
}

/** The next command's length, or why it cannot be read. */
function readLength(reader: WireReader): number | string {
  let length: number;
  try {
    length = reader.uint32();
  } catch {
    return 'truncated length prefix';
  }
  return length > reader.len - reader.pos ? 'length prefix past the end of the frame' : length;
}

function decodeCommand(bytes: Uint8Array): DecodedCommand {
  const problem = wireProblem(bytes, CommandType, 0);
  if (problem !== undefined) return { ok: false, reason: problem };
  let message: Record<string, unknown>;
  try {
    message = CommandType.toObject(CommandType.decode(bytes), { longs: String });
  } catch {
    return { ok: false, reason: 'undecodable command' };
  }
  const refusals: string[] = [];
  const verdict = verdictOf(jsonShape(message, CommandType, refusals));
  return verdict.ok && refusals.length > 0 ? { ...verdict, refusal: refusals[0]! } : verdict;
}

// ---------------------------------------------------------------- the wire check

/** Why `bytes` is not a well-formed `type` message, or undefined. */
function wireProblem(bytes: Uint8Array, type: Type, depth: number): string | undefined {
  if (depth > MAX_NESTING_DEPTH) return `messages nested deeper than ${MAX_NESTING_DEPTH}`;
  const reader = Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = type.fieldsById[tag >>> 3];
      const problem = field ? fieldProblem(reader, field, tag & 7, depth) : skipUnknown(reader, tag);
      if (problem !== undefined) return problem;
    }
  } catch {
    return `truncated ${type.name}`;
  }
  return undefined;
}

function skipUnknown(reader: WireReader, tag: number): string | undefined {
  if (tag >>> 3 === 0) return 'field number 0';
  if (!SKIPPABLE.has(tag & 7)) return `wire type ${tag & 7} (field ${tag >>> 3})`;
  reader.skipType(tag & 7);
  return undefined;
}

/** Reads one occurrence of a known field, checking its wire type and content. */
function fieldProblem(reader: WireReader, field: Field, wireType: number, depth: number): string | undefined {
  const scalarWire = field.map ? LENGTH_DELIMITED : types.basic[field.type as keyof typeof types.basic];
  const packed = field.repeated && !field.map && scalarWire !== undefined && scalarWire !== LENGTH_DELIMITED;
  const expected = scalarWire ?? (field.resolvedType instanceof TypeClass ? LENGTH_DELIMITED : 0); // 0: an enum
  if (wireType !== expected && !(packed && wireType === LENGTH_DELIMITED)) {
    return `${field.name} has wire type ${wireType}, not ${expected}`;
  }
  if (wireType !== LENGTH_DELIMITED) {
    reader.skipType(wireType);
    return undefined;
  }
  const bytes = reader.bytes();
  if (field.map) return wireProblem(bytes, mapEntryType(field), depth + 1);
  if (field.type === 'string') return isUtf8(bytes) ? undefined : `${field.name} is not UTF-8`;
  if (field.resolvedType instanceof TypeClass) return wireProblem(bytes, field.resolvedType, depth + 1);
  return undefined; // bytes, or a packed run of scalars
}

const entryTypes = new WeakMap<Field, Type>();

/** A map field's entries as the message they are on the wire: key = 1, value = 2. */
function mapEntryType(field: Field): Type {
  let entry = entryTypes.get(field);
  if (entry === undefined) {
    const keyType = field instanceof MapFieldClass ? field.keyType : 'string';
    entry = new TypeClass(`${field.name}_entry`)
      .add(new FieldClass('key', 1, keyType))
      .add(new FieldClass('value', 2, field.type));
    entry.fieldsById[2]!.resolvedType = field.resolvedType;
    entryTypes.set(field, entry);
  }
  return entry;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the JSON shape

/**
 * The decoded message as the JSON protocol carries it: `bytes` fields parsed from their JSON
 * text (a refusal noted when they are not JSON), 64-bit integers as numbers (unsafe ones stay
 * unsafe, so the structural verdict refuses them as it refuses them in JSON).
 */
function jsonShape(
  message: Record<string, unknown>,
  type: Type,
  refusals: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(message)) {
    const field = type.fields[name];
    if (field === undefined) continue;
    const shaped = field.map
      ? mapShape(value as Record<string, unknown>, field, refusals)
      : shapeOf(value, field, refusals);
    if (shaped !== undefined) out[name] = shaped;
  }
  return out;
}

function mapShape(
  entries: Record<string, unknown>,
  field: Field,
  refusals: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entries)) out[key] = shapeOf(value, field, refusals);
  return out;
}

function shapeOf(value: unknown, field: Field, refusals: string[]): unknown {
  if (field.repeated && !field.map && Array.isArray(value))
    return value.map((v) => singleShape(v, field, refusals));
  return singleShape(value, field, refusals);
}

function singleShape(value: unknown, field: Field, refusals: string[]): unknown {
  if (field.type === 'bytes') return jsonOf(value as Uint8Array, field.name, refusals);
  if (field.resolvedType instanceof TypeClass)
    return jsonShape(value as Record<string, unknown>, field.resolvedType, refusals);
  if (typeof value === 'string' && LONG_TYPES.has(field.type)) return Number(value);
  return value;
}

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/**
 * A `bytes` payload's JSON value; undefined when empty (as absent). One that is not JSON text
 * is noted as a refusal and stands as `null`, so the command still passes the structural
 * verdict and is answered 107 in its turn instead of closing the connection.
 */
function jsonOf(bytes: Uint8Array, name: string, refusals: string[]): unknown {
  if (bytes.length === 0) return undefined;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    refusals.push(`${name} is not UTF-8 JSON text`);
    return null;
  }
  if (nestingExceeds(text, MAX_NESTING_DEPTH)) {
    refusals.push(`${name} nests deeper than ${MAX_NESTING_DEPTH}`);
    return null;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    refusals.push(`${name} is not JSON text`);
    return null;
  }
}
