/**
 * Memory per idle connection: a fresh gateway's VmRSS before and after `idleConnections`
 * raw-protocol clients connect (token checked, connect reply received) and then sit idle,
 * divided by their number. Then each subscribes to a channel of its own, and the same is
 * measured again for an idle subscribed connection. Each reading is the median of five.
 * RSS includes garbage the GC has not collected yet and heap the process keeps reserved, so
 * the figure is what the operating system charges, not the live heap per connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ScenarioContext, ScenarioOutcome } from '../lib/context.js';
import { rssBytes } from '../lib/proc.js';
import { RawClient } from '../lib/raw-client.js';
import { openAll } from './fanout.js';

const SETTLE_MS = 2000;
const SAMPLES = 5;
const SAMPLE_GAP_MS = 300;
const OPEN_CONCURRENCY = 100;

export async function rss(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const n = ctx.opts.idleConnections;
  const dep = await ctx.deploy({ gateways: 1, workers: 0 });
  const gateway = dep.gateways[0]!;
  const clients: RawClient[] = [];
  try {
    await sleep(SETTLE_MS);
    const before = await sampledRss(gateway.pid);
    await openAll(n, OPEN_CONCURRENCY, async () => {
      clients.push(await RawClient.open(dep.urls[0]!, ctx.token));
    });
    await sleep(SETTLE_MS);
    const connected = await sampledRss(gateway.pid);
    const run = `idle${Date.now().toString(36)}`;
    let i = 0;
    await openAll(n, OPEN_CONCURRENCY, async () => {
      const k = i++;
      await clients[k]!.subscribe(`${run}-${k}`);
    });
    await sleep(SETTLE_MS);
    const subscribed = await sampledRss(gateway.pid);
    const alive = clients.filter((c) => !c.closed).length;
    const kib = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;
    return {
      ok: alive === n,
      setup: { connections: n, settleMs: SETTLE_MS, rssSamples: SAMPLES },
      metrics: {
        rssBeforeMiB: mib(before),
        rssConnectedMiB: mib(connected),
        rssSubscribedMiB: mib(subscribed),
        perIdleConnectionKiB: kib((connected - before) / n),
        perSubscribedConnectionKiB: kib((subscribed - before) / n),
        stillConnected: alive,
      },
      targets: [],
      cpuPercent: {},
      notes: [
        `${n} raw ws clients connected idle to one gateway; then one subscription each to its own channel`,
      ],
    };
  } finally {
    for (const c of clients) c.close();
  }
}

/** Median of a few readings: RSS moves with the GC's rhythm even on an idle process. */
async function sampledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(SAMPLE_GAP_MS);
    samples.push(rssBytes(pid) ?? NaN);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(SAMPLES / 2)]!;
}

function mib(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}
