/**
 * The JSON codec of the client protocol: text frames in, commands out; replies and pushes
 * in, compact JSON text out. Every frame the server writes is built by an encoder here.
 * Pure functions, no I/O.
 *
 * Contract:
 * - `decodeFrame` never throws. A frame is one or more commands joined by '\n' (centrifuge-js
 *   batches `connect` with the first `subscribe`s, PROTOCOL.md A.2); each line gets its own
 *   verdict, in order, so the caller can run them one after another.
 * - Every encoder returns one message with no raw '\n' inside, because the client splits
 *   frames on '\n' (JS:4381-4392). Strings go through JSON.stringify (which escapes newlines);
 *   publication data is spliced after dropping raw '\n' bytes, which in valid JSON text can
 *   only be whitespace (the same thing Go's `Raw.MarshalJSON` does); other spliced parts are
 *   compact JSON this codec or JSON.stringify wrote.
 * - Zero values are omitted as Go's encoder omits them, except the fields PROTOCOL.md A.2
 *   says are always emitted and those an encoder's comment names.
 */
import type { ErrorBody, UnsubscribeInfo } from './codes.js';
import { isInt, isObject, isUint } from './fields.js';
import { METHODS, type Command, type Method } from './types.js';

// ---------------------------------------------------------------------------------- decoding

/** Verdict on one line of a frame. */
export type DecodedCommand =
  | {
      ok: true;
      /** `id` 0 is normalised to absent: both mean "no reply expected". */
      command: Command;
      /** The one method key present, or null for a pong (`{}`) or an id-only command. */
      method: Method | null;
      /**
       * Set when the command is well formed but its content cannot be served, so it is
       * answered with error 107 in its turn rather than closing the connection: a Protobuf
       * payload whose bytes are not JSON text (docs/protocol.md, "Payloads").
       */
      refusal?: string;
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
function decodeLine(line: string): DecodedCommand {
  if (nestingExceeds(line)) return { ok: false, reason: `nesting deeper than ${MAX_NESTING_DEPTH}` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  return verdictOf(value);
}

/**
 * The structural verdict on one command already in its JSON shape: the JSON decoder's
 * parse, or the Protobuf decoder's (./protobuf/decode.ts), so both codecs hold commands to
 * the same rules.
 */
export function verdictOf(value: unknown): DecodedCommand {
  if (!isObject(value)) return { ok: false, reason: 'command is not a JSON object' };
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
  if (isUint(id)) return id === 0 ? undefined : id;
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
  if (!isObject(value)) return `${path} must be an object`;
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
  if (!isObject(value)) return `${path} must be an object`;
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
      return isUint(value);
    case 'int':
      return isInt(value);
    case 'json':
      return true;
  }
}

// ---------------------------------------------------------------------------------- encoding
//
// One named encoder per message the server writes, so that no frame is built anywhere else.
// Each concatenates: parts that are already JSON text (a stored publication, a ClientInfo, a
// presence map, a subscribe result) are spliced, never parsed and re-stringified, because
// fan-out and recovery write them at volume; every string goes through JSON.stringify. Field
// order and omissions are the Go server's (PROTOCOL.md A.2, B, C), and the protocol tests pin
// the bytes.

/** A server ping: a reply with neither id nor push (PROTOCOL.md A.4). */
export const SERVER_PING = '{}';

/** A result with no fields (`unsubscribe`, `publish`): written all the same, the client needs the key. */
export const EMPTY_RESULT = '{}';

/** Text of a publication as encodePublicationJson wrote it (a stored one carries it ready). */
export interface PublicationText {
  readonly json: string;
}

// ---------------------------------------------------------------- replies

/** `{"id":N,"<method>":<result>}`: the reply to command N, its result already JSON text. */
export function encodeResultReply(id: number, method: Method, resultJson: string): string {
  return `{"id":${id},"${method}":${resultJson}}`;
}

/** `{"id":N,"error":{"code":C,"message":"…"}}`, with `"temporary":true` only when set (Go omits false). */
export function encodeErrorReply(id: number, error: ErrorBody): string {
  const temporary = error.temporary ? ',"temporary":true' : '';
  return `{"id":${id},"error":{"code":${error.code},"message":${JSON.stringify(error.message)}${temporary}}}`;
}

/** `ttl` in seconds when the token expires (the client then refreshes it), undefined when it does not. */
function expiryPart(ttl: number | undefined): string {
  return ttl === undefined ? '' : `,"expires":true,"ttl":${ttl}`;
}

export interface ConnectResultFields {
  client: string;
  version: string;
  ttl?: number | undefined;
  /** Seconds between server pings; the client answers each (`pong`). Undefined: no pings. */
  ping?: number | undefined;
  /** The connect proxy's `data` for the client, as JSON text. */
  dataJson?: string | undefined;
}

/**
 * The connect result; `subsJson` is the server-side subscriptions' results
 * (encodeSubscribeResults), spliced as they are.
 */
export function encodeConnectResult(result: ConnectResultFields, subsJson?: string): string {
  let out = `{"client":${JSON.stringify(result.client)},"version":${JSON.stringify(result.version)}`;
  out += expiryPart(result.ttl);
  if (result.ping !== undefined) out += `,"ping":${result.ping},"pong":true`;
  if (result.dataJson !== undefined) out += `,"data":${result.dataJson}`;
  if (subsJson !== undefined) out += `,"subs":${subsJson}`;
  return `${out}}`;
}

/** The refresh result: the connect result's identity and new expiry, no pings, no subs. */
export function encodeRefreshResult(result: Omit<ConnectResultFields, 'ping'>): string {
  return `{"client":${JSON.stringify(result.client)},"version":${JSON.stringify(result.version)}${expiryPart(result.ttl)}}`;
}

/** The sub_refresh result: `{}` when the new subscription token does not expire. */
export function encodeSubRefreshResult(ttl: number | undefined): string {
  return ttl === undefined ? EMPTY_RESULT : `{"expires":true,"ttl":${ttl}}`;
}

export interface SubscribeResultFields {
  recoverable: boolean;
  ttl?: number | undefined;
  /** '' (a channel with no publication yet) is omitted. */
  epoch: string;
  /** The top, or after a recovery the client's own offset; 0 is omitted. */
  offset: number;
  wasRecovering: boolean;
  recovered: boolean;
  /** A recovery's first chunk, ascending by offset. */
  publications?: readonly PublicationText[] | undefined;
  /** The subscribe proxy's `data` for the client, as JSON text. */
  dataJson?: string | undefined;
}

/**
 * A subscribe result (the reply, a server-side subscription's entry in the connect reply, or
 * a `subscribe` push). `positioned` is always true: Tidings positions every stream.
 */
export function encodeSubscribeResult(result: SubscribeResultFields): string {
  let out = `{"recoverable":${result.recoverable},"positioned":true${expiryPart(result.ttl)}`;
  if (result.epoch) out += `,"epoch":${JSON.stringify(result.epoch)}`;
  if (result.offset > 0) out += `,"offset":${result.offset}`;
  if (result.wasRecovering) out += ',"was_recovering":true';
  if (result.recovered) out += ',"recovered":true';
  if (result.publications?.length) out += `,"publications":[${joinPublications(result.publications)}]`;
  if (result.dataJson !== undefined) out += `,"data":${result.dataJson}`;
  return `${out}}`;
}

/** The connect result's `subs`: channel → subscribe result (encodeSubscribeResult), in order. */
export function encodeSubscribeResults(
  results: readonly (readonly [channel: string, resultJson: string])[],
): string {
  return `{${results.map(([channel, result]) => `${JSON.stringify(channel)}:${result}`).join(',')}}`;
}

/**
 * The history result. Unlike Go, every field is written, an empty epoch and a zero offset
 * too; the client reads either.
 */
export function encodeHistoryResult(
  publications: readonly PublicationText[],
  epoch: string,
  top: number,
): string {
  return `{"publications":[${joinPublications(publications)}],"epoch":${JSON.stringify(epoch)},"offset":${top}}`;
}

/** Both counts always written, zeros included (PROTOCOL.md A.2). */
export function encodePresenceStatsResult(stats: { num_clients: number; num_users: number }): string {
  return `{"num_clients":${stats.num_clients},"num_users":${stats.num_users}}`;
}

function joinPublications(publications: readonly PublicationText[]): string {
  return publications.map((p) => p.json).join(',');
}

// ---------------------------------------------------------------- pushes

/** `{"push":{"channel":"C","<kind>":<body>}}`: every push Tidings sends is about a channel. */
function encodeChannelPush(channel: string, kind: string, bodyJson: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"${kind}":${bodyJson}}}`;
}

/**
 * `{"push":{"channel":"C","pub":{…}}}` around a publication encoded with
 * encodePublicationJson: the hub builds it once and writes the same bytes to every subscriber.
 */
export function encodePushOfPublication(channel: string, publicationJson: string): string {
  return encodeChannelPush(channel, 'pub', publicationJson);
}

/** Someone subscribed to or left the channel; `infoJson` is their ClientInfo, encoded once. */
export function encodeJoinLeavePush(channel: string, kind: 'join' | 'leave', infoJson: string): string {
  return encodeChannelPush(channel, kind, `{"info":${infoJson}}`);
}

/** The server ended the subscription; codes from 2500 make the client resubscribe (codes.ts). */
/** `{"push":{"message":{"data":D}}}`: an async message to the client (its client-level `message` event). */
export function encodeMessagePush(dataJson: string): string {
  return `{"push":{"message":{"data":${dataJson}}}}`;
}

export function encodeUnsubscribePush(channel: string, info: UnsubscribeInfo): string {
  return encodeChannelPush(
    channel,
    'unsubscribe',
    `{"code":${info.code},"reason":${JSON.stringify(info.reason)}}`,
  );
}

/** The server subscribed the connection (API `subscribe`); `resultJson` from encodeSubscribeResult. */
export function encodeSubscribePush(channel: string, resultJson: string): string {
  return encodeChannelPush(channel, 'subscribe', resultJson);
}

// ---------------------------------------------------------------- publications

/**
 * A publication as stored: its data (and optionally the publisher's info and the tags) are
 * already-encoded JSON text, validated once on the way in, and spliced verbatim here.
 */
export interface EncodedPublication {
  offset: number;
  /** The publication data as JSON text. */
  dataJson: string;
  /** Pre-encoded ClientInfo JSON (see clientInfoJson in ./publication.ts), or undefined. */
  infoJson?: string | undefined;
  /** Pre-encoded `{"key":"value"}` tags JSON, or undefined; '{}' is omitted. */
  tagsJson?: string | undefined;
  /** Set on offset 1 so early subscribers learn the epoch (as Go does); '' is omitted. */
  epoch?: string | undefined;
}

/**
 * `{"data":D,"offset":O,"info":I,"tags":T,"epoch":E}` by string concatenation, optional parts
 * omitted: the publication object inside pushes, subscribe and history results. Encoded once
 * per publication, when it is committed, then only spliced.
 */
export function encodePublicationJson(pub: EncodedPublication): string {
  let out = `{"data":${rawText(pub.dataJson)}`;
  if (pub.offset > 0) out += `,"offset":${pub.offset}`;
  if (pub.infoJson !== undefined) out += `,"info":${rawText(pub.infoJson)}`;
  if (pub.tagsJson !== undefined && pub.tagsJson !== '{}') out += `,"tags":${rawText(pub.tagsJson)}`;
  if (pub.epoch) out += `,"epoch":${JSON.stringify(pub.epoch)}`;
  return `${out}}`;
}

/** Pre-encoded JSON without raw '\n' (only ever whitespace in valid JSON text). */
function rawText(text: string): string {
  return text.includes('\n') ? text.replaceAll('\n', '') : text;
}
