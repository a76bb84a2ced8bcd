/**
 * Methods for looking inside a deployment (issue 16), used by the admin console and open to
 * backends like every API method:
 *
 *   channel_search  {prefix, after?, limit?} → {channels: [{channel, epoch, offset, created_at}], next}
 *                   channels that ever had a publication, from PostgreSQL, by name prefix in
 *                   byte order, paged: `next` is the `after` of the next page ('' at the end)
 *   queue_stats     {} → {partitions: [{partition, waiting, active, delayed, failed,
 *                   oldest_waiting_ms, latency: {samples, p50_ms, p99_ms, max_ms}}]}
 *   ingest_failed   {partition, offset?, limit?} → {jobs: [{id, reason, failed_at, added_at,
 *                   publications, channels}], total}: a partition's failed ingest jobs
 *   workers         {} → {workers: [{id, name, uptime, last_seen_ms, partitions}]}
 *
 * Every reply is bounded: pages of at most MAX_PAGE, a prefix no longer than a channel name.
 */
import { MAX_CHANNEL_BYTES } from '../channels/names.js';
import { textProblem } from '../protocol/text.js';
import type { ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { optionalInt, optionalString, type Params } from './params.js';

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;
/** BullMQ keeps the last 10,000 failed jobs of a queue (src/ingest/client.ts `removeOnFail`). */
const MAX_FAILED_OFFSET = 10_000;

function bad(detail: string): ApiError {
  return new ApiError(ApiErrors.badRequest, detail);
}

function pageSize(params: Params): number {
  const limit = optionalInt(params, 'limit') ?? DEFAULT_PAGE;
  if (limit < 1 || limit > MAX_PAGE) throw bad(`limit must be 1-${MAX_PAGE}`);
  return limit;
}

/** Text fit for a query on channel names: at most a channel name long, storable. */
function nameText(params: Params, field: string): string | undefined {
  const value = optionalString(params, field);
  const problem = value === undefined ? undefined : textProblem(value, MAX_CHANNEL_BYTES);
  if (problem) throw bad(`${field} ${problem}`);
  return value;
}

export const channelSearch: ApiMethod = async (ctx, params) => {
  const prefix = nameText(params, 'prefix') ?? '';
  const after = nameText(params, 'after') || undefined;
  const limit = pageSize(params);
  const rows = await ctx.channelSearch({ prefix, after, limit });
  const channels = rows.map((r) => ({
    channel: r.channel,
    epoch: r.epoch,
    offset: r.offset,
    created_at: r.createdAt,
  }));
  return { channels, next: rows.length === limit ? rows[rows.length - 1]!.channel : '' };
};

export const queueStats: ApiMethod = async (ctx) => ({ partitions: await ctx.ingest.queueStats() });

export const ingestFailed: ApiMethod = async (ctx, params) => {
  const partition = optionalInt(params, 'partition');
  const offset = optionalInt(params, 'offset') ?? 0;
  const limit = pageSize(params);
  if (partition === undefined) throw bad('partition required');
  if (offset < 0 || offset > MAX_FAILED_OFFSET) throw bad(`offset must be 0-${MAX_FAILED_OFFSET}`);
  const jobs = ctx.ingest.failedJobs(partition, offset, limit);
  if (!jobs) throw bad('no such partition');
  const stats = await ctx.ingest.queueStats();
  return { jobs: await jobs, total: stats[partition]?.failed ?? 0 };
};

export const workers: ApiMethod = async (ctx) => ({ workers: await ctx.workers.list() });
