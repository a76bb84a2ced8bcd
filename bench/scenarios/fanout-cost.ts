/**
 * F1 of issue 11: 5,000 subscribers of one channel (alternating between the gateways), one
 * publisher at `--f1-rate` a second (20 by default: 100,000 deliveries a second, which the
 * one-process load generator can still read on two shared cores). The figure is deliveries
 * per gateway core-second: every delivery in the window over the gateways' CPU (from /proc)
 * in the same window, which depends little on the rate as long as nothing saturates.
 *
 * As in the fanout scenario, a warm-up is drained first, and the clock stops only once every
 * subscriber has every publication (drain before the clock stops); unlike it, every
 * subscriber checks offsets (lost, duplicated, out of order), not only counts.
 */
import { atLeast, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import {
  AckLedger,
  integrityReport,
  storedIntegrity,
  streamIntegrity,
  waitComplete,
} from '../lib/integrity.js';
import { costPerPublication, openWindow, round2 } from '../lib/measure.js';
import { peerTopology } from '../lib/options.js';
import { Publisher } from '../lib/publisher.js';
import { closeAll, openTracked, type Tracked } from '../lib/subscribers.js';

const TARGET_PER_CORE_S = 90_000;
const DRAIN_MS = 30_000;

export async function F1(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy(peerTopology(opts));
  const channel = `f1${Date.now().toString(36)}`;
  const ledger = new AckLedger();
  const subs = await openTracked(ctx, dep, opts.f1Subscribers, () => channel);
  const publisher = await Publisher.open(dep.urls[0]!, ctx.token, 0, ledger);
  try {
    await publisher.atRate(channel, opts.f1Rate, opts.warmup * 1000);
    await drain(ctx, publisher, subs, channel, ledger);
    const deliveredBefore = delivered(subs);

    const window = await openWindow(dep);
    const sentBefore = publisher.sent;
    const started = performance.now();
    await publisher.atRate(channel, opts.f1Rate, opts.duration * 1000);
    const publishEnded = performance.now();
    const drained = await drain(ctx, publisher, subs, channel, ledger);
    const stopped = performance.now();
    const w = await window.stop();

    const stored = await storedIntegrity(ctx.stack.databaseUrl, channel, ledger);
    const topOf = (c: string) => stored.tops.get(c) ?? 0;
    const integrity = integrityReport(streamIntegrity(subs, topOf), stored);
    const deliveries = delivered(subs) - deliveredBefore;
    const gatewayCoreS = Object.entries(w.cpu.seconds)
      .filter(([label]) => label.startsWith('gateway'))
      .reduce((s, [, v]) => s + v, 0);
    const perGatewayCoreS = Math.round(deliveries / Math.max(0.01, gatewayCoreS));
    const notes = [
      `${subs.length} raw ws subscribers of one channel over ${dep.urls.length} gateway(s), 1 publisher at ${opts.f1Rate} msgs/s for ${opts.duration} s; clock stops after the drain`,
    ];
    if (!drained) notes.push(`not drained ${DRAIN_MS / 1000} s after the last publish`);
    if (publisher.failed > 0) notes.push(`${publisher.failed} publishes failed`);
    const disconnected = subs.filter((s) => s.client.closed).length;
    if (disconnected > 0) notes.push(`${disconnected} subscribers were disconnected`);
    return {
      ok: integrity.ok && drained && publisher.failed === 0 && disconnected === 0,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        subscribers: subs.length,
        publishRatePerS: opts.f1Rate,
        durationS: opts.duration,
        redisAof: opts.redisAof,
      },
      metrics: {
        deliveriesPerGatewayCoreS: perGatewayCoreS,
        deliveries,
        deliveriesPerS: Math.round(deliveries / w.cpu.wallS),
        gatewayCoreS: round2(gatewayCoreS),
        published: publisher.sent - sentBefore,
        secondsToDrain: round2((stopped - publishEnded) / 1000),
        windowS: round2((stopped - started) / 1000),
        cpuMicrosPerPublication: costPerPublication(w.cpu, publisher.sent - sentBefore).allMicros,
        integrity,
      },
      targets: [atLeast('deliveries per gateway core-second', perGatewayCoreS, '', TARGET_PER_CORE_S)],
      cpuPercent: w.cpu.percent,
      cpuSeconds: w.cpu.seconds,
      notes,
    };
  } finally {
    publisher.close();
    closeAll(subs);
  }
}

/** Waits for every acknowledgement, then for every subscriber to have the channel's top. */
async function drain(
  ctx: ScenarioContext,
  publisher: Publisher,
  subs: Tracked[],
  channel: string,
  ledger: AckLedger,
): Promise<boolean> {
  if (!(await publisher.drained(DRAIN_MS))) return false;
  const stored = await storedIntegrity(ctx.stack.databaseUrl, channel, ledger);
  return waitComplete(subs, () => stored.tops.get(channel) ?? 0, DRAIN_MS);
}

function delivered(subs: Tracked[]): number {
  return subs.reduce((n, s) => n + s.check.received, 0);
}
