/**
 * The console's live view of one channel: `GET /admin/live?channel=…` answers a stream of
 * server-sent events (text/event-stream), fed by a subscriber of this gateway's hub. The
 * admin session authorises it, so the browser needs no user token, and the hub gives it what
 * it gives every subscriber (src/channels/hub.ts): each publication once, in offset order,
 * gaps filled from history.
 *
 * Events: `position` once ({offset, epoch}: the top when the stream went live), then `pub`
 * per publication (data: the client protocol's push frame), `gap` when the hub could not
 * close one (the stream then ends; the page reopens it). A comment line every HEARTBEAT_MS
 * keeps proxies from timing the stream out.
 *
 * Bounded: at most MAX_STREAMS at once per gateway (503 beyond), and a reader that lets
 * MAX_BUFFERED_BYTES pile up unread is cut off, like a slow client (3008).
 */
import type { ServerResponse } from 'node:http';
import type { Hub, Subscriber } from '../channels/hub.js';
import type { Namespaces } from '../config/namespaces.js';
import type { ChannelPosition } from '../db/repos/publications.js';
import type { Logger } from '../observability/logger.js';

const MAX_STREAMS = 16;
const MAX_BUFFERED_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export interface LiveDeps {
  hub: Hub;
  namespaces: Namespaces;
  position(channel: string): Promise<ChannelPosition>;
  log: Logger;
}

export class LiveStreams {
  private open = 0;

  constructor(private readonly deps: LiveDeps) {}

  /** Whether one more stream may start; the caller answers 503 when not. */
  get full(): boolean {
    return this.open >= MAX_STREAMS;
  }

  /** Serves the stream of an already validated channel of a configured namespace until the client goes. */
  async serve(res: ServerResponse, channel: string, recoveryMax: number): Promise<void> {
    this.open++;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const subscriber = streamSubscriber(res, recoveryMax);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    res.once('close', () => {
      this.open--;
      clearInterval(heartbeat);
      this.deps.hub.detach(channel, subscriber);
    });
    await this.goLive(res, channel, subscriber);
  }

  /** The hub's subscribe order: buffer first, then read the position, then release from it. */
  private async goLive(res: ServerResponse, channel: string, subscriber: Subscriber): Promise<void> {
    try {
      await this.deps.hub.attach(channel, subscriber);
      // Gone while attaching: its close handler ran before there was anything to detach.
      if (res.destroyed) return this.deps.hub.detach(channel, subscriber);
      const position = await this.deps.position(channel);
      if (res.destroyed) return;
      res.write(event('position', JSON.stringify({ offset: position.top, epoch: position.epoch })));
      this.deps.hub.start(channel, subscriber, position.top);
    } catch (err) {
      this.deps.log.warn({ err, channel }, 'admin live view could not start');
      res.end(event('error', '{}'));
    }
  }
}

/** A subscriber writing to the response. The close handler above detaches it. */
function streamSubscriber(res: ServerResponse, recoveryMax: number): Subscriber {
  return {
    recoveryMax,
    deliver(frame) {
      if (res.destroyed || res.writableEnded) return;
      if (res.writableLength > MAX_BUFFERED_BYTES) return void res.destroy();
      res.write(event('pub', frame.toString('utf8')));
    },
    writable() {
      if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
      return new Promise((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    },
    onGap() {
      if (!res.writableEnded) res.end(event('gap', '{}'));
    },
  };
}

/** One event; JSON has no raw line breaks, but a frame holding several is split so each line stays a `data:` line. */
function event(name: string, data: string): string {
  return `event: ${name}\n${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}
