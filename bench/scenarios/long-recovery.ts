/**
 * G1 of issue 11: one client misses 50,000 publications, then resubscribes with its offset
 * and epoch. The target: every one of them arrives through the subscription (the reply's
 * first chunk, then publication pushes), in order, exactly once, within 1 s, while the
 * gateway's RSS grows by at most 64 MiB.
 *
 * The client subscribes after the channel's first publication (so it has an epoch), notes
 * its position and leaves; then the 50,000 are seeded through the server API, `POST
 * /api/batch` with `parallel: true`, 1,000 publishes a request and 4 requests in flight
 * (alternating gateways): the real publish path, so the Redis cache, PostgreSQL and the
 * channel's top are what production would have. Seeding is not measured (its rate is
 * reported). The RSS figure is the peak (sampled every 10 ms) of the client's gateway minus
 * its RSS just before the resubscribe.
 *
 * With the default `recovery_max` (TIDINGS_RECOVERY_MAX, 10,000) the gap is refused: the reply
 * has no `recovered: true` and nothing of the gap arrives. That is reported as a miss with
 * its reason, and counted as 50,000 lost (the workload asks for them through the subscription).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient } from '../lib/api-client.js';
import {
  atLeast,
  atMost,
  type Deployment,
  type ScenarioContext,
  type ScenarioOutcome,
} from '../lib/context.js';
import {
  AckLedger,
  integrityReport,
  waitFor,
  payload,
  storedIntegrity,
  streamIntegrity,
} from '../lib/integrity.js';
import { costPerPublication, openWindow, round2, rssPeak, scrape, total } from '../lib/measure.js';
import { peerTopology } from '../lib/options.js';
import { rssBytes } from '../lib/proc.js';
import { closeAll, openTracked, reconnect, type Recovering } from '../lib/subscribers.js';

const TARGET_S = 1;
const TARGET_RSS_MIB = 64;
const BATCH = 1000;
const BATCHES_IN_FLIGHT = 4;
const COMPLETE_TIMEOUT_MS = 60_000;
const DEFAULT_RECOVERY_MAX = 10_000; // src/config TIDINGS_RECOVERY_MAX

export async function G1(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const missed = opts.g1Missed;
  const dep = await ctx.deploy(peerTopology(opts));
  const channel = `g1${Date.now().toString(36)}`;
  const ledger = new AckLedger();
  let back: Recovering | undefined;
  try {
    await seed(dep, channel, 1, ledger, 0);
    const [before] = await openTracked(ctx, dep, 1, () => channel);
    const position = { offset: before!.check.startedAt, epoch: before!.epoch };
    const gateway = before!.gateway;
    closeAll([before!]);

    const seedStart = performance.now();
    await seed(dep, channel, missed, ledger, 1);
    const seedS = (performance.now() - seedStart) / 1000;
    const top = (await storedIntegrity(ctx.stack.databaseUrl, channel, ledger)).tops.get(channel) ?? 0;

    await sleep(500); // let the seeding's garbage settle before the RSS baseline
    const pid = dep.gateways[gateway]!.pid;
    const rssBefore = rssBytes(pid) ?? 0;
    const notRecoveredBefore = await notRecoveredCount(dep);
    const peak = rssPeak(pid);
    const window = await openWindow(dep);
    const t0 = performance.now();
    back = await reconnect(dep.urls[gateway]!, ctx.token, gateway, channel, position, top);
    const recovered = back.reply?.recovered === true;
    const b = back;
    const complete =
      recovered && (await waitFor(() => b.check.completedAt !== undefined, COMPLETE_TIMEOUT_MS));
    const completedAt = back.check.completedAt;
    await sleep(300); // a duplicate arriving late is still counted
    const w = await window.stop();
    const rssGrowthMiB = round2((peak.stop() - rssBefore) / 2 ** 20);
    // Time and memory only count for a recovery that delivered everything (else they are vacuous).
    const elapsedS = complete && completedAt !== undefined ? round2((completedAt - t0) / 1000) : null;
    const notRecovered = (await notRecoveredCount(dep)) - notRecoveredBefore;

    const stored = await storedIntegrity(ctx.stack.databaseUrl, channel, ledger);
    const topOf = (c: string) => stored.tops.get(c) ?? 0;
    const integrity = integrityReport(streamIntegrity([back], topOf), stored);
    const gap = top - position.offset;
    const recoveryMax = Number(opts.serverEnv.TIDINGS_RECOVERY_MAX ?? DEFAULT_RECOVERY_MAX);
    const delivered = back.check.contiguousTo - position.offset;
    const notes = [
      `1 raw ws client on gateway ${gateway + 1} missed ${missed} publications (seeded through POST /api/batch, ${BATCH} a request, ${BATCHES_IN_FLIGHT} in flight, in ${round2(seedS)} s), then subscribed with recover + offset/epoch`,
    ];
    if (!recovered) {
      const why =
        gap > recoveryMax
          ? `the gap of ${gap} publications is over recovery_max ${recoveryMax} (TIDINGS_RECOVERY_MAX)`
          : `the gap of ${gap} is within recovery_max ${recoveryMax}: history lacked its start or the epoch differed`;
      notes.push(
        `MISS: not recovered (reply without recovered: true${back.reply?.error ? `, error ${back.reply.error}` : ''}; ` +
          `the gateway counted ${notRecovered} not_recovered): ${why}; ${delivered} of ${gap} arrived through the subscription`,
      );
    } else if (!complete) {
      notes.push(`recovered, but only ${delivered} of ${gap} arrived within ${COMPLETE_TIMEOUT_MS / 1000} s`);
    }
    if (back.client.otherPushes > 0) notes.push(`non-publication push: ${back.client.lastOtherPush}`);
    return {
      ok: integrity.ok && complete,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        missed,
        seededWith: `POST /api/batch (parallel, ${BATCH} publishes a request)`,
        recoveryMax,
        redisAof: opts.redisAof,
      },
      metrics: {
        recovered,
        deliveredThroughSubscription: delivered,
        gap,
        elapsedS,
        inReply: back.inReply,
        subscribeReplyS: round2((back.repliedAt - t0) / 1000),
        gatewayRssGrowthMiB: rssGrowthMiB,
        notRecoveredCounted: notRecovered,
        seedPerS: Math.round(missed / seedS),
        cpuMicrosPerPublication: costPerPublication(w.cpu, Math.max(1, delivered)).allMicros,
        integrity,
      },
      targets: [
        atLeast('delivered through the subscription', delivered, '', missed),
        ...(elapsedS === null
          ? []
          : [
              atMost('time to deliver all', elapsedS, 's', TARGET_S),
              atMost('gateway RSS growth', rssGrowthMiB, 'MiB', TARGET_RSS_MIB),
            ]),
      ],
      cpuPercent: w.cpu.percent,
      cpuSeconds: w.cpu.seconds,
      notes,
    };
  } finally {
    if (back) closeAll([back]);
  }
}

/**
 * Publishes `count` through `POST /api/batch` (parallel), `BATCH` a request, `BATCHES_IN_FLIGHT`
 * requests at once, alternating gateways; payloads are (p = first + batch, n = index).
 */
async function seed(
  dep: Deployment,
  channel: string,
  count: number,
  ledger: AckLedger,
  first: number,
): Promise<void> {
  const clients = dep.httpUrls.map((url) => new ApiClient(url, BATCHES_IN_FLIGHT));
  const batches = Math.ceil(count / BATCH);
  let next = 0;
  const one = async (b: number) => {
    const size = Math.min(BATCH, count - b * BATCH);
    const commands = Array.from(
      { length: size },
      (_, i) => `{"publish":{"channel":${JSON.stringify(channel)},"data":${payload(first + b, i)}}}`,
    );
    const res = await clients[b % clients.length]!.post(
      'batch',
      `{"commands":[${commands.join(',')}],"parallel":true}`,
    );
    type Replies = { result?: { replies?: { publish?: unknown; error?: unknown }[] } };
    const replies = res.status === 200 ? (JSON.parse(res.text) as Replies).result?.replies : undefined;
    if (!replies) throw new Error(`seeding: /api/batch answered ${res.status} ${res.text.slice(0, 200)}`);
    replies.forEach((r, i) => {
      if (r.publish) ledger.ack(first + b, i);
    });
    const failed = replies.filter((r) => !r.publish);
    if (failed.length > 0)
      throw new Error(`seeding: ${failed.length} publishes failed, e.g. ${JSON.stringify(failed[0])}`);
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(BATCHES_IN_FLIGHT, batches) }, async () => {
        while (next < batches) await one(next++);
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}

async function notRecoveredCount(dep: Deployment): Promise<number> {
  const scrapes = await Promise.all(dep.httpUrls.map((u) => scrape(`${u}/metrics`)));
  return total(scrapes, 'tidings_recovery_total', 'outcome="not_recovered"');
}
