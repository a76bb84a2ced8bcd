/**
 * R1 of issue 11: 5,000 subscribers of one channel (alternating between the gateways) drop
 * at once (their sockets are closed), 100 publications are committed while they are away,
 * and all of them reconnect at once, each subscribing with recovery from the offset and
 * epoch it had. Measured: from the first reconnect until every client has `recovered: true`
 * and all 100 publications in order (reply and pushes alike), exactly once.
 *
 * The clients are raw protocol sockets (bench/lib/raw-client.ts), not SDK instances: 5,000
 * SDKs would cost the load generator more than the gateways it measures. The first
 * subscriptions are opened a batch at a time; the reconnection is not batched at all (the
 * bench lifts the per-IP connection limits, BENCH_SERVER_DEFAULTS in bench/lib/stack.ts).
 * Per-client times of each step (socket + connect, subscribe reply, complete) say where the
 * time goes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { atMost, type Deployment, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import { AckLedger, integrityReport, waitFor, storedIntegrity, streamIntegrity } from '../lib/integrity.js';
import {
  costPerPublication,
  openWindow,
  percentiles,
  round2,
  rssPeak,
  scrape,
  total,
} from '../lib/measure.js';
import { peerTopology } from '../lib/options.js';
import { rssBytes } from '../lib/proc.js';
import { Publisher } from '../lib/publisher.js';
import { closeAll, openTracked, reconnect, type Recovering } from '../lib/subscribers.js';

const SEED = 10;
const MISSED = 100;
const TARGET_S = 1.5;
const STORM_TIMEOUT_MS = 60_000;
const DROP_TIMEOUT_MS = 30_000;
const RECOVERY_OUTCOMES = ['cache', 'postgres', 'not_recovered'];

export async function R1(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy(peerTopology(opts));
  const channel = `r1${Date.now().toString(36)}`;
  const ledger = new AckLedger();
  const publisher = await Publisher.open(dep.urls[0]!, ctx.token, 0, ledger);
  const back: Recovering[] = [];
  try {
    await publisher.burst(channel, SEED); // the channel has an epoch before anyone subscribes
    const first = await openTracked(ctx, dep, opts.r1Clients, () => channel);
    const positions = first.map((s) => ({ gateway: s.gateway, offset: s.check.startedAt, epoch: s.epoch }));
    closeAll(first);
    await waitConnections(dep, 1, DROP_TIMEOUT_MS); // only the publisher's is left
    await publisher.burst(channel, MISSED);
    const top = (await storedIntegrity(ctx.stack.databaseUrl, channel, ledger)).tops.get(channel) ?? 0;

    const recoveriesBefore = await recoveryCounts(dep);
    const rssBefore = dep.gateways.map((g) => rssBytes(g.pid) ?? 0);
    const peaks = dep.gateways.map((g) => rssPeak(g.pid));
    const window = await openWindow(dep);
    const t0 = performance.now();
    let failedOpens = 0;
    let lastOpenError = '';
    await Promise.all(
      positions.map(async (pos) => {
        try {
          back.push(await reconnect(dep.urls[pos.gateway]!, ctx.token, pos.gateway, channel, pos, top));
        } catch (err) {
          failedOpens++;
          lastOpenError = (err as Error).message;
        }
      }),
    );
    const allIn = await waitFor(() => back.every((r) => r.check.completedAt !== undefined), STORM_TIMEOUT_MS);
    const doneAt = Math.max(...back.map((r) => r.check.completedAt ?? performance.now()));
    await sleep(300); // a duplicate arriving late is still counted
    const w = await window.stop();
    const rssPeakBytes = peaks.map((p) => p.stop());
    const recoveriesAfter = await recoveryCounts(dep);

    const stored = await storedIntegrity(ctx.stack.databaseUrl, channel, ledger);
    const topOf = (c: string) => stored.tops.get(c) ?? 0;
    const streams = streamIntegrity(back, topOf);
    // A client that never came back lost all it missed.
    streams.subscribers += failedOpens;
    streams.lost += failedOpens * MISSED;
    streams.expected += failedOpens * MISSED;
    const integrity = integrityReport(streams, stored);
    const recovered = back.filter((r) => r.reply?.recovered).length;
    const refused = back.filter((r) => r.reply?.error).length;
    const allRecoveredS = round2((doneAt - t0) / 1000);
    const since = (at: (r: Recovering) => number) => percentiles(back.map((r) => (at(r) - t0) / 1000));
    const notes = [
      `${opts.r1Clients} raw ws clients over ${dep.urls.length} gateway(s) dropped; ${MISSED} publications while away; all reconnected at once with recover + offset/epoch`,
    ];
    if (!allIn) notes.push(`not every client complete within ${STORM_TIMEOUT_MS / 1000} s`);
    if (failedOpens > 0) notes.push(`${failedOpens} clients could not reconnect; last: ${lastOpenError}`);
    if (refused > 0)
      notes.push(
        `${refused} subscribe replies were errors, e.g. ${back.find((r) => r.reply?.error)?.reply?.error}`,
      );
    if (recovered < back.length) notes.push(`${back.length - recovered} replies without recovered: true`);
    const others = back.reduce((n, r) => n + r.client.otherPushes, 0);
    if (others > 0)
      notes.push(
        `${others} non-publication pushes, e.g. ${back.find((r) => r.client.otherPushes)?.client.lastOtherPush}`,
      );
    return {
      ok: integrity.ok && allIn && failedOpens === 0 && recovered === opts.r1Clients,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        clients: opts.r1Clients,
        missed: MISSED,
        redisAof: opts.redisAof,
      },
      metrics: {
        allRecoveredS,
        recoveredClients: recovered,
        clientsBack: back.length,
        connectRetries: back.reduce((n, r) => n + r.retries, 0),
        // Seconds from the start of the storm until each client had …
        connectedS: since((r) => r.connectedAt),
        subscribeReplyS: since((r) => r.repliedAt),
        completeS: since((r) => r.check.completedAt ?? NaN),
        publicationsInReply: percentiles(back.map((r) => r.inReply)),
        recoveryOutcomes: Object.fromEntries(
          RECOVERY_OUTCOMES.map((o) => [o, (recoveriesAfter[o] ?? 0) - (recoveriesBefore[o] ?? 0)]),
        ),
        gatewayRssGrowthMiB: rssPeakBytes.map((peak, i) => round2((peak - rssBefore[i]!) / 2 ** 20)),
        cpuMicrosPerClient: costPerPublication(w.cpu, opts.r1Clients).allMicros,
        integrity,
      },
      targets: [atMost('all recovered', allRecoveredS, 's', TARGET_S)],
      cpuPercent: w.cpu.percent,
      cpuSeconds: w.cpu.seconds,
      notes,
    };
  } finally {
    publisher.close();
    closeAll(back);
  }
}

/** Open client connections over all gateways, from their /metrics. */
async function connections(dep: Deployment): Promise<number> {
  const scrapes = await Promise.all(dep.httpUrls.map((u) => scrape(`${u}/metrics`)));
  return total(scrapes, 'tidings_gateway_connections');
}

/** Waits until the gateways count at most `n` connections (they noticed the drop). */
async function waitConnections(dep: Deployment, n: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await connections(dep)) > n) {
    if (performance.now() > deadline)
      throw new Error(`gateways still count more than ${n} connections after the drop`);
    await sleep(50);
  }
}

async function recoveryCounts(dep: Deployment): Promise<Record<string, number>> {
  const scrapes = await Promise.all(dep.httpUrls.map((u) => scrape(`${u}/metrics`)));
  return Object.fromEntries(
    RECOVERY_OUTCOMES.map((o) => [o, total(scrapes, 'tidings_recovery_total', `outcome="${o}"`)]),
  );
}
