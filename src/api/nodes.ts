/**
 * `channels` and `info`: the cluster as the node registry sees it (src/cluster/registry.ts),
 * every live gateway included, dead ones gone within the registry's TTL.
 */
import type { ApiMethod } from './context.js';
import { compileGlob } from './glob.js';
import { optionalString } from './params.js';

/** `{channels: {name: {num_clients}}}` for channels with subscribers, optionally matching a glob. */
export const channels: ApiMethod = async (ctx, params) => {
  const pattern = optionalString(params, 'pattern');
  const matches = pattern ? compileGlob(pattern) : () => true;
  // No prototype: on a plain object, `result['__proto__'] = …` sets the prototype instead of
  // a key, so a channel named `__proto__` vanished from the answer (issue 9).
  const result: Record<string, { num_clients: number }> = Object.create(null);
  for (const [name, count] of await ctx.registry.channels()) {
    if (count > 0 && matches(name)) result[name] = { num_clients: count };
  }
  return { channels: result };
};

/** `{nodes: [{uid, name, version, num_clients, num_users, num_channels, uptime, num_subs}]}`. */
export const info: ApiMethod = async (ctx) => ({ nodes: await ctx.registry.nodes() });
