/**
 * join / leave announcements. They travel on the channel's topic like publications, but
 * carry no offset: a topic message starting with '!' is an event, not a publication batch
 * (a publication batch starts with the epoch, which is 8 letters or empty).
 *
 *   !j<ClientInfo JSON>   someone subscribed
 *   !l<ClientInfo JSON>   someone left
 */
import { publishTo, type RedisClient } from './client.js';
import type { Keys } from './keys.js';

export type ChannelEventKind = 'join' | 'leave';

export function encodeEvent(kind: ChannelEventKind, infoJson: string): string {
  return `!${kind === 'join' ? 'j' : 'l'}${infoJson}`;
}

export function decodeEvent(message: string): { kind: ChannelEventKind; infoJson: string } | undefined {
  if (message.charCodeAt(0) !== 33 /* ! */) return undefined;
  const kind = message[1] === 'j' ? 'join' : message[1] === 'l' ? 'leave' : undefined;
  return kind ? { kind, infoJson: message.slice(2) } : undefined;
}

export function isEvent(message: string): boolean {
  return message.charCodeAt(0) === 33;
}

export class ChannelEvents {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Best effort: an event lost while Redis is away is not worth failing a subscribe for. */
  announce(channel: string, kind: ChannelEventKind, infoJson: string): void {
    publishTo(this.redis, this.keys.cluster, this.keys.topic(channel), encodeEvent(kind, infoJson)).catch(() => {});
  }
}
