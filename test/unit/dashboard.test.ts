/** The Grafana dashboard only queries metrics that Tidings really exports. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registry } from '../../src/observability/metrics.js';

describe('deploy/grafana/tidings-dashboard.json', () => {
  it('references existing metric names only', () => {
    const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'tidings-dashboard.json'), 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const known = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\b(tidings|process|nodejs)_[a-z0-9_]+/g) ?? []));
    expect(used.length).toBeGreaterThan(10);
    const unknown = used.map((name) => name.replace(/_(bucket|count|sum)$/, '')).filter((name) => !known.has(name));
    expect(unknown).toEqual([]);
  });
});
