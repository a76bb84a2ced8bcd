/**
 * Where the members of a JSON object (or the elements of an array) start and end in its
 * text, without parsing the values. The Protobuf codec transcodes what the JSON encoders
 * wrote (./protobuf/encode.ts) and must carry `data` and the other `bytes` fields over as the
 * exact JSON text, which a JSON.parse round trip would not (numbers past 2^53, `1.0`, key
 * order in nested objects). Node 20 has no JSON.parse source access, hence this scanner.
 *
 * Only for text that is valid JSON (what this server encoded or stored); it does not check.
 */

/** One member of an object: its key and the span [start, end) of its value. */
export interface Member {
  key: string;
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** `at` is on the opening quote; returns the index after the closing one. */
function skipString(text: string, at: number): number {
  for (let i = at + 1; ;) {
    const q = text.indexOf('"', i);
    if (q < 0) return text.length;
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** `at` is on the first character of a value; returns the index after it. */
export function skipValue(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (first === QUOTE) return skipString(text, at);
  if (first !== 0x7b && first !== 0x5b) return skipScalar(text, at);
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = skipString(text, i) - 1;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
  }
  return text.length;
}

/** A number, true, false or null: up to the next delimiter. */
function skipScalar(text: string, at: number): number {
  let i = at;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2c || c === 0x7d || c === 0x5d || isSpace(c)) break;
  }
  return i;
}

/** The members of the object whose `{` is at `at` (after any whitespace). */
export function membersOf(text: string, at: number): Member[] {
  const out: Member[] = [];
  let i = skipSpace(text, at) + 1;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= text.length || text.charCodeAt(i) !== QUOTE) return out;
    const keyEnd = skipString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the ':'
    const end = skipValue(text, start);
    out.push({ key, start, end });
    const next = skipSpace(text, end);
    if (text.charCodeAt(next) !== 0x2c) return out; // the '}'
    i = next + 1;
  }
}

/** The spans [start, end) of the elements of the array whose `[` is at `at`. */
export function elementsOf(text: string, at: number): [number, number][] {
  const out: [number, number][] = [];
  let i = skipSpace(text, skipSpace(text, at) + 1);
  while (i < text.length && text.charCodeAt(i) !== 0x5d) {
    const end = skipValue(text, i);
    out.push([i, end]);
    const next = skipSpace(text, end);
    if (text.charCodeAt(next) !== 0x2c) break; // the ']'
    i = skipSpace(text, next + 1);
  }
  return out;
}
