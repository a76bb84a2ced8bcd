/**
 * API key check, as Centrifugo's `APIKeyAuth` middleware (CFG `internal/middleware/auth.go`):
 *
 *  - an `X-API-Key` header, when present and non-empty, is the only thing looked at;
 *  - otherwise `Authorization: apikey <KEY>` (scheme case-insensitive, exactly two words);
 *  - no configured key (TIDINGS_API_KEY unset) → nothing is authorized.
 *
 * Centrifugo also accepts `?api_key=` in the URL; Tidings does not, because URLs end up in
 * proxy and access logs.
 *
 * Both sides are hashed with SHA-256 before `timingSafeEqual`: the digests have equal length
 * whatever was sent, so neither the comparison time nor a length check reveals the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The key a request presents, or undefined when it presents none. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const authorization = headers.authorization;
  if (!authorization) return undefined;
  const parts = authorization.trim().split(/\s+/);
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'apikey') return undefined;
  return parts[1];
}

/** Returns the request check for one configured key (undefined: the API is closed). */
export function apiKeyCheck(configuredKey: string | undefined): (headers: IncomingHttpHeaders) => boolean {
  if (!configuredKey) return () => false;
  const expected = digest(configuredKey);
  return (headers) => {
    const given = presentedKey(headers);
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };
}
