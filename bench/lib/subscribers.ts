/**
 * Subscribers whose every publication is checked (bench/lib/integrity.ts StreamCheck): raw
 * protocol sockets spread round-robin over the gateways, opened a batch at a time, each
 * reading offsets (and the send time of latency payloads) without decoding the JSON.
 */
import type { ScenarioContext, Deployment } from './context.js';
import { StreamCheck } from './integrity.js';
import {
  parseSubscribeReply,
  RawClient,
  replyPublicationOffsets,
  type SubscribeReply,
} from './raw-client.js';

export interface Tracked {
  client: RawClient;
  check: StreamCheck;
  channel: string;
  /** Index of the gateway it is connected to. */
  gateway: number;
  /** The channel's epoch as its subscribe reply gave it ('' before the first publication). */
  epoch: string;
}

export type OnPublication = (sub: Tracked, offset: number, sentAt: number, receivedAt: number) => void;

/** Sockets opened at once while setting up: the per-IP limits are lifted (BENCH_SERVER_DEFAULTS), this only keeps the accept queues short. */
export const OPEN_CONCURRENCY = 100;

/** Opens `count` subscribers, the i-th to `channelOf(i)` on gateway i mod the gateway count. */
export async function openTracked(
  ctx: ScenarioContext,
  dep: Deployment,
  count: number,
  channelOf: (i: number) => string,
  onPublication?: OnPublication,
): Promise<Tracked[]> {
  const subs: Tracked[] = [];
  try {
    await inBatches(count, OPEN_CONCURRENCY, async (i) => {
      subs.push(await openOne(ctx, dep, i % dep.urls.length, channelOf(i), onPublication));
    });
  } catch (err) {
    closeAll(subs);
    throw err;
  }
  return subs;
}

async function openOne(
  ctx: ScenarioContext,
  dep: Deployment,
  gateway: number,
  channel: string,
  onPublication: OnPublication | undefined,
): Promise<Tracked> {
  const check = new StreamCheck();
  const sub: Tracked = { client: undefined as unknown as RawClient, check, channel, gateway, epoch: '' };
  sub.client = await RawClient.open(dep.urls[gateway]!, ctx.token, {
    onPublication: (offset, sentAt, receivedAt) => {
      check.add(offset);
      onPublication?.(sub, offset, sentAt, receivedAt);
    },
  });
  // The position is taken from the reply before any push that followed it is counted.
  const reply = await sub.client.request(
    `"subscribe":{"channel":${JSON.stringify(channel)}}`,
    30_000,
    (line) => check.start(parseSubscribeReply(line).offset),
  );
  const parsed = parseSubscribeReply(reply);
  if (parsed.error) {
    sub.client.close();
    throw new Error(`subscribe to ${channel} failed: ${parsed.error}`);
  }
  sub.epoch = parsed.epoch;
  return sub;
}

export function closeAll(subs: { client: RawClient }[]): void {
  for (const s of subs) s.client.close();
}

/** Runs `task(0..n-1)` with at most `concurrency` at a time. */
export async function inBatches(
  n: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/** A client coming back: its new socket, what its subscribe reply said, and when each step ended. */
export interface Recovering {
  client: RawClient;
  check: StreamCheck;
  channel: string;
  gateway: number;
  reply: SubscribeReply | undefined;
  /** Publications the subscribe reply carried (the rest come as pushes). */
  inReply: number;
  /** performance.now() when the socket and `connect` were done, and when the subscribe reply came. */
  connectedAt: number;
  repliedAt: number;
  /** Failed attempts to open the socket before one succeeded. */
  retries: number;
}

const OPEN_ATTEMPTS = 5;

/**
 * Reconnects and subscribes with recovery from `offset`/`epoch`. Every publication, from the
 * reply and from pushes, goes to one StreamCheck started at `offset`; its `completedAt` is
 * set once every offset up to `top` has arrived. A socket that cannot be opened is retried
 * (as an SDK would) a few times; a refused subscribe is reported in `reply.error`.
 */
export async function reconnect(
  url: string,
  token: string,
  gateway: number,
  channel: string,
  position: { offset: number; epoch: string },
  top: number,
): Promise<Recovering> {
  const check = new StreamCheck();
  check.start(position.offset);
  check.expect(top);
  const r: Recovering = {
    client: undefined as unknown as RawClient,
    check,
    channel,
    gateway,
    reply: undefined,
    inReply: 0,
    connectedAt: NaN,
    repliedAt: NaN,
    retries: 0,
  };
  for (;;) {
    try {
      r.client = await RawClient.open(url, token, { onPublication: (offset) => check.add(offset) });
      break;
    } catch (err) {
      if (++r.retries >= OPEN_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
  r.connectedAt = performance.now();
  const body = `"subscribe":{"channel":${JSON.stringify(channel)},"recover":true,"offset":${position.offset},"epoch":${JSON.stringify(position.epoch)}}`;
  await r.client.request(body, 60_000, (line) => {
    r.reply = parseSubscribeReply(line);
    const offsets = replyPublicationOffsets(line);
    r.inReply = offsets.length;
    for (const offset of offsets) check.add(offset);
    r.repliedAt = performance.now();
  });
  return r;
}
