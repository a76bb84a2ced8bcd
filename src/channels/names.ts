/**
 * What a channel name may be. The same rule guards every way in (client commands, the HTTP
 * API, the ingest job a worker reads back), because a name that does not survive the round
 * trip through PostgreSQL and Redis unchanged would split one stream in two or wedge the
 * worker that cannot find its row again.
 */
import { isStorableText } from '../protocol/text.js';

export const MAX_CHANNEL_BYTES = 255;

/** No control characters or whitespace: they break logs, keys and URLs, and no app needs them. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_IN_CHANNEL = /[\u0000-\u0020\u007f-\u009f\u2028\u2029]/;

export function isValidChannelName(name: string): boolean {
  return (
    name.length > 0 &&
    // A lone surrogate (JSON's "\ud800" escape allows one) would be stored as U+FFFD.
    isStorableText(name, MAX_CHANNEL_BYTES) &&
    !FORBIDDEN_IN_CHANNEL.test(name)
  );
}
