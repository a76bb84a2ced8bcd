/**
 * T1 and T2 of issue 11: acknowledged (= committed, guarantee 1) publishes per second when
 * the publishers keep only a few publishes in flight, as real traffic does, so the workers
 * get jobs of a handful of publications instead of hundreds.
 *
 * - T1: 8 raw-protocol publisher connections, alternating between the gateways, each keeping
 *   16 publishes in flight (topped up as replies come), cycling over 100 channels.
 * - T2: the same through `POST /api/publish` (X-API-Key), 128 requests in flight over
 *   keep-alive connections, alternating between the gateways (bench/lib/api-client.ts says
 *   why `node:http` and not fetch).
 *
 * Both: 64-byte payloads, one subscriber per channel (alternating gateways), `warmup` then
 * `duration` seconds measured; publish→ack p50/p99 of the publishes sent in the window; CPU
 * per component and per committed publication; publications per job from the workers'
 * histogram. Then the load stops, drains, and every check of bench/lib/integrity.ts runs.
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
  payload,
  storedIntegrity,
  streamIntegrity,
  waitComplete,
} from '../lib/integrity.js';
import { costPerPublication, openWindow, percentiles } from '../lib/measure.js';
import { peerTopology } from '../lib/options.js';
import { Publisher } from '../lib/publisher.js';
import { closeAll, openTracked } from '../lib/subscribers.js';

const CHANNELS = 100;
const WS_PUBLISHERS = 8;
const WS_WINDOW = 16;
const HTTP_IN_FLIGHT = 128;
const DRAIN_MS = 20_000;
const T1_TARGET_PER_S = 20_000;
const T1_ACK_P99_MS = 50;
const T2_TARGET_PER_S = 10_000;

/** A running load: counts over its whole life, ack times of the publishes sent in the window. */
interface Load {
  acked(): number;
  errors(): number;
  ackMs(): number[];
  measure(from: number, to: number): void;
  /** Stops sending; resolves true once nothing is in flight. */
  stop(timeoutMs: number): Promise<boolean>;
  unanswered(): number;
  lastError(): string | undefined;
  close(): void;
}

export const T1 = (ctx: ScenarioContext) => publishLoad(ctx, 'ws');
export const T2 = (ctx: ScenarioContext) => publishLoad(ctx, 'http');

async function publishLoad(ctx: ScenarioContext, via: 'ws' | 'http'): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy(peerTopology(opts));
  const run = `${via === 'ws' ? 't1' : 't2'}${Date.now().toString(36)}`;
  const channels = Array.from({ length: CHANNELS }, (_, i) => `${run}-${i}`);
  const ledger = new AckLedger();
  const subs = await openTracked(ctx, dep, CHANNELS, (i) => channels[i]!);
  let load: Load | undefined;
  try {
    load = via === 'ws' ? await wsLoad(ctx, dep, channels, ledger) : httpLoad(dep, channels, ledger);
    await sleep(opts.warmup * 1000);
    const window = await openWindow(dep);
    const from = performance.now();
    load.measure(from, from + opts.duration * 1000);
    const ackedBefore = load.acked();
    const errorsBefore = load.errors();
    await sleep(opts.duration * 1000);
    const ackedInWindow = load.acked() - ackedBefore;
    const errorsInWindow = load.errors() - errorsBefore;
    const w = await window.stop();
    const drained = await load.stop(DRAIN_MS);

    const stored = await storedIntegrity(ctx.stack.databaseUrl, `${run}-`, ledger);
    const topOf = (channel: string) => stored.tops.get(channel) ?? 0;
    const complete = await waitComplete(subs, topOf, DRAIN_MS);
    const integrity = integrityReport(streamIntegrity(subs, topOf), stored);
    const rate = Math.round(ackedInWindow / w.cpu.wallS);
    const ack = percentiles(load.ackMs());
    const cost = costPerPublication(w.cpu, ackedInWindow);
    const notes = [
      via === 'ws'
        ? `${WS_PUBLISHERS} raw-protocol publishers x ${WS_WINDOW} in flight over ${dep.urls.length} gateway(s), ${CHANNELS} channels x 1 subscriber, 64 B payloads`
        : `POST /api/publish, ${HTTP_IN_FLIGHT} requests in flight (node:http keep-alive) over ${dep.urls.length} gateway(s), ${CHANNELS} channels x 1 subscriber, 64 B payloads`,
    ];
    if (!drained)
      notes.push(
        `${load.unanswered()} publishes still unanswered ${DRAIN_MS / 1000} s after the load stopped`,
      );
    if (!complete) notes.push(`subscribers still incomplete ${DRAIN_MS / 1000} s after the drain`);
    if (load.errors() > 0) notes.push(`${load.errors()} publishes failed; last: ${load.lastError() ?? '?'}`);
    const label = via === 'ws' ? 'acknowledged publishes' : 'acknowledged API publishes';
    return {
      ok: integrity.ok && drained && complete,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        partitions: dep.partitions,
        via,
        channels: CHANNELS,
        inFlight: via === 'ws' ? WS_PUBLISHERS * WS_WINDOW : HTTP_IN_FLIGHT,
        warmupS: opts.warmup,
        durationS: opts.duration,
        redisAof: opts.redisAof,
      },
      metrics: {
        committedPerS: rate,
        acknowledged: ackedInWindow,
        errorsInWindow,
        errorsTotal: load.errors(),
        unanswered: load.unanswered(),
        publishAckMs: ack,
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
        atLeast(label, rate, 'msgs/s', via === 'ws' ? T1_TARGET_PER_S : T2_TARGET_PER_S),
        ...(via === 'ws' ? [atMost('publish→ack p99', ack.p99, 'ms', T1_ACK_P99_MS)] : []),
      ],
      cpuPercent: w.cpu.percent,
      cpuSeconds: w.cpu.seconds,
      notes,
    };
  } finally {
    load?.close();
    closeAll(subs);
  }
}

async function wsLoad(
  ctx: ScenarioContext,
  dep: Deployment,
  channels: string[],
  ledger: AckLedger,
): Promise<Load> {
  const pubs: Publisher[] = [];
  try {
    for (let p = 0; p < WS_PUBLISHERS; p++) {
      pubs.push(await Publisher.open(dep.urls[p % dep.urls.length]!, ctx.token, p, ledger));
    }
  } catch (err) {
    for (const pub of pubs) pub.close();
    throw err;
  }
  // Publisher p's n-th publish goes to channel (n·8 + p) mod 100: every publisher covers every channel.
  pubs.forEach((pub, p) =>
    pub.keepInFlight(WS_WINDOW, (n) => channels[(n * WS_PUBLISHERS + p) % channels.length]!),
  );
  const sum = (f: (p: Publisher) => number) => pubs.reduce((s, p) => s + f(p), 0);
  return {
    acked: () => sum((p) => p.acked),
    errors: () => sum((p) => p.failed),
    ackMs: () => pubs.flatMap((p) => p.ackMs),
    measure(from, to) {
      for (const p of pubs) {
        p.measureFrom = from;
        p.measureTo = to;
      }
    },
    async stop(timeoutMs) {
      for (const p of pubs) p.stopWindow();
      const done = await Promise.all(pubs.map((p) => p.drained(timeoutMs)));
      return done.every(Boolean);
    },
    unanswered: () => sum((p) => p.unanswered),
    lastError: () => undefined,
    close() {
      for (const p of pubs) p.close();
    },
  };
}

function httpLoad(dep: Deployment, channels: string[], ledger: AckLedger): Load {
  let stopping = false;
  let acked = 0;
  let errors = 0;
  let inFlight = 0;
  let lastError: string | undefined;
  let from = Infinity;
  let to = Infinity;
  const ackMs: number[] = [];
  const perGateway = Math.ceil(HTTP_IN_FLIGHT / dep.httpUrls.length);
  const clients = dep.httpUrls.map((url) => new ApiClient(url, perGateway));
  const loop = async (k: number) => {
    const client = clients[k % clients.length]!;
    for (let n = 0; !stopping; n++) {
      const channel = channels[(n * HTTP_IN_FLIGHT + k) % channels.length]!;
      const t = performance.now();
      inFlight++;
      try {
        const res = await client.post(
          'publish',
          `{"channel":${JSON.stringify(channel)},"data":${payload(k, n)}}`,
        );
        if (res.status === 200 && res.text.startsWith('{"result"')) {
          acked++;
          ledger.ack(k, n);
          if (t >= from && t < to) ackMs.push(performance.now() - t);
        } else {
          errors++;
          lastError = `${res.status} ${res.text.slice(0, 200)}`;
        }
      } catch (err) {
        errors++;
        lastError = (err as Error).message;
        await sleep(10);
      } finally {
        inFlight--;
      }
    }
  };
  const loops = Array.from({ length: HTTP_IN_FLIGHT }, (_, k) => loop(k));
  return {
    acked: () => acked,
    errors: () => errors,
    ackMs: () => ackMs,
    measure(f, t) {
      from = f;
      to = t;
    },
    async stop(timeoutMs) {
      stopping = true;
      const settled = Promise.all(loops).then(() => true);
      return Promise.race([settled, sleep(timeoutMs).then(() => false)]);
    },
    unanswered: () => inFlight,
    lastError: () => lastError,
    close() {
      stopping = true;
      for (const c of clients) c.close();
    },
  };
}
