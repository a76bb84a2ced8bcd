/**
 * Field checks for API params. The body is only known to be a JSON object; each method
 * reads its fields through these, so a wrong type is a 107 with a log detail naming the
 * field, never a TypeError deep inside a method (which would be a 100).
 *
 * Centrifugo decodes params with protobuf JSON rules, where a missing field is its zero
 * value; here too a missing or null optional field is "not set". The type rules are shared
 * with client commands (src/protocol/fields.ts); what this file adds is the API's answer.
 */
import { isValidChannelName } from '../channels/names.js';
import type { NamespaceOptions, Namespaces } from '../config/namespaces.js';
import { fieldChecks, isObject } from '../protocol/fields.js';
import { ApiError, ApiErrors } from './errors.js';

export type Params = Record<string, unknown>;

export { isObject };

function bad(detail: string): ApiError {
  return new ApiError(ApiErrors.badRequest, detail);
}

/** The shared rules (src/protocol/fields.ts), answering 107 as the API does. */
const check = fieldChecks(bad);

/** A channel name: a non-empty string within the length and character rules, else 107. */
export function channelName(value: unknown, field = 'channel'): string {
  if (typeof value !== 'string' || value === '') throw bad(`${field} required`);
  if (!isValidChannelName(value)) throw bad(`${field}: invalid channel name`);
  return value;
}

/** The channel's namespace, or 102 for a namespace that is not configured. */
export function namespaceOf(namespaces: Namespaces, channel: string): NamespaceOptions {
  const ns = namespaces.of(channel);
  if (!ns) throw new ApiError(ApiErrors.unknownChannel, channel);
  return ns;
}

export function optionalString(params: Params, field: string): string | undefined {
  return check.string(params[field], field);
}

export function requiredString(params: Params, field: string): string {
  const value = optionalString(params, field);
  if (value === undefined || value === '') throw bad(`${field} required`);
  return value;
}

export function optionalBool(params: Params, field: string): boolean {
  return check.bool(params[field], field) ?? false;
}

export function optionalInt(params: Params, field: string): number | undefined {
  return check.int(params[field], field);
}

export function optionalStringList(params: Params, field: string): string[] {
  return check.stringList(params[field], field) ?? [];
}

/** `tags`: a map of strings, stored as JSON text; an empty map is no tags. */
export function tagsJson(params: Params): string | undefined {
  const tags = params.tags;
  if (tags === undefined || tags === null) return undefined;
  if (!isObject(tags) || !Object.values(tags).every((v) => typeof v === 'string')) {
    throw bad('tags must be a map of strings');
  }
  return Object.keys(tags).length === 0 ? undefined : JSON.stringify(tags);
}

/**
 * Fields Tidings does not implement: rejected with 108 when set to anything but their zero
 * value, rather than silently ignored (a caller relying on them must find out).
 */
export function rejectUnsupported(params: Params, fields: readonly string[]): void {
  for (const field of fields) {
    const value = params[field];
    if (value === undefined || value === null || value === false || value === 0 || value === '') continue;
    if (isObject(value) && Object.keys(value).length === 0) continue;
    throw new ApiError(ApiErrors.notAvailable, `${field} is not supported`);
  }
}
