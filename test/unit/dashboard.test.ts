/** The Grafana dashboard only queries metrics that Tidings really exports, on the nodes picked. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { problems, selectors } from '../helpers/promql.js';

interface Dashboard {
  templating: { list: { name: string; type: string; query?: unknown; definition?: string; includeAll?: boolean; multi?: boolean }[] };
  panels: { id: number; title: string; targets: { expr: string }[] }[];
}

const dashboard = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'tidings-dashboard.json'), 'utf8'),
) as Dashboard;
const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));

describe('deploy/grafana/tidings-dashboard.json', () => {
  it('references existing metric names and labels only', () => {
    expect(exprs.length).toBeGreaterThan(10);
    expect(exprs.flatMap(({ expr }) => problems(expr))).toEqual([]);
  });

  it('has a node filter (every Tidings series carries `node`), used by every query of every panel', () => {
    const node = dashboard.templating.list.find((v) => v.name === 'node');
    expect(node).toMatchObject({ type: 'query', includeAll: true, multi: true });
    expect(node!.definition).toMatch(/^label_values\(\w+, node\)$/);
    for (const { panel, expr } of exprs) {
      for (const s of selectors(expr)) {
        expect(s.matchers, `${panel}: ${s.series}`).toContainEqual({ label: 'node', op: '=~', value: '$node' });
      }
    }
  });

  it('shows the HTTP API commands by method and result', () => {
    const api = dashboard.panels.find((p) => p.targets.some((t) => /tidings_api_commands_total/.test(t.expr)));
    expect(api?.title).toMatch(/API commands/);
    expect(api!.targets[0]!.expr).toMatch(/by \(method, result\)/);
  });

  it('has unique panel ids', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
