/**
 * Field checks for client commands. The codec only proves a command is an object with one
 * known method; what is inside comes from the network and is checked here, cheaply, before
 * any handler trusts a field's type.
 */
import { Disconnect, DisconnectError, Errors, ProtocolError } from '../protocol/codes.js';

const MAX_CHANNEL_BYTES = 255;

/** No control characters or whitespace: they break logs, keys and URLs, and no app needs them. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_IN_CHANNEL = /[\u0000-\u0020\u007f-\u009f\u2028\u2029]/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An empty or missing channel closes the connection (3501), as the Go server does. */
export function channelOf(request: unknown): string {
  const channel = isObject(request) ? request.channel : undefined;
  if (channel === undefined || channel === '') throw new DisconnectError(Disconnect.BadRequest, 'empty channel');
  if (typeof channel !== 'string') throw new ProtocolError(Errors.badRequest, 'channel must be a string');
  if (Buffer.byteLength(channel) > MAX_CHANNEL_BYTES || FORBIDDEN_IN_CHANNEL.test(channel)) {
    throw new ProtocolError(Errors.badRequest, 'invalid channel name');
  }
  return channel;
}

export function optionalString(request: Record<string, unknown>, field: string): string | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ProtocolError(Errors.badRequest, `${field} must be a string`);
  return value;
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
