/**
 * `channels` and `info`: the cluster as the node registry sees it (src/cluster/registry.ts),
 * every live gateway included, dead ones gone within the registry's TTL.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { compileGlob } from './glob.js';
import { optionalString } from './params.js';

/** Matching gives the event loop back this often, so sockets and health checks are served meanwhile. */
const MATCH_SLICE_MS = 5;
/** A pattern still matching after this long is refused: its cost grows with every channel. */
const MATCH_BUDGET_MS = 1000;

/**
 * `{channels: {name: {num_clients}}}` for channels with subscribers, optionally matching a glob.
 * A pattern costs up to (name length × pattern length) per channel (src/api/glob.ts), which a
 * hostile 1,000-character pattern turns into milliseconds per channel: matching runs in
 * slices and stops with a 107 past its budget, rather than hold the gateway for minutes.
 */
export const channels: ApiMethod = async (ctx, params) => {
  const pattern = optionalString(params, 'pattern');
  const matches = pattern ? compileGlob(pattern) : () => true;
  // No prototype: on a plain object, `result['__proto__'] = …` sets the prototype instead of
  // a key, so a channel named `__proto__` vanished from the answer (issue 9).
  const result: Record<string, { num_clients: number }> = Object.create(null);
  const began = performance.now();
  let slice = began;
  for (const [name, count] of await ctx.registry.channels()) {
    if (count > 0 && matches(name)) result[name] = { num_clients: count };
    if (performance.now() - slice < MATCH_SLICE_MS) continue;
    if (performance.now() - began > MATCH_BUDGET_MS) {
      throw new ApiError(ApiErrors.badRequest, `pattern: matching took over ${MATCH_BUDGET_MS} ms; use a simpler one`);
    }
    await nextTurn();
    slice = performance.now();
  }
  return { channels: result };
};

/** `{nodes: [{uid, name, version, num_clients, num_users, num_channels, uptime, num_subs}]}`. */
export const info: ApiMethod = async (ctx) => ({ nodes: await ctx.registry.nodes() });
