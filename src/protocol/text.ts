/**
 * Text that PostgreSQL and Redis store and give back unchanged. Every string that comes
 * from a client, a token or the HTTP API and reaches a `text` column must pass this at the
 * edge, because PostgreSQL refuses NUL (22021, which would fail a whole ingest job) and
 * silently stores a lone UTF-16 surrogate as U+FFFD (so two different keys would become
 * one). A byte bound keeps index rows far below btree's ~2.7 KB limit (54000).
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when `value` has no NUL, no lone surrogate, and at most `maxBytes` UTF-8 bytes. */
export function isStorableText(value: string, maxBytes: number): boolean {
  // length is a lower bound of the UTF-8 size: skip the byte count when it already fails.
  if (value.length > maxBytes || Buffer.byteLength(value) > maxBytes) return false;
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** Why `value` is not storable, for an error detail; undefined when it is. */
export function textProblem(value: string, maxBytes: number): string | undefined {
  if (value.includes('\u0000')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(value)) return 'contains a lone UTF-16 surrogate';
  if (value.length > maxBytes || Buffer.byteLength(value) > maxBytes) return `is longer than ${maxBytes} bytes`;
  return undefined;
}

/** Longest idempotency key, in UTF-8 bytes: ample for UUIDs and hashes, far below btree's limit. */
export const MAX_IDEMPOTENCY_KEY_BYTES = 512;

/** Longest user id (the token's `sub`) and client id, in UTF-8 bytes. */
export const MAX_USER_BYTES = 255;
