/**
 * `batch`: `{commands: [{"publish": {…}}, {"history": {…}}, …], parallel?}` →
 * `{replies: [{"publish": {…}} | {"error": {…}}, …]}`, one reply per command, in order
 * (CFG `internal/api/api.go` `Batch`, `processCmd`).
 *
 * Without `parallel` the commands run one after another, so publications to one channel get
 * offsets in command order. With it they run together (at most PARALLEL_MAX at a time).
 * A command that is not an object is a 107; one with no known method (or a nested batch) a
 * 104 "not found".
 *
 * Two bounds, because a 1 MiB body could otherwise ask for far more than 1 MiB of work and
 * answer: 300,000 empty commands, or 40 concurrent batches of 40,000 `info` calls whose
 * replies (24 MB each) took a gateway to 3.5 GB. A batch holds at most MAX_BATCH_COMMANDS
 * (more is a 107 for the whole request, nothing run), and once the replies so far pass
 * MAX_BATCH_REPLY_BYTES, the commands not yet started are not run and each answers 106
 * "limit exceeded": the caller sees exactly which ones to send again. With `parallel`, the
 * reads whose replies can be megabytes (LARGE_REPLY_METHODS) take turns, and the bound is
 * checked before each: 1,024 history calls started at once would have held gigabytes.
 */
import { ApiError, ApiErrors, type ApiErrorBody } from './errors.js';
import { isObject, optionalBool, type Params } from './params.js';

/** As Centrifugo's batchRequestMaxConcurrency. */
const PARALLEL_MAX = 1024;
/** Commands in one batch; ten times what a 1,000-publication batch (a common bulk size) needs. */
export const MAX_BATCH_COMMANDS = 10_000;
/** Reply bytes after which a batch's remaining commands are refused (106) rather than run. */
export const MAX_BATCH_REPLY_BYTES = 4 * 1024 * 1024;

export type Outcome = { ok: true; json: string } | { ok: false; error: ApiErrorBody };

/** Runs one (non-batch) method; never rejects. */
export type RunOne = (method: string, params: Params) => Promise<Outcome>;

function encodeReply(method: string, outcome: Outcome): string {
  if (!outcome.ok) return `{"error":${JSON.stringify(outcome.error)}}`;
  return `{${JSON.stringify(method)}:${outcome.json}}`;
}

/** What a command not run, because the batch's replies passed their bound, answers. */
const OVER_REPLY_BOUND = encodeReply('', { ok: false, error: ApiErrors.limitExceeded });

/**
 * Reads whose reply can be megabytes whatever their params (a `history` page is up to
 * TIDINGS_REPLY_MAX_BYTES). In a parallel batch these take turns; every other method (the
 * writes, whose replies are small) starts at once, in command order, as before: that order is
 * what queues a parallel batch's publishes and removals in command order.
 */
const LARGE_REPLY_METHODS = new Set([
  'presence',
  'history',
  'rpc',
  'unread',
  'catchup',
  'channels',
  'info',
  'webhook_dead_letters',
  'channel_search',
  'queue_stats',
  'ingest_failed',
  'workers',
]);

/** A command's method and params (its first key whose value is set), or the reply refusing it. */
function parseCommand(command: unknown, isMethod: (name: string) => boolean): { method: string; params: Params } | string {
  if (!isObject(command)) return encodeReply('', { ok: false, error: ApiErrors.badRequest });
  const method = Object.keys(command).find((key) => command[key] !== null && command[key] !== undefined);
  if (method === undefined || !isMethod(method)) return encodeReply('', { ok: false, error: ApiErrors.notFound });
  const params = command[method];
  if (!isObject(params)) return encodeReply(method, { ok: false, error: ApiErrors.badRequest });
  return { method, params };
}

async function inPool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const runner = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, runner));
  return results;
}

export async function runBatch(params: Params, isMethod: (name: string) => boolean, run: RunOne): Promise<string> {
  const commands = params.commands;
  if (!Array.isArray(commands)) throw new ApiError(ApiErrors.badRequest, 'commands must be a list');
  if (commands.length > MAX_BATCH_COMMANDS) {
    throw new ApiError(ApiErrors.badRequest, `more than ${MAX_BATCH_COMMANDS} commands in one batch`);
  }
  const parallel = optionalBool(params, 'parallel');
  let replyBytes = 0;
  let turns: Promise<unknown> = Promise.resolve();
  const one = async (i: number): Promise<string> => {
    const parsed = parseCommand(commands[i], isMethod);
    if (typeof parsed === 'string') return parsed;
    const { method, params: methodParams } = parsed;
    const runNow = async () => {
      if (replyBytes > MAX_BATCH_REPLY_BYTES) return OVER_REPLY_BOUND;
      const reply = encodeReply(method, await run(method, methodParams));
      replyBytes += Buffer.byteLength(reply);
      return reply;
    };
    if (!parallel || !LARGE_REPLY_METHODS.has(method)) return runNow();
    const turn = turns.then(runNow);
    turns = turn.catch(() => undefined); // `run` never rejects; a bug must not stall the rest
    return turn;
  };
  const replies = await inPool(commands.length, parallel ? PARALLEL_MAX : 1, one);
  return `{"replies":[${replies.join(',')}]}`;
}

