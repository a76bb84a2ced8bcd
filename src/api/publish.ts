/**
 * `publish` and `broadcast`: through the IngestClient, the very queue and worker that client
 * publishes take, so the result `{offset, epoch}` is given only after the commit
 * (guarantee 1), and offsets come from the one transaction that numbers the channel.
 *
 * - `data` is any JSON value (required; `null` is a value). `b64data` is refused with 107:
 *   Tidings speaks only the JSON protocol, which cannot carry binary payloads.
 * - `idempotency_key` is scoped to the channel and holds for as long as the publication
 *   would be retained, even after `history_remove` (unique indexes, checked inside the
 *   worker's transaction): a repeat publishes nothing and returns the first result
 *   (guarantee 5). Centrifugo keeps it 5 minutes. At most 512 bytes, no NUL, no lone
 *   surrogate (107 otherwise).
 * - `tags` (a map of strings) is stored with the publication and delivered with it.
 * - `skip_history` is accepted and has no effect: every publication is stored, which is
 *   the point of Tidings, so the result always carries offset and epoch. `delta` is
 *   accepted and ignored (subscribers get the full data, so nothing is lost).
 *   `version` / `version_epoch` are refused with 108 (not implemented).
 */
import { MAX_IDEMPOTENCY_KEY_BYTES, textProblem } from '../protocol/text.js';
import type { ApiContext, ApiMethod } from './context.js';
import { ApiError, ApiErrors, apiErrorOf, isExpectedError } from './errors.js';
import { channelName, namespaceOf, optionalString, rejectUnsupported, tagsJson, type Params } from './params.js';

interface PublishInput {
  data: string;
  tags: string | undefined;
  idempotencyKey: string | undefined;
}

export interface PublishResult {
  offset: number;
  epoch: string;
}

function publishInput(params: Params): PublishInput {
  const b64 = params.b64data;
  if (b64 !== undefined && b64 !== null && b64 !== '') {
    throw new ApiError(ApiErrors.badRequest, 'b64data: binary data cannot travel in the JSON protocol');
  }
  if (params.data === undefined) throw new ApiError(ApiErrors.badRequest, 'data required');
  rejectUnsupported(params, ['version', 'version_epoch']);
  return {
    data: JSON.stringify(params.data),
    tags: tagsJson(params),
    idempotencyKey: idempotencyKeyOf(params),
  };
}

/**
 * '' is "not set" (protobuf JSON's zero value). Anything else must be text PostgreSQL
 * stores unchanged and can index: a NUL would fail the commit, a lone surrogate would
 * collide with another key, and an over-long key would not fit the unique index.
 */
function idempotencyKeyOf(params: Params): string | undefined {
  const key = optionalString(params, 'idempotency_key');
  if (key === undefined || key === '') return undefined;
  const problem = textProblem(key, MAX_IDEMPOTENCY_KEY_BYTES);
  if (problem) throw new ApiError(ApiErrors.badRequest, `idempotency_key ${problem}`);
  return key;
}

async function publishTo(ctx: ApiContext, channel: string, input: PublishInput): Promise<PublishResult> {
  namespaceOf(ctx.namespaces, channel);
  const committed = await ctx.ingest.publish({
    channel,
    data: input.data,
    tags: input.tags,
    idempotencyKey: input.idempotencyKey,
  });
  return { offset: committed.offset, epoch: committed.epoch };
}

export const publish: ApiMethod = async (ctx, params) => {
  const channel = channelName(params.channel);
  return publishTo(ctx, channel, publishInput(params));
};

/**
 * The same data to many channels, all queued at once; `responses` follow the request order,
 * each a result or its own error (an empty or unknown channel fails only its entry).
 */
export const broadcast: ApiMethod = async (ctx, params) => {
  const channels = params.channels;
  if (!Array.isArray(channels) || channels.length === 0) throw new ApiError(ApiErrors.badRequest, 'channels required');
  const input = publishInput(params);
  const responses = await Promise.all(
    channels.map(async (channel: unknown) => {
      try {
        return { result: await publishTo(ctx, channelName(channel, 'channels[]'), input) };
      } catch (err) {
        if (!isExpectedError(err)) ctx.log.error({ err, channel }, 'broadcast publish failed');
        return { error: apiErrorOf(err) };
      }
    }),
  );
  return { responses };
};
