/**
 * Field checks for client commands. The codec only proves a command is an object with one
 * known method and fields of their wire types; what is inside comes from the network and is
 * read here, cheaply, before any handler trusts it. The rules are src/protocol/fields.ts's;
 * this file only says what the client protocol answers: 107 for a malformed field, and a
 * close (3501) for a missing channel, as the Go server does.
 */
import { isValidChannelName } from '../channels/names.js';
import { fieldChecks, isObject } from '../protocol/fields.js';
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';

export { isObject };

const check = fieldChecks((detail) => new ProtocolError(Errors.badRequest, detail));

/** An empty or missing channel closes the connection (3501), as the Go server does. */
export function channelOf(request: unknown): string {
  const channel = isObject(request) ? request.channel : undefined;
  if (channel === undefined || channel === '') throw new DisconnectError(Disconnect.BadRequest, 'empty channel');
  if (typeof channel !== 'string') throw new ProtocolError(Errors.badRequest, 'channel must be a string');
  if (!isValidChannelName(channel)) throw new ProtocolError(Errors.badRequest, 'invalid channel name');
  return channel;
}

/** The request as an object: a missing payload is an empty one. */
export function requestObject(request: unknown): Record<string, unknown> {
  if (request === undefined) return {};
  if (!isObject(request)) throw new ProtocolError(Errors.badRequest, 'request must be an object');
  return request;
}

export function optionalString(request: Record<string, unknown>, field: string): string | undefined {
  return check.string(request[field], field);
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
  return check.uint(value, field);
}

export function optionalInt(value: unknown, field: string): number | undefined {
  return check.int(value, field);
}
