/**
 * Fanout: `fanoutSubscribers` raw-protocol sockets subscribe to one channel (spread over the
 * gateways); one publisher sends `fanoutRate` publications a second to it for `duration`
 * seconds. Subscribers count push lines with a buffer search (no JSON decoding), because
 * 1,000 SDK instances would make the load generator the bottleneck.
 *
 * The clock starts at the first publish and stops when every subscriber has every
 * acknowledged publication (drain before the clock stops), so a server that falls behind
 * shows up as a lower rate, not as deliveries silently left in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { atLeast, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import { storedStats } from '../lib/db.js';
import { cpuMeter } from '../lib/proc.js';
import { RawClient } from '../lib/raw-client.js';

const TARGET_PER_S = 200_000;
const TICK_MS = 5;
const OPEN_CONCURRENCY = 50;
const DRAIN_TIMEOUT_MS = 30_000;

export async function fanout(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy();
  const channel = `fan${Date.now().toString(36)}`;
  const subscribers: RawClient[] = [];
  let acked = 0;
  let failed = 0;
  const publisher = await RawClient.open(dep.urls[0]!, ctx.token, {
    onReply: (_id, ok) => (ok ? acked++ : failed++),
  });
  try {
    await openAll(opts.fanoutSubscribers, OPEN_CONCURRENCY, async (i) => {
      const client = await RawClient.open(dep.urls[i % dep.urls.length]!, ctx.token);
      subscribers.push(client);
      client.countPushes();
      await client.subscribe(channel);
    });
    const delivered = () => subscribers.reduce((n, s) => n + s.pushes, 0);

    // Warm-up at the same rate (not counted), then let it drain before the measured run.
    await publishAtRate(publisher, channel, opts.fanoutRate, opts.warmup * 1000, 'w');
    await waitUntil(
      () =>
        acked + failed >= Math.round(opts.fanoutRate * opts.warmup) &&
        delivered() >= acked * subscribers.length,
      DRAIN_TIMEOUT_MS,
    );
    const baseDelivered = delivered();
    const baseAcked = acked;

    const meter = cpuMeter(dep.cpu);
    const started = performance.now();
    const sent = await publishAtRate(publisher, channel, opts.fanoutRate, opts.duration * 1000, 'm');
    const publishEnded = performance.now();
    const duringPublish = delivered() - baseDelivered;
    await waitUntil(() => acked + failed - baseAcked >= sent, DRAIN_TIMEOUT_MS);
    const expected = (acked - baseAcked) * subscribers.length;
    const drained = await waitUntil(() => delivered() - baseDelivered >= expected, DRAIN_TIMEOUT_MS);
    const stopped = performance.now();
    const cpuPercent = meter.stop();

    const stored = await storedStats(ctx.stack.databaseUrl, channel);
    const total = delivered() - baseDelivered;
    const elapsedS = (stopped - started) / 1000;
    const rate = Math.round(total / elapsedS);
    const perSubscriber = subscribers.map((s) => s.pushes);
    const complete = perSubscriber.filter((n) => n === acked).length;
    const disconnected = subscribers.filter((s) => s.closed).length;
    return {
      ok: drained && failed === 0 && complete === subscribers.length,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        subscribers: subscribers.length,
        publishRatePerS: opts.fanoutRate,
        durationS: opts.duration,
        client: 'raw ws (count push lines)',
      },
      metrics: {
        deliveriesPerS: rate,
        deliveries: total,
        expected,
        published: sent,
        acknowledged: acked - baseAcked,
        failed,
        secondsToDrain: round((stopped - publishEnded) / 1000),
        deliveredDuringPublishPerS: Math.round(duringPublish / ((publishEnded - started) / 1000)),
        subscribersComplete: complete,
        subscribersDisconnected: disconnected,
        publicationsPerJob: stored.publicationsPerJob,
      },
      targets: [atLeast('fanout deliveries', rate, 'deliveries/s', TARGET_PER_S)],
      cpuPercent,
      notes: [
        `${subscribers.length} raw ws subscribers, 1 publisher at ${opts.fanoutRate} msgs/s for ${opts.duration} s; clock stops after the drain`,
      ],
    };
  } finally {
    publisher.close();
    for (const s of subscribers) s.close();
  }
}

/** Publishes at `rate`/s for `ms`, paced by the clock; resolves with how many were sent. */
async function publishAtRate(
  client: RawClient,
  channel: string,
  rate: number,
  ms: number,
  tag: string,
): Promise<number> {
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) * rate) / 1000) - sent;
    if (due > 0) {
      const data: string[] = [];
      for (let i = 0; i < due; i++) data.push(`{"${tag}":${sent + i},"pad":"0123456789abcdef0123456789"}`);
      client.publishMany(channel, data);
      sent += due;
    }
    await sleep(TICK_MS);
  }
  const rest = Math.round((ms * rate) / 1000) - sent;
  if (rest > 0) {
    client.publishMany(
      channel,
      Array.from({ length: rest }, (_, i) => `{"${tag}":${sent + i}}`),
    );
    sent += rest;
  }
  return sent;
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

export async function openAll(
  n: number,
  concurrency: number,
  open: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await open(next++);
    }),
  );
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
