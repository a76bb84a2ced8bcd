/**
 * API `rpc`: `{method, params}`, answered by the app backend's RPC proxy as a client's `rpc`
 * is (issue 14), so a backend can reach its own RPC handlers through Tidings too. There is
 * no connection: the request has no `client` and an empty `user`. Without an RPC proxy, or
 * for a method Tidings keeps for itself (`tidings.`), 108.
 */
import { OWN_RPC_PREFIX } from '../config/proxy.js';
import type { ApiMethod } from './context.js';
import { ApiError, ApiErrors } from './errors.js';
import { optionalString } from './params.js';

export const rpc: ApiMethod = async (ctx, params) => {
  const method = optionalString(params, 'method') ?? '';
  if (method.startsWith(OWN_RPC_PREFIX) || !ctx.proxy.has('rpc')) throw new ApiError(ApiErrors.notAvailable, `rpc ${method}`);
  const body = { transport: 'http', protocol: 'json', encoding: 'json', user: '', method, data: params.params ?? null };
  const result = await ctx.proxy.call('rpc', body, { headers: {} });
  return result.data === undefined ? '{}' : `{"data":${JSON.stringify(result.data)}}`;
};
