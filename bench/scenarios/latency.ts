/**
 * Publish→deliver latency at a fixed rate, with the official `centrifuge` SDK on both ends:
 * one publisher connection sends `rate` publications a second carrying the send time, one
 * subscriber connection (on the last gateway, so across gateways when there are two)
 * records receive time − send time. Both run in this process, so they share one clock.
 * The whole path is measured: gateway → queue → worker commit → Redis pub/sub → gateway →
 * socket. Also checks that the subscriber got every publication once, in offset order.
 */
import { Centrifuge } from 'centrifuge';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { atMost, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import { storedStats } from '../lib/db.js';
import { cpuMeter } from '../lib/proc.js';
import { percentiles } from '../lib/measure.js';

const P50_TARGET_MS = 10;
const P99_TARGET_MS = 30;
const TICK_MS = 1;

export async function latency(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy();
  const channel = `lat${Date.now().toString(36)}`;
  const publisher = sdkClient(dep.urls[0]!, ctx.token);
  const subscriber = sdkClient(dep.urls[dep.urls.length - 1]!, ctx.token);
  try {
    const deliver: number[] = [];
    const ack: number[] = [];
    const offsets: number[] = [];
    let measureFrom = Infinity;
    let received = 0;
    const sub = subscriber.newSubscription(channel);
    sub.on('publication', (pc) => {
      const now = performance.now();
      received++;
      offsets.push(Number(pc.offset));
      const sent = (pc.data as { t: number }).t;
      if (sent >= measureFrom) deliver.push(now - sent);
    });
    sub.subscribe();
    subscriber.connect();
    publisher.connect();
    await Promise.all([sub.ready(10_000), publisher.ready(10_000)]);

    let sent = 0;
    let failed = 0;
    const send = () => {
      const t = performance.now();
      sent++;
      publisher.publish(channel, { t, pad: 'x'.repeat(24) }).then(
        () => {
          if (t >= measureFrom) ack.push(performance.now() - t);
        },
        () => failed++,
      );
    };
    const start = performance.now();
    const totalMs = (opts.warmup + opts.duration) * 1000;
    let meter: ReturnType<typeof cpuMeter> | undefined;
    // Paced by the clock, not by timer counts: each tick sends what is due so far.
    while (performance.now() - start < totalMs) {
      const elapsed = performance.now() - start;
      if (!meter && elapsed >= opts.warmup * 1000) {
        measureFrom = performance.now();
        meter = cpuMeter(dep.cpu);
      }
      const due = Math.floor((elapsed * opts.rate) / 1000) - sent;
      for (let i = 0; i < due; i++) send();
      await sleep(TICK_MS);
    }
    const cpuPercent = meter?.stop() ?? {};
    const drainStart = performance.now();
    while (received < sent - failed && performance.now() - drainStart < 15_000) await sleep(20);

    const stored = await storedStats(ctx.stack.databaseUrl, channel);
    const d = percentiles(deliver);
    const a = percentiles(ack);
    const inOrder = offsets.every((o, i) => o === i + 1);
    const complete = received === sent - failed;
    return {
      ok: complete && inOrder && failed === 0,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        partitions: dep.partitions,
        rate: opts.rate,
        warmupS: opts.warmup,
        durationS: opts.duration,
      },
      metrics: {
        deliverMs: d,
        publishAckMs: a,
        sent,
        received,
        failed,
        exactlyOnceInOrder: complete && inOrder,
        publicationsPerJob: stored.publicationsPerJob,
      },
      targets: [
        atMost('publish→deliver p50', d.p50, 'ms', P50_TARGET_MS),
        atMost('publish→deliver p99', d.p99, 'ms', P99_TARGET_MS),
      ],
      cpuPercent,
      notes: [
        `centrifuge SDK publisher and subscriber (${dep.urls.length > 1 ? 'on different gateways' : 'on the same gateway'}), ${opts.rate} msgs/s, ~50 B payload`,
      ],
    };
  } finally {
    publisher.disconnect();
    subscriber.disconnect();
  }
}

function sdkClient(url: string, token: string): Centrifuge {
  return new Centrifuge(url, {
    token,
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 1000,
  });
}
