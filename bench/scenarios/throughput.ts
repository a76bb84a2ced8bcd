/**
 * Durable publish throughput: `connections` raw protocol clients each keep `window`
 * publishes in flight (topped up in one WebSocket message per client per tick), cycling over
 * `channels` channels. Only success replies count, and a success reply is only written after
 * the worker's commit (guarantee 1), so this is committed publications per second.
 *
 * Afterwards it drains what is in flight and checks PostgreSQL: every channel's offsets are
 * 1..n without a gap, and at least as many rows exist as successes were counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { atLeast, type ScenarioContext, type ScenarioOutcome } from '../lib/context.js';
import { storedStats } from '../lib/db.js';
import { cpuMeter, NOT_COMPONENTS } from '../lib/proc.js';
import { RawClient } from '../lib/raw-client.js';

const TARGET_PER_S = 20_000;

interface Publisher {
  client: RawClient;
  inflight: number;
  seq: number;
  index: number;
}

export async function throughput(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { opts } = ctx;
  const dep = await ctx.deploy();
  const run = `tp${Date.now().toString(36)}`;
  const channels = Array.from({ length: opts.channels }, (_, i) => `${run}-${i}`);
  let ok = 0;
  let errors = 0;
  let stopping = false;
  const dirty = new Set<Publisher>();
  let scheduled = false;

  const topUp = (p: Publisher) => {
    if (stopping || p.client.closed) return;
    const room = opts.window - p.inflight;
    if (room <= 0) return;
    // One channel per message keeps the frame simple; successive messages rotate channels.
    const channel = channels[(p.index + p.seq) % channels.length]!;
    const data: string[] = [];
    for (let i = 0; i < room; i++) data.push(`{"n":${p.seq++},"pad":"0123456789abcdef"}`);
    p.inflight += room;
    p.client.publishMany(channel, data);
  };
  const flushDirty = () => {
    scheduled = false;
    for (const p of dirty) topUp(p);
    dirty.clear();
  };

  const publishers: Publisher[] = [];
  for (let i = 0; i < opts.connections; i++) {
    const p: Publisher = { client: undefined as unknown as RawClient, inflight: 0, seq: 0, index: i };
    p.client = await RawClient.open(dep.urls[i % dep.urls.length]!, ctx.token, {
      onReply: (_id, success) => {
        p.inflight--;
        if (success) ok++;
        else errors++;
        dirty.add(p);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flushDirty);
        }
      },
    });
    publishers.push(p);
  }

  try {
    for (const p of publishers) topUp(p);
    await sleep(opts.warmup * 1000);
    const meter = cpuMeter(dep.cpu);
    const okStart = ok;
    const errStart = errors;
    const started = performance.now();
    const perSecond: number[] = [];
    let last = ok;
    for (let s = 1; s <= opts.duration; s++) {
      // Timers may fire a little early: wait until the second boundary has really passed.
      while (performance.now() < started + s * 1000)
        await sleep(Math.max(1, started + s * 1000 - performance.now()));
      perSecond.push(ok - last);
      last = ok;
    }
    const elapsedS = (performance.now() - started) / 1000;
    const counted = ok - okStart;
    const erroredInWindow = errors - errStart;
    const cpuPercent = meter.stop();
    stopping = true;

    const drainStart = performance.now();
    while (publishers.some((p) => p.inflight > 0) && performance.now() - drainStart < 20_000) await sleep(20);
    const unanswered = publishers.reduce((n, p) => n + p.inflight, 0);
    const integrity = await checkIntegrity(ctx.stack.databaseUrl, run, ok);

    const rate = Math.round(counted / elapsedS);
    const notes = [
      `${opts.connections} raw-protocol connections x ${opts.window} publishes in flight, ${opts.channels} channels, payload ~40 B`,
    ];
    if (unanswered > 0) notes.push(`${unanswered} publishes still unanswered 20 s after the load stopped`);
    return {
      ok: integrity.ok && unanswered === 0,
      setup: {
        gateways: dep.gateways.length,
        workers: dep.workers.length,
        partitions: dep.partitions,
        connections: opts.connections,
        window: opts.window,
        channels: opts.channels,
        warmupS: opts.warmup,
        durationS: opts.duration,
      },
      metrics: {
        committedPerS: rate,
        acknowledged: counted,
        errorsInWindow: erroredInWindow,
        errorsTotal: errors,
        unanswered,
        perSecond,
        // CPU time per committed publication, per component: robust to a busy machine.
        cpuMicrosPerMsg: Object.fromEntries(
          Object.entries(cpuPercent)
            .filter(([k]) => !NOT_COMPONENTS.has(k))
            .map(([k, pct]) => [k, Math.round((pct / 100 / Math.max(1, rate)) * 1e6 * 10) / 10]),
        ),
        integrity,
      },
      targets: [atLeast('durable publish throughput', rate, 'msgs/s', TARGET_PER_S)],
      cpuPercent,
      notes,
    };
  } finally {
    stopping = true;
    for (const p of publishers) p.client.close();
  }
}

/** Offsets of every bench channel are exactly 1..count; rows >= successes seen. */
async function checkIntegrity(databaseUrl: string, run: string, acknowledged: number) {
  const stats = await storedStats(databaseUrl, `${run}-`);
  return { ok: stats.gapless && stats.stored >= acknowledged, acknowledged, ...stats };
}
