/**
 * `docker compose --profile observability up` (issue 16), checked by reading, as Docker does
 * not run here: Prometheus scrapes every gateway and worker of docker-compose.yml on the port
 * it serves /metrics on, and loads alert rules that only name metrics and labels Tidings
 * exports; Grafana gets the data source and the dashboard from read-only provisioning files;
 * its admin password is refused when missing or guessable.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { interpolate, readCompose, ROOT, serviceCommand, serviceEnv, type ComposeService } from '../../deploy/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { problems } from '../helpers/promql.js';

const compose = readCompose();
const services = compose.services;
const EXPORTED = {
  TIDINGS_TOKEN_SECRET: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=',
  TIDINGS_API_KEY: '0123456789abcdef0123456789abcdef0123456789abcdef',
  POSTGRES_PASSWORD: '5f4dcc3b5aa765d61d8327deb882cf99',
};

/** host path → container path of a service's bind mounts, with the read-only flag. */
function mounts(service: ComposeService): { host: string; container: string; readOnly: boolean }[] {
  return (service.volumes ?? []).map(String).filter((v) => v.startsWith('./')).map((v) => {
    const [host, container, mode] = v.split(':');
    return { host: host!, container: container!, readOnly: mode === 'ro' };
  });
}
const mountOf = (service: ComposeService, host: string) => mounts(service).find((m) => m.host === host);
const readYaml = <T>(path: string) => parse(readFileSync(join(ROOT, path), 'utf8')) as T;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type: string; port: number }[];
}
const prometheus = services.prometheus!;
const grafana = services.grafana!;
const promConfig = readYaml<{ rule_files: string[]; scrape_configs: ScrapeConfig[] }>('deploy/prometheus/prometheus.yml');
const rules = readYaml<{ groups: { name: string; rules: Rule[] }[] }>('deploy/prometheus/tidings-alerts.yml').groups.flatMap((g) => g.rules);

/** Where each Tidings process serves /metrics, from its compose command and environment. */
function metricsTargets(): Map<string, string> {
  const targets = new Map<string, string>();
  for (const [name, service] of Object.entries(services)) {
    const role = serviceCommand(service)[0];
    if (role !== 'gateway' && role !== 'worker') continue;
    const config = loadConfig(role, serviceEnv(service, EXPORTED));
    targets.set(name, `${name}:${role === 'gateway' ? config.port : config.metricsPort}`);
  }
  return targets;
}

/** The targets prometheus.yml names, as host:port. */
function scrapedTargets(): string[] {
  return promConfig.scrape_configs.flatMap((job) => [
    ...(job.static_configs ?? []).flatMap((c) => c.targets),
    ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((n) => `${n}:${c.port}`)),
  ]);
}

describe('Prometheus (observability profile)', () => {
  it('gets prometheus.yml and the alert rules from deploy/prometheus, read-only, where the config loads them', () => {
    expect(mountOf(prometheus, './deploy/prometheus/prometheus.yml')).toEqual({
      host: './deploy/prometheus/prometheus.yml',
      container: '/etc/prometheus/prometheus.yml',
      readOnly: true,
    });
    const rulesMount = mountOf(prometheus, './deploy/prometheus/tidings-alerts.yml');
    expect(rulesMount?.readOnly).toBe(true);
    expect(promConfig.rule_files).toEqual([rulesMount!.container]);
    expect(serviceCommand(prometheus)).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });

  it('scrapes every gateway and worker of docker-compose.yml on the port its /metrics is on, and nothing else', () => {
    const expected = [...metricsTargets().values()].sort();
    expect(expected).toEqual(['gateway-1:8000', 'gateway-2:8000', 'worker-1:9100', 'worker-2:9100']);
    expect(scrapedTargets().sort()).toEqual(expected);
    for (const job of promConfig.scrape_configs) {
      expect(job.metrics_path ?? '/metrics', job.job_name).toBe('/metrics');
      for (const sd of job.dns_sd_configs ?? []) expect(sd.type, job.job_name).toBe('A');
    }
    // Each worker's metrics port is one it exposes on the network (the balancer is never scraped).
    for (const [name, target] of metricsTargets()) expect(services[name]!.expose?.map(String), name).toContain(target.split(':')[1]);
    expect(scrapedTargets().some((t) => t.startsWith('lb:'))).toBe(false);
  });

  it('has a healthcheck on its readiness endpoint', () => {
    expect([prometheus.healthcheck?.test ?? []].flat().join(' ')).toMatch(/127\.0\.0\.1:9090\/-\/ready/);
  });
});

describe('deploy/prometheus/tidings-alerts.yml', () => {
  const operations = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const anchors = new Set(
    [...operations.matchAll(/^#+\s+(.+)$/gm)].map((m) =>
      m[1]!.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-'),
    ),
  );

  it('alerts on a stalled partition, a growing dead-letter list and error replies', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('TidingsPartitionStalled')?.expr).toMatch(/tidings_queue_waiting_jobs[\s\S]*unless[\s\S]*tidings_worker_job_duration_seconds_count/);
    expect(byName.get('TidingsWebhookDeadLettersGrowing')?.expr).toMatch(/tidings_webhook_dead_letters_total/);
    expect(byName.get('TidingsClientErrorReplies')?.expr).toMatch(/tidings_gateway_commands_total\{result="error"\}/);
    expect(byName.get('TidingsApiErrorReplies')?.expr).toMatch(/tidings_api_commands_total\{result!="ok"\}/);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('names only metrics and labels Tidings exports', () => {
    expect(rules.flatMap((r) => problems(r.expr).map((p) => `${r.alert}: ${p}`))).toEqual([]);
  });

  it('gives every rule a severity, a summary, a description and a runbook section in docs/operations.md', () => {
    for (const rule of rules) {
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      expect(rule.annotations?.runbook, rule.alert).toBe(`docs/operations.md#${rule.alert.toLowerCase()}`);
      expect(anchors, `docs/operations.md has a "${rule.alert}" heading`).toContain(rule.alert.toLowerCase());
      if (rule.for !== undefined) expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('has a checker that does catch a wrong metric or label', () => {
    expect(problems('rate(tidings_gateway_command_total[5m])')).not.toEqual([]);
    expect(problems('tidings_api_commands_total{code="100"}')).not.toEqual([]);
    expect(problems('sum by (channel) (tidings_hub_deliveries_total)')).not.toEqual([]);
    expect(problems('sum by (partition) (rate(tidings_worker_job_duration_seconds_count[5m]))')).toEqual([]);
  });
});

describe('Grafana (observability profile)', () => {
  const datasources = readYaml<{ datasources: { name: string; uid: string; type: string; url: string; isDefault?: boolean }[] }>(
    'deploy/grafana/provisioning/datasources/prometheus.yml',
  ).datasources;
  const providers = readYaml<{ providers: { type: string; options: { path: string } }[] }>(
    'deploy/grafana/provisioning/dashboards/tidings.yml',
  ).providers;

  it('mounts the provisioning files and the dashboard read-only where Grafana reads them', () => {
    expect(mountOf(grafana, './deploy/grafana/provisioning/datasources')).toEqual({
      host: './deploy/grafana/provisioning/datasources',
      container: '/etc/grafana/provisioning/datasources',
      readOnly: true,
    });
    expect(mountOf(grafana, './deploy/grafana/provisioning/dashboards')).toEqual({
      host: './deploy/grafana/provisioning/dashboards',
      container: '/etc/grafana/provisioning/dashboards',
      readOnly: true,
    });
    const dashboard = mountOf(grafana, './deploy/grafana/tidings-dashboard.json');
    expect(dashboard?.readOnly).toBe(true);
    expect(providers).toHaveLength(1);
    expect(providers[0]!.type).toBe('file');
    expect(dashboard!.container).toBe(`${providers[0]!.options.path}/tidings-dashboard.json`);
    expect(serviceEnv(grafana, {}).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(dashboard!.container);
  });

  it("has Prometheus as its default data source, at the prometheus service's address", () => {
    expect(datasources).toHaveLength(1);
    const [ds] = datasources;
    expect(ds).toMatchObject({ type: 'prometheus', isDefault: true });
    const url = new URL(ds!.url);
    expect(url.hostname).toBe('prometheus');
    expect(interpolate(String(prometheus.ports![0]), {}).split(':').at(-1)).toBe(url.port);
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'tidings-dashboard.json'), 'utf8')) as {
      templating: { list: { type: string; query?: unknown }[] };
    };
    expect(dashboard.templating.list.find((v) => v.type === 'datasource')?.query).toBe(ds!.type);
  });

  /** The entrypoint's shell, run for real with the image's /run.sh absent (127 = it got that far). */
  const start = (password: string | undefined) => {
    const env = serviceEnv(grafana, password === undefined ? {} : { GRAFANA_ADMIN_PASSWORD: password });
    const [shell, flag, script, ...args] = (grafana.entrypoint as string[]).map((part) => interpolate(part, {}));
    return spawnSync(shell!, [flag!, script!, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  };

  it('refuses to start without a strong admin password, and starts Grafana with one', () => {
    for (const weak of [undefined, '', 'admin', 'change-me-please-now', 'short']) {
      const run = start(weak);
      expect(run.status, String(weak)).toBe(1);
      expect(run.stderr, String(weak)).toMatch(/^GRAFANA_ADMIN_PASSWORD: /);
    }
    const run = start('3f9c1a7be0d24c55');
    expect(run.status).toBe(127);
    expect(run.stderr).toMatch(/\/run\.sh/);
    expect(serviceEnv(grafana, {}).GF_USERS_ALLOW_SIGN_UP).toBe('false');
  });
});
