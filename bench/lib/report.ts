/**
 * The summary of a run: each scenario's key figures over its rounds (median, min, max),
 * the targets judged on the median, and a plain-text table for stdout.
 */
import type { ScenarioResult } from './context.js';

interface Figure {
  label: string;
  unit: string;
  read(metrics: Record<string, unknown>): number | undefined;
}

export interface SummaryRow {
  scenario: string;
  label: string;
  unit: string;
  values: number[];
  median: number;
  min: number;
  max: number;
  target?: string;
  met?: boolean;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const at = (path: string) => (m: Record<string, unknown>) =>
  num(path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], m));

/** Lost + duplicated + out of order + acked but not stored (+ stored twice, + a gapped channel): 0 to pass. */
const integrityFigure: Figure = { label: 'integrity failures', unit: '', read: at('integrity.failures') };

/**
 * What the workers did in the window (T1, T2, L1, L2), per partition batch (what a BullMQ job
 * carried before bundles; now a job carries one or several) and per BullMQ job.
 */
const jobFigures: Figure[] = [
  { label: 'publications per batch', unit: '', read: at('publicationsPerJob') },
  { label: 'batches per commit', unit: '', read: at('jobsPerCommit') },
  { label: 'batches per BullMQ job', unit: '', read: at('batchesPerBullmqJob') },
  { label: 'Redis calls per BullMQ job', unit: '', read: at('redisCallsPerJob.total') },
  // The load generator's own lateness, part of every latency above (bench/lib/measure.ts).
  { label: 'load generator loop delay p50', unit: 'ms', read: at('loadgenDelayMs.p50') },
  { label: 'load generator loop delay p99', unit: 'ms', read: at('loadgenDelayMs.p99') },
];

/** Figures per scenario; the first is the headline (its median run supplies the CPU row). */
const FIGURES: Record<string, Figure[]> = {
  throughput: [
    { label: 'durable publish throughput', unit: 'msgs/s', read: at('committedPerS') },
    { label: 'publications per transaction', unit: '', read: at('integrity.publicationsPerJob') },
    {
      label: 'errors / unanswered',
      unit: '',
      read: (m) => (num(m.errorsTotal) ?? 0) + (num(m.unanswered) ?? 0),
    },
  ],
  latency: [
    { label: 'publish→deliver p50', unit: 'ms', read: at('deliverMs.p50') },
    { label: 'publish→deliver p99', unit: 'ms', read: at('deliverMs.p99') },
    { label: 'publish→deliver p90', unit: 'ms', read: at('deliverMs.p90') },
    { label: 'publish→deliver max', unit: 'ms', read: at('deliverMs.max') },
    { label: 'publish ack p50', unit: 'ms', read: at('publishAckMs.p50') },
    { label: 'publish ack p99', unit: 'ms', read: at('publishAckMs.p99') },
    { label: 'publications per transaction', unit: '', read: at('publicationsPerJob') },
  ],
  fanout: [
    { label: 'fanout deliveries', unit: 'deliveries/s', read: at('deliveriesPerS') },
    { label: 'drain after last publish', unit: 's', read: at('secondsToDrain') },
    { label: 'subscribers complete', unit: '', read: at('subscribersComplete') },
  ],
  rss: [
    { label: 'RSS per idle connection', unit: 'KiB', read: at('perIdleConnectionKiB') },
    { label: 'RSS per idle subscribed connection', unit: 'KiB', read: at('perSubscribedConnectionKiB') },
    { label: 'gateway RSS before', unit: 'MiB', read: at('rssBeforeMiB') },
    { label: 'gateway RSS with all subscribed', unit: 'MiB', read: at('rssSubscribedMiB') },
  ],
  T1: publishFigures('acknowledged publishes'),
  T2: publishFigures('acknowledged API publishes'),
  L1: latencyFigures(),
  L2: latencyFigures(),
  R1: [
    { label: 'all recovered', unit: 's', read: at('allRecoveredS') },
    { label: 'clients with recovered: true', unit: '', read: at('recoveredClients') },
    { label: 'socket + connect p50', unit: 's', read: at('connectedS.p50') },
    { label: 'socket + connect p99', unit: 's', read: at('connectedS.p99') },
    { label: 'subscribe reply p50', unit: 's', read: at('subscribeReplyS.p50') },
    { label: 'subscribe reply p99', unit: 's', read: at('subscribeReplyS.p99') },
    integrityFigure,
  ],
  G1: [
    { label: 'time to deliver all', unit: 's', read: at('elapsedS') },
    { label: 'delivered through the subscription', unit: '', read: at('deliveredThroughSubscription') },
    { label: 'recovered', unit: '(1 = yes)', read: (m) => (m.recovered === true ? 1 : 0) },
    { label: 'subscribe reply', unit: 's', read: at('subscribeReplyS') },
    { label: 'gateway RSS growth', unit: 'MiB', read: at('gatewayRssGrowthMiB') },
    integrityFigure,
  ],
  F1: [
    { label: 'deliveries per gateway core-second', unit: '', read: at('deliveriesPerGatewayCoreS') },
    { label: 'deliveries', unit: 'deliveries/s', read: at('deliveriesPerS') },
    { label: 'drain after last publish', unit: 's', read: at('secondsToDrain') },
    integrityFigure,
  ],
};

function publishFigures(headline: string): Figure[] {
  return [
    { label: headline, unit: 'msgs/s', read: at('committedPerS') },
    { label: 'publish→ack p50', unit: 'ms', read: at('publishAckMs.p50') },
    { label: 'publish→ack p99', unit: 'ms', read: at('publishAckMs.p99') },
    { label: 'CPU per committed publication', unit: 'µs', read: at('cpuMicrosPerPublication') },
    ...jobFigures,
    { label: 'errors', unit: '', read: at('errorsTotal') },
    integrityFigure,
  ];
}

function latencyFigures(): Figure[] {
  return [
    { label: 'publish→deliver p50', unit: 'ms', read: at('deliverMs.p50') },
    { label: 'publish→deliver p99', unit: 'ms', read: at('deliverMs.p99') },
    { label: 'publish→deliver p90', unit: 'ms', read: at('deliverMs.p90') },
    { label: 'publish→deliver max', unit: 'ms', read: at('deliverMs.max') },
    { label: 'publish→first delivery p50', unit: 'ms', read: at('firstDeliverMs.p50') },
    { label: 'first→last delivery p50', unit: 'ms', read: at('deliverySpreadMs.p50') },
    { label: 'publish ack p50', unit: 'ms', read: at('publishAckMs.p50') },
    { label: 'publish ack p99', unit: 'ms', read: at('publishAckMs.p99') },
    { label: 'CPU per committed publication', unit: 'µs', read: at('cpuMicrosPerPublication') },
    ...jobFigures,
    integrityFigure,
  ];
}

export function summarize(results: ScenarioResult[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const scenario of [...new Set(results.map((r) => r.name))]) {
    const runs = results.filter((r) => r.name === scenario && !r.error);
    for (const figure of FIGURES[scenario] ?? []) {
      const values = runs.map((r) => figure.read(r.metrics)).filter((v): v is number => v !== undefined);
      if (values.length === 0) continue;
      const sorted = [...values].sort((a, b) => a - b);
      const row: SummaryRow = {
        scenario,
        label: figure.label,
        unit: figure.unit,
        values,
        median: median(sorted),
        min: sorted[0]!,
        max: sorted[sorted.length - 1]!,
      };
      const target = runs[0]?.targets.find((t) => t.label === figure.label);
      if (target) {
        row.target = target.target;
        const bound = Number(target.target.slice(3));
        row.met = target.target.startsWith('>=') ? row.median >= bound : row.median <= bound;
      }
      rows.push(row);
    }
  }
  return rows;
}

export function table(results: ScenarioResult[], summary: SummaryRow[]): string {
  const rounds = Math.max(1, ...results.map((r) => r.round));
  const header = [
    'scenario',
    'metric',
    rounds > 1 ? `median of ${rounds} (min–max)` : 'value',
    'target',
    'met',
  ];
  const rows: string[][] = [header];
  for (const scenario of [...new Set(results.map((r) => r.name))]) {
    const runs = results.filter((r) => r.name === scenario);
    for (const r of runs.filter((run) => run.error))
      rows.push([scenario, `error (round ${r.round})`, r.error!.slice(0, 70), '', 'no']);
    for (const row of summary.filter((s) => s.scenario === scenario)) {
      const value =
        `${fmt(row.median)} ${row.unit}`.trim() + (rounds > 1 ? ` (${fmt(row.min)}–${fmt(row.max)})` : '');
      rows.push([
        scenario,
        row.label,
        value,
        row.target ?? '',
        row.met === undefined ? '' : row.met ? 'yes' : 'NO',
      ]);
    }
    const passed = runs.filter((r) => r.ok).length;
    rows.push([
      scenario,
      'checks (order, exactly once, errors)',
      `${passed} of ${runs.length} runs passed`,
      '',
      '',
    ]);
    const medianRun = pickMedianRun(
      runs,
      summary.find((s) => s.scenario === scenario),
    );
    if (medianRun?.cpuSeconds) {
      const seconds = medianRun.cpuSeconds;
      const cpu = Object.entries(seconds)
        .map(([k, v]) => `${k} ${fmt(v)} (${medianRun.cpuPercent[k] ?? '?'}%)`)
        .join(', ');
      rows.push([scenario, 'cpu, core-seconds (% of one core)', cpu, '', '']);
    } else {
      const cpu = Object.entries(medianRun?.cpuPercent ?? {})
        .map(([k, v]) => `${k} ${v}%`)
        .join(', ');
      if (cpu) rows.push([scenario, 'cpu, % of one core', cpu, '', '']);
    }
    const integrity = medianRun?.metrics.integrity as Record<string, unknown> | undefined;
    if (integrity && 'lost' in integrity) {
      rows.push([
        scenario,
        'integrity (at subscribers; in PostgreSQL)',
        `lost ${integrity.lost}, duplicated ${integrity.duplicated}, out of order ${integrity.outOfOrder}; ` +
          `acked not stored ${integrity.ackedNotStored}, stored twice ${integrity.storedTwice}, gapless ${integrity.gapless}`,
        '',
        '',
      ]);
    }
  }
  const widths = header.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return `\n${[line(header), rule, ...rows.slice(1).map(line)].join('\n')}\n\n`;
}

/** The run whose headline figure is the median one (for its CPU breakdown). */
function pickMedianRun(runs: ScenarioResult[], headline: SummaryRow | undefined): ScenarioResult | undefined {
  const ok = runs.filter((r) => !r.error);
  if (!headline || ok.length === 0) return ok[0];
  const figure = FIGURES[headline.scenario]![0]!;
  return ok.reduce((best, r) =>
    Math.abs((figure.read(r.metrics) ?? Infinity) - headline.median) <
    Math.abs((figure.read(best.metrics) ?? Infinity) - headline.median)
      ? r
      : best,
  );
}

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}
