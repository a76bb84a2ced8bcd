/**
 * Field checks for client commands. The codec only proves a command is an object with one
 * known method; what is inside comes from the network and is checked here, cheaply, before
 * any handler trusts a field's type.
 */
import { isValidChannelName } from '../channels/names.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An empty or missing channel closes the connection (3501), as the Go server does. */
export function channelOf(request: unknown): string {
  const channel = isObject(request) ? request.channel : undefined;
  if (channel === undefined || channel === '') throw new DisconnectError(Disconnect.BadRequest, 'empty channel');
  if (typeof channel !== 'string') throw new ProtocolError(Errors.badRequest, 'channel must be a string');
  if (!isValidChannelName(channel)) throw new ProtocolError(Errors.badRequest, 'invalid channel name');
  return channel;
}

export function optionalString(request: Record<string, unknown>, field: string): string | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ProtocolError(Errors.badRequest, `${field} must be a string`);
  return value;
}

/**
 * A token field: undefined when missing, null or empty (Centrifugo reads an empty token as
 * none), 107 when not a string. Callers then test `=== undefined` only: a truthiness test
 * in one place and an `!== undefined` test in another is how `token: ""` once opened a
 * private channel unverified (issue 9).
 */
export function optionalToken(request: Record<string, unknown>, field = 'token'): string | undefined {
  const value = optionalString(request, field);
  return value === '' ? undefined : value;
}

export function optionalOffset(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(Errors.badRequest, `${field} must be a non-negative integer`);
  }
  return value;
}

export function optionalInt(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new ProtocolError(Errors.badRequest, `${field} must be an integer`);
  }
  return value;
}
