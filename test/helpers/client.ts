/**
 * The official centrifuge-js SDK as the test client (never a hand-written stand-in), with
 * a recorder that keeps every publication a subscription delivered, in arrival order.
 */
import { Centrifuge, type Subscription } from 'centrifuge';
import WebSocket from 'ws';
import { waitFor } from './wait.js';

export interface Received {
  offset: number;
  data: unknown;
  epoch?: string;
  tags?: Record<string, string>;
}

export interface SubscribedEvent {
  wasRecovering: boolean;
  recovered: boolean;
  publications: number;
  /** The subscribe reply's stream position (the client's offset after a recovery). */
  epoch?: string;
  offset?: number;
}

export interface RecordedSubscription {
  sub: Subscription;
  received: Received[];
  subscribedEvents: SubscribedEvent[];
  offsets(): number[];
}

/** The SDK options every test client starts from: the `ws` transport and quick reconnects. */
export const TEST_CLIENT_OPTIONS = { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 500 };

export function newClient(url: string, token: string, opts: Record<string, unknown> = {}): Centrifuge {
  return new Centrifuge(url, { token, ...TEST_CLIENT_OPTIONS, ...opts });
}

export function record(client: Centrifuge, channel: string, opts: Record<string, unknown> = {}): RecordedSubscription {
  const sub = client.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 500, ...opts });
  const received: Received[] = [];
  const subscribedEvents: SubscribedEvent[] = [];
  sub.on('publication', (ctx) => received.push({ offset: Number(ctx.offset), data: ctx.data, ...(ctx.tags ? { tags: ctx.tags } : {}) }));
  sub.on('subscribed', (ctx) =>
    subscribedEvents.push({
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      publications: ctx.hasRecoveredPublications ? 1 : 0,
      ...(ctx.streamPosition ? { epoch: ctx.streamPosition.epoch, offset: Number(ctx.streamPosition.offset) } : {}),
    }),
  );
  return { sub, received, subscribedEvents, offsets: () => received.map((r) => r.offset) };
}

/** Connects and subscribes; resolves once the subscription is live. */
export async function subscribed(url: string, token: string, channel: string) {
  const client = newClient(url, token);
  const rec = record(client, channel);
  rec.sub.subscribe();
  client.connect();
  await rec.sub.ready(10_000);
  return { client, ...rec };
}

export async function connected(url: string, token: string): Promise<Centrifuge> {
  const client = newClient(url, token);
  client.connect();
  await client.ready(10_000);
  return client;
}

/** Asserts-friendly view: offsets must be exactly 1..n once each, in order. */
export function expectContiguous(offsets: number[], n: number, from = 1): string | undefined {
  if (offsets.length !== n) return `expected ${n} publications, got ${offsets.length}`;
  for (let i = 0; i < n; i++) {
    if (offsets[i] !== from + i) return `at index ${i}: expected offset ${from + i}, got ${offsets[i]}`;
  }
  return undefined;
}

export async function waitForCount(rec: { received: Received[] }, n: number, what: string, timeoutMs = 30_000) {
  await waitFor(`${what}: ${n} publications (have ${rec.received.length})`, () => rec.received.length >= n, { timeoutMs });
}
