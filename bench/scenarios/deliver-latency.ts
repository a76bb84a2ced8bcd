/**
 * L1 and L2 of issue 11: publish→deliver latency over every delivery, with 200 subscribers
 * of one channel (alternating between the gateways) and one publisher (on the first gateway)
 * at 100 (L1) or 200 (L2) publications a second: 20,000 or 40,000 deliveries a second.
 *
 * Each payload carries its send time (`performance.now()` of this process) in `t`; the raw
 * client reads it and the offset from the push without decoding the JSON, and takes the
 * receive time once per WebSocket message, so the load generator adds as little as it can
 * to what it measures. Publisher and subscribers share this process's clock. The path is
 * the whole one: gateway → queue → worker commit → Redis pub/sub → both gateways → sockets.
 *
 * One process reads all 200 sockets, one message after another, so a publication's later
 * deliveries are timed later by however long the earlier ones took to read, which 200
 * separate devices would not see. Two more figures say how much that is: each
 * publication's first delivery, and the spread from its first to its last.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { atMost, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import {
  AckLedger,
  integrityReport,
  storedIntegrity,
  streamIntegrity,
  waitComplete,
} from '../lib/integrity.js';
import { costPerPublication, openWindow, percentiles } from '../lib/measure.js';
import { peerTopology } from '../lib/options.js';
import { Publisher } from '../lib/publisher.js';
import { closeAll, openTracked } from '../lib/subscribers.js';

const SUBSCRIBERS = 200;
const DRAIN_MS = 20_000;

interface LatencyTargets {
  rate: number;
  p50: number;
  p99: number;
}

export const L1 = (ctx: ScenarioContext) => deliverLatency(ctx, { rate: 100, p50: 5, p99: 15 });
export const L2 = (ctx: ScenarioContext) => deliverLatency(ctx, { rate: 200, p50: 6, p99: 20 });

async function deliverLatency(ctx: ScenarioContext, target: LatencyTargets): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy(peerTopology(opts));
  const channel = `lat${target.rate}-${Date.now().toString(36)}`;
  const ledger = new AckLedger();
  let from = Infinity;
  let to = Infinity;
  const samples: number[] = [];
  const byGateway: number[][] = dep.urls.map(() => []);
  // offset → its earliest and latest delivery latency
  const perPublication = new Map<number, { first: number; last: number }>();
  const subs = await openTracked(
    ctx,
    dep,
    SUBSCRIBERS,
    () => channel,
    (sub, offset, sentAt, receivedAt) => {
      if (sentAt >= from && sentAt < to) {
        const ms = receivedAt - sentAt;
        samples.push(ms);
        byGateway[sub.gateway]!.push(ms);
        const seen = perPublication.get(offset);
        if (!seen) perPublication.set(offset, { first: ms, last: ms });
        else {
          seen.first = Math.min(seen.first, ms);
          seen.last = Math.max(seen.last, ms);
        }
      }
    },
  );
  let publisher: Publisher | undefined;
  try {
    publisher = await Publisher.open(dep.urls[0]!, ctx.token, 0, ledger);
    await publisher.atRate(channel, target.rate, opts.warmup * 1000);
    const window = await openWindow(dep);
    from = performance.now();
    to = from + opts.duration * 1000;
    publisher.measureFrom = from;
    publisher.measureTo = to;
    const sentBefore = publisher.sent;
    await publisher.atRate(channel, target.rate, opts.duration * 1000);
    const w = await window.stop();
    const drained = await publisher.drained(DRAIN_MS);

    const stored = await storedIntegrity(ctx.stack.databaseUrl, channel, ledger);
    const topOf = (c: string) => stored.tops.get(c) ?? 0;
    const complete = await waitComplete(subs, topOf, DRAIN_MS);
    await sleep(100); // a duplicate arriving late is still counted
    const integrity = integrityReport(streamIntegrity(subs, topOf), stored);
    const deliver = percentiles(samples);
    const ack = percentiles(publisher.ackMs);
    const cost = costPerPublication(w.cpu, publisher.sent - sentBefore);
    const notes = [
      `${subs.length} raw ws subscribers of one channel over ${dep.urls.length} gateway(s), 1 publisher on gateway 1 at ${target.rate} msgs/s, 64 B payloads`,
    ];
    if (!drained)
      notes.push(`${publisher.unanswered} publishes unanswered ${DRAIN_MS / 1000} s after the last`);
    if (!complete) notes.push(`subscribers still incomplete ${DRAIN_MS / 1000} s after the drain`);
    if (publisher.failed > 0) notes.push(`${publisher.failed} publishes failed`);
    return {
      ok: integrity.ok && drained && complete && publisher.failed === 0,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        partitions: dep.partitions,
        subscribers: subs.length,
        rate: target.rate,
        warmupS: opts.warmup,
        durationS: opts.duration,
        redisAof: opts.redisAof,
      },
      metrics: {
        deliverMs: deliver,
        deliverMsByGateway: byGateway.map((g) => percentiles(g)),
        firstDeliverMs: percentiles([...perPublication.values()].map((p) => p.first)),
        deliverySpreadMs: percentiles([...perPublication.values()].map((p) => p.last - p.first)),
        publishAckMs: ack,
        deliveriesPerS: Math.round(deliver.samples / w.cpu.wallS),
        sent: publisher.sent,
        failed: publisher.failed,
        cpuMicrosPerPublication: cost.allMicros,
        cpuMicrosPerPublicationByComponent: cost.perComponentMicros,
        jobs: w.jobs,
        publicationsPerJob: w.publicationsPerJob,
        jobsPerCommit: w.jobsPerCommit,
        batchesPerBullmqJob: w.batchesPerBullmqJob,
        redisCallsPerJob: w.redisCallsPerJob,
        loadgenDelayMs: w.loadgenDelayMs,
        integrity,
      },
      targets: [
        atMost('publish→deliver p50', deliver.p50, 'ms', target.p50),
        atMost('publish→deliver p99', deliver.p99, 'ms', target.p99),
      ],
      cpuPercent: w.cpu.percent,
      cpuSeconds: w.cpu.seconds,
      notes,
    };
  } finally {
    publisher?.close();
    closeAll(subs);
  }
}
