/**
 * Just enough PromQL reading to hold the dashboard and the alert rules to what Tidings
 * exports: the metric names an expression selects, the labels it matches or groups by, and
 * whether each selector carries a given matcher. Not a parser: it relies on our metrics'
 * prefixes (tidings_, and prom-client's process_ and nodejs_) to tell metric names from
 * functions and keywords, which is why a name outside them has to be allowed by name.
 */
import { registry } from '../../src/observability/metrics.js';

/** Series Prometheus makes itself, per target. */
export const PROMETHEUS_SERIES = new Set(['up']);
/** Labels every scraped series gets: ours (`node`, src/observability/metrics.ts) and Prometheus' target labels. */
export const TARGET_LABELS = new Set(['node', 'job', 'instance', 'service']);

const SELECTOR = /\b((?:tidings|process|nodejs)_[a-z0-9_]+|up)\b(?!\s*\()(\{[^}]*\})?/g;
const MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const HISTOGRAM_SUFFIX = /_(bucket|count|sum)$/;

export interface Selector {
  /** As written (`…_bucket` included). */
  series: string;
  /** The metric it belongs to in the registry (histogram suffixes dropped). */
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

export function selectors(expr: string): Selector[] {
  return [...expr.matchAll(SELECTOR)].map((m) => ({
    series: m[1]!,
    metric: m[1]!.replace(HISTOGRAM_SUFFIX, ''),
    matchers: [...(m[2] ?? '').matchAll(MATCHER)].map((x) => ({ label: x[1]!, op: x[2]!, value: x[3]! })),
  }));
}

export function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(GROUPING)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()).filter(Boolean));
}

/** The labels each registered metric can carry. */
export function knownMetrics(): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  for (const metric of registry.getMetricsAsArray()) {
    const labels = (metric as { labelNames?: readonly string[] }).labelNames ?? [];
    known.set(metric.name, new Set(labels));
  }
  return known;
}

/**
 * What is wrong with an expression: unknown metrics, labels a metric does not have, grouping
 * by labels none of its metrics has. Empty when it only names what Tidings exports.
 */
export function problems(expr: string, known = knownMetrics()): string[] {
  const found = selectors(expr);
  const out: string[] = [];
  if (found.length === 0) out.push(`${expr}: selects no Tidings metric`);
  const available = new Set(TARGET_LABELS);
  for (const s of found) {
    const labels = PROMETHEUS_SERIES.has(s.series) ? new Set<string>() : known.get(s.metric);
    if (!labels) {
      out.push(`${s.series}: no such metric`);
      continue;
    }
    const own = new Set([...labels, ...TARGET_LABELS, ...(s.series.endsWith('_bucket') ? ['le'] : [])]);
    own.forEach((l) => available.add(l));
    for (const m of s.matchers) if (!own.has(m.label)) out.push(`${s.series}: no label ${m.label}`);
  }
  for (const label of groupingLabels(expr)) if (!available.has(label)) out.push(`${expr}: groups by ${label}, which no metric of it has`);
  return out;
}
