/**
 * The JSON codec of the client protocol: text frames in, commands out; replies and pushes
 * in, compact JSON text out. Pure functions, no I/O.
 *
 * Contract:
 * - `decodeFrame` never throws. A frame is one or more commands joined by '\n' (centrifuge-js
 *   batches `connect` with the first `subscribe`s, PROTOCOL.md A.2); each line gets its own
 *   verdict, in order, so the caller can run them one after another.
 * - Every encoder returns one message with no raw '\n' inside, because the client splits
 *   frames on '\n' (JS:4381-4392). Strings go through JSON.stringify (which escapes newlines);
 *   pre-encoded JSON is spliced after dropping raw '\n' bytes, which in valid JSON text can only
 *   be whitespace (the same thing Go's `Raw.MarshalJSON` does).
 * - Zero values (0, false, '', [], empty maps, undefined, null) are omitted as Go's encoder
 *   omits them, except the fields PROTOCOL.md A.2 says are always emitted.
 */
import type { ErrorBody } from './codes.js';
import {
  METHODS,
  RawJson,
  type ClientInfo,
  type Command,
  type Method,
  type Push,
  type Reply,
} from './types.js';

// ---------------------------------------------------------------------------------- decoding

/** Verdict on one line of a frame. */
export type DecodedCommand =
  | {
      ok: true;
      /** `id` 0 is normalised to absent: both mean "no reply expected". */
      command: Command;
      /** The one method key present, or null for a pong (`{}`) or an id-only command. */
      method: Method | null;
    }
  | {
      ok: false;
      /** The command's id when it could be read, so a caller may answer it. */
      id?: number;
      /** For logs only (may quote a short piece of the input); never sent to the client. */
      reason: string;
    };

/**
 * Deepest `{`/`[` nesting accepted in one command line. The command and its method payload
 * take two levels, leaving 62 for user data. V8's JSON.parse is iterative, but
 * JSON.stringify and any later walk of the value are recursive: capping depth at the door
 * keeps hostile input from overflowing the stack anywhere downstream.
 */
export const MAX_NESTING_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether `text` opens more than `limit` nested objects/arrays, counting `{` and `[` outside
 * strings. One linear pass, no allocation; meaningful only for text that is otherwise valid
 * JSON (anything else fails JSON.parse anyway).
 */
export function nestingExceeds(text: string, limit: number = MAX_NESTING_DEPTH): boolean {
  // Fast path for the usual small command: depth can never exceed the number of `{` and `[`
  // in the text, and counting those with indexOf is several times cheaper than the scan.
  if (!openersExceed(text, limit)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Whether `text` holds more than `limit` `{` and `[` characters in all, strings included. */
function openersExceed(text: string, limit: number): boolean {
  let n = 0;
  for (let at = text.indexOf('{'); at >= 0; at = text.indexOf('{', at + 1)) if (++n > limit) return true;
  for (let at = text.indexOf('['); at >= 0; at = text.indexOf('[', at + 1)) if (++n > limit) return true;
  return false;
}

/**
 * Splits a text frame into its commands and checks each structurally. Blank lines are
 * skipped. Never throws: a bad line yields `{ok:false}` and the lines after it are still
 * decoded. What to do with a bad line is the caller's policy; Go closes the connection with
 * 3501 "bad request" when a command cannot be decoded.
 */
export function decodeFrame(text: string): DecodedCommand[] {
  const out: DecodedCommand[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(decodeLine(line));
  }
  return out;
}

/** Decodes one command line (see decodeFrame). */
export function decodeLine(line: string): DecodedCommand {
  if (nestingExceeds(line)) return { ok: false, reason: `nesting deeper than ${MAX_NESTING_DEPTH}` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isPlainObject(value)) return { ok: false, reason: 'command is not a JSON object' };
  const id = readId(value.id);
  if (id === INVALID) return { ok: false, reason: 'id is not a non-negative integer' };
  const found = findMethod(value);
  if ('error' in found) return failure(id, found.error);
  const problem = checkPayload(value, found.method);
  if (problem !== undefined) return failure(id, problem);
  if (value.id === 0) delete value.id;
  return { ok: true, command: value as Command, method: found.method };
}

/** A failed verdict that keeps the id when there is one, so the caller may answer it. */
function failure(id: number | undefined, reason: string): DecodedCommand {
  return id === undefined ? { ok: false, reason } : { ok: false, id, reason };
}

const INVALID = Symbol('invalid');

/** An id is absent, or a non-negative safe integer (0 meaning absent). */
function readId(id: unknown): number | undefined | typeof INVALID {
  if (id === undefined) return undefined;
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id === 0 ? undefined : id;
  return INVALID;
}

const METHOD_SET: ReadonlySet<string> = new Set(METHODS);

/** The single method key of a command (null when none), or why its keys are unacceptable. */
function findMethod(command: Record<string, unknown>): { method: Method | null } | { error: string } {
  let method: Method | null = null;
  for (const key of Object.keys(command)) {
    if (key === 'id') continue;
    if (!METHOD_SET.has(key)) return { error: `unknown method ${JSON.stringify(key.slice(0, 32))}` };
    if (method !== null) return { error: `more than one method (${method}, ${key})` };
    method = key as Method;
  }
  return { method };
}

/** Why the method's payload is unacceptable, or undefined (also when there is no method). */
function checkPayload(command: Record<string, unknown>, method: Method | null): string | undefined {
  return method === null ? undefined : checkObject(command[method], PAYLOADS[method], method);
}

// Structural checks of method payloads. Unknown payload fields are kept and ignored (newer
// SDKs add fields); known fields must have their wire type so handlers can trust them.

type FieldKind = 'string' | 'boolean' | 'uint' | 'int' | 'json';
interface Field {
  kind: FieldKind | 'object' | 'map';
  required?: true;
  /** For 'object': its fields. */
  fields?: FieldSpec;
  /** For 'map': the type of every value. */
  values?: Field;
}
type FieldSpec = Readonly<Record<string, Field>>;

const str: Field = { kind: 'string' };
const bool: Field = { kind: 'boolean' };
const uint: Field = { kind: 'uint' };
const int: Field = { kind: 'int' };
const json: Field = { kind: 'json' };
const required = (field: Field): Field => ({ ...field, required: true });
const channel = required(str);

/** What each method's payload must look like; keys mirror the request types in types.ts. */
const PAYLOADS = {
  connect: {
    token: str,
    data: json,
    subs: { kind: 'map', values: { kind: 'object', fields: { recover: bool, offset: uint, epoch: str } } },
    name: str,
    version: str,
    headers: { kind: 'map', values: str },
  },
  subscribe: {
    channel,
    token: str,
    recover: bool,
    epoch: str,
    offset: uint,
    data: json,
    positioned: bool,
    recoverable: bool,
    join_leave: bool,
    delta: str,
    flag: int,
    type: int,
    tf: json,
  },
  unsubscribe: { channel },
  publish: { channel, data: required(json) },
  presence: { channel },
  presence_stats: { channel },
  history: {
    channel,
    limit: int,
    since: { kind: 'object', fields: { offset: uint, epoch: str } },
    reverse: bool,
  },
  ping: {},
  send: { data: json },
  rpc: { method: str, data: json },
  refresh: { token: required(str) },
  sub_refresh: { channel, token: required(str) },
} as const satisfies { [M in Method]: { [K in keyof Required<NonNullable<Command[M]>>]: Field } };

/** Why `value` is not an object matching `spec`, or undefined when it is. */
function checkObject(value: unknown, spec: FieldSpec, path: string): string | undefined {
  if (!isPlainObject(value)) return `${path} must be an object`;
  for (const [name, field] of Object.entries(spec)) {
    const problem = checkField(value[name], field, `${path}.${name}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Why `value` does not match `field`, or undefined when it does (or is absent and optional). */
function checkField(value: unknown, field: Field, path: string): string | undefined {
  if (value === undefined) return field.required ? `${path} is required` : undefined;
  switch (field.kind) {
    case 'json':
      return undefined;
    case 'object':
      return checkObject(value, field.fields ?? {}, path);
    case 'map':
      return checkMap(value, field.values ?? json, path);
    default:
      return hasKind(value, field.kind) ? undefined : `${path} must be ${KIND_NAMES[field.kind]}`;
  }
}

function checkMap(value: unknown, values: Field, path: string): string | undefined {
  if (!isPlainObject(value)) return `${path} must be an object`;
  for (const [key, entry] of Object.entries(value)) {
    const problem = checkField(entry, values, `${path}[${JSON.stringify(key.slice(0, 32))}]`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

const KIND_NAMES: Record<FieldKind, string> = {
  string: 'a string',
  boolean: 'a boolean',
  uint: 'a non-negative integer',
  int: 'an integer',
  json: 'JSON',
};

function hasKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'uint':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'int':
      return Number.isSafeInteger(value);
    case 'json':
      return true;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------- encoding

/** A server ping: a reply with neither id nor push (PROTOCOL.md A.4). */
export const SERVER_PING = '{}';

/** Joins encoded messages into one frame; the client dispatches them in order. */
export function joinMessages(messages: readonly string[]): string {
  return messages.join('\n');
}

/**
 * Encodes a reply: `{"id":N,"<method>":{…}}` or `{"id":N,"error":{…}}`. A result object is
 * written even when empty (`{"id":3,"publish":{}}`): the client needs the key.
 * Throws only on values JSON cannot carry (BigInt, cycles), i.e. on a programming error.
 */
export function encodeReply(reply: Reply): string {
  return encodeEnvelope(reply as Record<string, unknown>);
}

/** Encodes an error reply to command `id`. */
export function encodeErrorReply(id: number, error: ErrorBody): string {
  return encodeEnvelope({ id, error });
}

/** Encodes an async push: `{"push":{"channel":C,"<type>":{…}}}`. */
export function encodePush(push: Push): string {
  return `{"push":${encodeEnvelope(push as Record<string, unknown>)}}`;
}

/**
 * A publication as stored: its data (and optionally the publisher's info and the tags) are
 * already-encoded JSON text, validated once on the way in, and spliced verbatim here.
 */
export interface EncodedPublication {
  offset: number;
  /** The publication data as JSON text. */
  dataJson: string;
  /** Pre-encoded ClientInfo JSON (see encodeClientInfoJson), or undefined. */
  infoJson?: string;
  /** Pre-encoded `{"key":"value"}` tags JSON, or undefined; '{}' is omitted. */
  tagsJson?: string;
  /** Set on offset 1 so early subscribers learn the epoch (as Go does); '' is omitted. */
  epoch?: string;
}

/**
 * `{"data":D,"offset":O,"info":I,"tags":T,"epoch":E}` by string concatenation, optional parts
 * omitted: the publication object inside subscribe and history replies (wrap it in RawJson).
 * No parse, no re-stringify: the hot path of fan-out encodes each publication once.
 */
export function encodePublicationJson(pub: EncodedPublication): string {
  let out = `{"data":${rawText(pub.dataJson)}`;
  if (pub.offset > 0) out += `,"offset":${pub.offset}`;
  if (pub.infoJson !== undefined) out += `,"info":${rawText(pub.infoJson)}`;
  if (pub.tagsJson !== undefined && pub.tagsJson !== '{}') out += `,"tags":${rawText(pub.tagsJson)}`;
  if (pub.epoch) out += `,"epoch":${JSON.stringify(pub.epoch)}`;
  return `${out}}`;
}

/**
 * `{"push":{"channel":"C","pub":{…}}}`: the message written, byte for byte the same, to every
 * subscriber of the channel.
 */
export function encodePublicationPush(channel: string, pub: EncodedPublication): string {
  return encodePushOfPublication(channel, encodePublicationJson(pub));
}

/** The same push around a publication already encoded with encodePublicationJson (the hub's case). */
export function encodePushOfPublication(channel: string, publicationJson: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"pub":${publicationJson}}}`;
}

/** A ClientInfo as JSON text (`user` and `client` always present), to compute once per connection. */
export function encodeClientInfoJson(info: ClientInfo): string {
  return encodeMessage(info as unknown as Record<string, unknown>);
}

/**
 * Whether `text` is one JSON value that this codec can carry: it parses and nests no deeper
 * than MAX_NESTING_DEPTH. Use it to validate publication data once on the way in.
 */
export function isValidJsonText(text: string): boolean {
  if (nestingExceeds(text)) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** `bytes` fields: embedded JSON, written whenever defined (JSON null, 0 and false included). */
const OPAQUE_KEYS: ReadonlySet<string> = new Set(['data', 'conn_info', 'chan_info', 'prev_data']);
/** Map fields: every entry is written (a '' tag value too); an empty map is omitted. */
const MAP_KEYS: ReadonlySet<string> = new Set(['tags', 'subs', 'presence']);
/**
 * Written even when zero or empty (PROTO easyjson; PROTOCOL.md A.2). Matching by name means
 * `client` is also always written in connect/refresh results, where it is never empty anyway.
 */
const ALWAYS_KEYS: ReadonlySet<string> = new Set(['num_clients', 'num_users', 'presence', 'user', 'client']);

/**
 * A Reply or Push body: every defined field is written, except a zero `id` and an empty
 * `channel`; result objects are written even when empty.
 */
function encodeEnvelope(envelope: Record<string, unknown>): string {
  let out = '{';
  for (const key of Object.keys(envelope)) {
    const value = envelope[key];
    if (value === undefined || value === null || ((key === 'id' || key === 'channel') && !value)) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${encodeValue(value)}`;
  }
  return `${out}}`;
}

/** A protocol message: its fields, zero values omitted as Go omits them. */
function encodeMessage(message: Record<string, unknown>): string {
  let out = '{';
  for (const key of Object.keys(message)) {
    const part = encodeField(key, message[key]);
    if (part !== undefined) out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${part}`;
  }
  return `${out}}`;
}

/** One field's JSON, or undefined to omit it. */
function encodeField(key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (OPAQUE_KEYS.has(key)) return encodeOpaque(value);
  const always = ALWAYS_KEYS.has(key);
  if (MAP_KEYS.has(key)) return encodeMapField(value, always);
  if (!always && isZero(value)) return undefined;
  return encodeValue(value ?? defaultFor(key));
}

/** A map field: pre-encoded text as is; an empty map omitted unless always written. */
function encodeMapField(value: unknown, always: boolean): string | undefined {
  if (value instanceof RawJson) return rawText(value.text);
  if (!isPlainObject(value)) return always ? '{}' : undefined;
  if (!always && Object.keys(value).length === 0) return undefined;
  return encodeMap(value);
}

function isZero(value: unknown): boolean {
  return (
    value === null ||
    value === false ||
    value === 0 ||
    value === '' ||
    (Array.isArray(value) && value.length === 0)
  );
}

/** What an always-written field holds when the caller left it null. */
function defaultFor(key: string): unknown {
  return key === 'num_clients' || key === 'num_users' ? 0 : '';
}

function encodeMap(map: Record<string, unknown>): string {
  let out = '{';
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${encodeValue(value)}`;
  }
  return `${out}}`;
}

function encodeValue(value: unknown): string {
  if (value instanceof RawJson) return rawText(value.text);
  if (Array.isArray(value)) return `[${value.map((item) => encodeValue(item ?? null)).join(',')}]`;
  if (isPlainObject(value)) return encodeMessage(value);
  return JSON.stringify(value) ?? 'null';
}

/** Embedded user JSON: pre-encoded text spliced, anything else stringified. */
function encodeOpaque(value: unknown): string {
  if (value instanceof RawJson) return rawText(value.text);
  return JSON.stringify(value) ?? 'null';
}

/** Pre-encoded JSON without raw '\n' (only ever whitespace in valid JSON text). */
function rawText(text: string): string {
  return text.includes('\n') ? text.replaceAll('\n', '') : text;
}
