/**
 * `webhook_dead_letters`: the lifecycle webhook events workers gave up on (src/webhooks/
 * dead-letters.ts), newest first: `{events: [{event, attempts, error, dead_at}], total}`.
 * `limit` (default 100, at most 1000) bounds the reply; `total` is how many the list holds.
 */
import type { ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { optionalInt } from './params.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

export const webhookDeadLetters: ApiMethod = async (ctx, params) => {
  const limit = optionalInt(params, 'limit') ?? DEFAULT_LIMIT;
  if (limit < 1 || limit > MAX_LIMIT) throw new ApiError(ApiErrors.badRequest, `limit must be 1-${MAX_LIMIT}`);
  return ctx.deadLetters.read(limit);
};
