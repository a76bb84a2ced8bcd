/**
 * `batch`: `{commands: [{"publish": {…}}, {"history": {…}}, …], parallel?}` →
 * `{replies: [{"publish": {…}} | {"error": {…}}, …]}`, one reply per command, in order
 * (CFG `internal/api/api.go` `Batch`, `processCmd`).
 *
 * Without `parallel` the commands run one after another, so publications to one channel get
 * offsets in command order. With it they run together (at most PARALLEL_MAX at a time).
 * A command that is not an object is a 107; one with no known method (or a nested batch) a
 * 104 "not found".
 */
import { ApiError, ApiErrors, type ApiErrorBody } from './errors.js';
import { isObject, optionalBool, type Params } from './params.js';

/** As Centrifugo's batchRequestMaxConcurrency. */
const PARALLEL_MAX = 1024;

export type Outcome = { ok: true; json: string } | { ok: false; error: ApiErrorBody };

/** Runs one (non-batch) method; never rejects. */
export type RunOne = (method: string, params: Params) => Promise<Outcome>;

function encodeReply(method: string, outcome: Outcome): string {
  if (!outcome.ok) return `{"error":${JSON.stringify(outcome.error)}}`;
  return `{${JSON.stringify(method)}:${outcome.json}}`;
}

/** The command's method and params: its first key whose value is set. */
async function runCommand(command: unknown, isMethod: (name: string) => boolean, run: RunOne): Promise<string> {
  if (!isObject(command)) return encodeReply('', { ok: false, error: ApiErrors.badRequest });
  const method = Object.keys(command).find((key) => command[key] !== null && command[key] !== undefined);
  if (method === undefined || !isMethod(method)) return encodeReply('', { ok: false, error: ApiErrors.notFound });
  const params = command[method];
  if (!isObject(params)) return encodeReply(method, { ok: false, error: ApiErrors.badRequest });
  return encodeReply(method, await run(method, params));
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
  const parallel = optionalBool(params, 'parallel');
  const one = (i: number) => runCommand(commands[i], isMethod, run);
  const replies = await inPool(commands.length, parallel ? PARALLEL_MAX : 1, one);
  return `{"replies":[${replies.join(',')}]}`;
}
