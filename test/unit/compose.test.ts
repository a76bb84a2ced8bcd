/**
 * Docker does not run here, so the deployment files are checked by reading them: the
 * services of docker-compose.yml, their images, commands, environment (validated with the
 * real config loader), healthchecks and start order; the load balancer's config; the
 * Dockerfile and .dockerignore. test/integration/local-topology.test.ts runs the same
 * topology as plain processes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES, loadConfig, type Role } from '../../src/config/index.js';
import {
  interpolate,
  readCompose,
  ROOT,
  serviceCommand,
  serviceEnv,
  tidingsServices,
  type ComposeService,
} from '../../deploy/compose.js';

const compose = readCompose();
const services = compose.services;
const TIDINGS = ['migrate', 'gateway-1', 'gateway-2', 'worker-1', 'worker-2'];
const ROLE: Record<string, Role> = {
  migrate: 'migrate',
  'gateway-1': 'gateway',
  'gateway-2': 'gateway',
  'worker-1': 'worker',
  'worker-2': 'worker',
};
/** CONTRACT.md's required variables per role, plus what this deployment promises on top. */
const REQUIRED: Record<string, string[]> = {
  migrate: ['DATABASE_URL'],
  gateway: ['DATABASE_URL', 'REDIS_URL', 'TIDINGS_TOKEN_SECRET', 'TIDINGS_API_KEY'],
  worker: ['DATABASE_URL', 'REDIS_URL'],
};
/** What an operator exports before `docker compose up` (README): the required secrets. */
const EXPORTED = {
  TIDINGS_TOKEN_SECRET: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=',
  TIDINGS_API_KEY: '0123456789abcdef0123456789abcdef0123456789abcdef',
  POSTGRES_PASSWORD: '5f4dcc3b5aa765d61d8327deb882cf99',
};
/** The environment as `docker compose up` sees it with only the secrets exported: the defaults. */
const env = (name: string) => serviceEnv(services[name]!, EXPORTED);
/**
 * Floors for the observability images (issue 16): the newest patch releases of the current
 * lines when they were pinned (Prometheus 3.13, Grafana 13.2), read from their release
 * threads and not checked against a registry here. Older patches of both carry published
 * security fixes; raise the floors with the tags, never lower them.
 */
const PROMETHEUS_FLOOR: [number, number, number] = [3, 13, 0];
const GRAFANA_FLOOR: [number, number, number] = [13, 2, 1];
/**
 * name:MAJOR.MINOR.PATCH with an optional v and variant (-alpine): a tag that never moves to
 * another release. PostgreSQL numbers its patch releases MAJOR.MINOR (17.8).
 */
const PINNED_IMAGE = /^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?$/;
const PINNED_POSTGRES = /^postgres:\d+\.\d+(-[a-z0-9.]+)?$/;
const imageVersion = (image: string) => image.split(':')[1]!.replace(/^v/, '').split('-')[0]!.split('.').map(Number);
const healthTest = (s: ComposeService) => [s.healthcheck?.test ?? []].flat().join(' ');
const conditions = (s: ComposeService) => (Array.isArray(s.depends_on) ? {} : (s.depends_on ?? {}));

/** The services `docker compose up` runs: those of no profile. */
const profiled = (s: ComposeService) => ((s.profiles as string[] | undefined) ?? []).length > 0;

describe('docker-compose.yml', () => {
  it('has the reference services, and Prometheus and Grafana under the observability profile', () => {
    expect(
      Object.entries(services)
        .filter(([, s]) => !profiled(s))
        .map(([name]) => name)
        .sort(),
    ).toEqual(['gateway-1', 'gateway-2', 'lb', 'migrate', 'postgres', 'redis', 'worker-1', 'worker-2'].sort());
    expect(services.prometheus?.profiles).toEqual(['observability']);
    expect(services.grafana?.profiles).toEqual(['observability']);
    expect(Object.keys(services).filter((name) => profiled(services[name]!)).sort()).toEqual(['grafana', 'prometheus']);
    expect(
      tidingsServices(compose)
        .map(([name]) => name)
        .sort(),
    ).toEqual([...TIDINGS].sort());
  });

  /**
   * Patch releases below these carry fixes for what Tidings relies on (issue 16): Redis 7.4.6
   * fixed four Lua-scripting CVEs (CVE-2025-49844 among them; Tidings runs Lua scripts), and
   * PostgreSQL 17.8 the February 2026 security release. Node 20 reached end of life in April
   * 2026. A tag below its floor fails here, so an old pin cannot come back unnoticed.
   */
  it('runs no image release known to be unsafe', () => {
    const floors: Record<string, [number, number, number]> = {
      redis: [7, 4, 6],
      postgres: [17, 8, 0],
      prometheus: PROMETHEUS_FLOOR,
      grafana: GRAFANA_FLOOR,
    };
    const below = (v: number[], floor: number[]) => v[0] === floor[0] && (v[1]! < floor[1]! || (v[1] === floor[1] && (v[2] ?? 0) < floor[2]!));
    for (const [name, floor] of Object.entries(floors)) {
      const version = imageVersion(services[name]!.image ?? '');
      expect(version[0], `${name}: a major the floors know`).toBe(floor[0]);
      expect(below(version, floor), `${name} ${version.join('.')} is below ${floor.join('.')}`).toBe(false);
    }
    const node = /ARG NODE_IMAGE=node:(\d+)\./.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(Number(node?.[1]), 'the Dockerfile runs a supported Node.js LTS line').toBeGreaterThanOrEqual(24);
  });

  it('pins every third-party image to a patch release (no latest, no floating major or minor)', () => {
    const thirdParty = Object.entries(services).filter(([name]) => !TIDINGS.includes(name));
    expect(thirdParty.map(([name]) => name).sort()).toEqual(['grafana', 'lb', 'postgres', 'prometheus', 'redis']);
    for (const [name, service] of thirdParty) {
      const image = service.image ?? '';
      expect(image, name).toMatch(name === 'postgres' ? PINNED_POSTGRES : PINNED_IMAGE);
      expect(image, name).not.toMatch(/latest|\$/);
    }
    expect(services.prometheus!.image).toMatch(/^prom\/prometheus:v/);
    expect(services.grafana!.image).toMatch(/^grafana\/grafana:/);
  });

  it('uses no required variable (${VAR:?}) in a profile: Compose interpolates every service, so `up` would stop without the profile', () => {
    for (const name of ['prometheus', 'grafana']) {
      const body = JSON.stringify(services[name]);
      expect(body, name).not.toMatch(/\$\{[A-Za-z_][A-Za-z0-9_]*:?\?/);
      expect(() => serviceEnv(services[name]!, {}), name).not.toThrow();
    }
  });

  it('runs every Tidings service from the one image built here, with its command', () => {
    const images = new Set(TIDINGS.map((name) => services[name]!.image));
    expect(images.size).toBe(1);
    expect([...images][0]).toMatch(/^tidings:/);
    expect([...images][0]).not.toMatch(/latest/);
    for (const name of TIDINGS) expect(serviceCommand(services[name]!), name).toEqual([ROLE[name]]);
    expect(services.migrate!.restart).toBe('no');
  });

  it('gives each service the variables its role requires, valid for the real config loader', () => {
    const names = new Set<string>();
    for (const name of TIDINGS) {
      const e = env(name);
      for (const variable of REQUIRED[ROLE[name]!]!) expect(e[variable], `${name}: ${variable}`).toBeTruthy();
      expect(() => loadConfig(ROLE[name]!, e), name).not.toThrow();
      for (const variable of Object.keys(e))
        expect(ENV_NAMES, `${name}: ${variable} is not a Tidings setting`).toContain(variable);
      expect(e.TIDINGS_NODE_NAME, name).toBe(name);
      names.add(e.TIDINGS_NODE_NAME!);
      expect(new URL(e.DATABASE_URL!).host, name).toBe('postgres:5432');
      if (ROLE[name] !== 'migrate') expect(new URL(e.REDIS_URL!).host, name).toBe('redis:6379');
    }
    // The exported secrets are what the services get.
    expect(env('gateway-2').TIDINGS_TOKEN_SECRET).toBe(EXPORTED.TIDINGS_TOKEN_SECRET);
    expect(env('gateway-2').TIDINGS_API_KEY).toBe(EXPORTED.TIDINGS_API_KEY);
    expect(new URL(env('worker-1').DATABASE_URL!).password).toBe(EXPORTED.POSTGRES_PASSWORD);
    expect(env('postgres').POSTGRES_PASSWORD).toBe(EXPORTED.POSTGRES_PASSWORD);
    // Gateways and workers must agree on everything shared (secret, URLs, queue prefix…).
    const shared = (name: string) => {
      const {
        TIDINGS_NODE_NAME: _n,
        PORT: _p,
        TIDINGS_METRICS_PORT: _m,
        TIDINGS_MAX_CONNECTIONS_PER_IP: _c,
        TIDINGS_CONNECT_RATE_PER_IP: _r,
        // Gateways only: the admin console is theirs.
        TIDINGS_ADMIN_PASSWORD: _a,
        ...rest
      } = env(name);
      return rest;
    };
    for (const name of TIDINGS.slice(1)) expect(shared(name), name).toEqual(shared('gateway-1'));
  });

  it('requires every secret: `up` stops with a message naming it instead of using a default (issue 9)', () => {
    const uses: Record<keyof typeof EXPORTED, string[]> = {
      TIDINGS_TOKEN_SECRET: ['gateway-1', 'gateway-2', 'worker-1', 'worker-2', 'migrate'],
      TIDINGS_API_KEY: ['gateway-1', 'gateway-2'],
      POSTGRES_PASSWORD: ['postgres', ...TIDINGS],
    };
    for (const [variable, names] of Object.entries(uses)) {
      for (const unset of [undefined, '']) {
        const exported = { ...EXPORTED, [variable]: unset };
        for (const name of names) {
          expect(() => serviceEnv(services[name]!, exported), `${name} without ${variable}`).toThrow(
            new RegExp(`^${variable}: set ${variable}\\b`),
          );
        }
      }
    }
    // No placeholder or known value is left anywhere in the file.
    const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').replace(/(^|\s)#.*$/gm, '');
    expect(text).not.toMatch(/change-me/i);
    for (const variable of Object.keys(EXPORTED))
      expect(text).not.toMatch(new RegExp(`\\$\\{${variable}:?-`));
  });

  it('passes an exported weak or placeholder secret through to the services, which refuse it at start', () => {
    for (const [variable, value] of [
      ['TIDINGS_TOKEN_SECRET', 'change-me-this-is-not-a-secret-at-all'],
      ['TIDINGS_TOKEN_SECRET', 'too-short'],
      ['TIDINGS_API_KEY', 'change-me-api-key'],
    ] as const) {
      const e = serviceEnv(services['gateway-1']!, { ...EXPORTED, [variable]: value });
      expect(() => loadConfig('gateway', e), `${variable}=${value}`).toThrow(new RegExp(`^${variable}: `));
    }
  });

  it('serves no demo page and hands out no demo tokens unless asked, and then never tokens', () => {
    for (const name of ['gateway-1', 'gateway-2']) {
      const config = loadConfig('gateway', env(name));
      expect([config.demo, config.demoTokens], name).toEqual([false, false]);
      const demo = loadConfig('gateway', serviceEnv(services[name]!, { ...EXPORTED, TIDINGS_DEMO: 'true' }));
      expect([demo.demo, demo.demoTokens], name).toEqual([true, false]);
    }
  });

  it('runs no admin console unless TIDINGS_ADMIN_PASSWORD is exported, and then on the gateways', () => {
    const password = 'an-admin-password-0123456789';
    for (const name of ['gateway-1', 'gateway-2']) {
      expect(loadConfig('gateway', env(name)).admin, name).toBeUndefined();
      const on = loadConfig('gateway', serviceEnv(services[name]!, { ...EXPORTED, TIDINGS_ADMIN_PASSWORD: password }));
      expect(on.admin?.password, name).toBe(password);
    }
  });

  it('has healthchecks on PostgreSQL, Redis, gateways, workers and the balancer', () => {
    expect(healthTest(services.postgres!)).toMatch(/pg_isready/);
    expect(healthTest(services.redis!)).toMatch(/redis-cli.*ping/);
    for (const name of ['gateway-1', 'gateway-2'])
      expect(healthTest(services[name]!), name).toMatch(/127\.0\.0\.1:8000\/(ready|health)/);
    for (const name of ['worker-1', 'worker-2']) {
      expect(healthTest(services[name]!), name).toContain(
        `127.0.0.1:${env(name).TIDINGS_METRICS_PORT}/health`,
      );
    }
    expect(healthTest(services.lb!)).toMatch(/127\.0\.0\.1:8000\/health/);
  });

  it('keeps Redis durable (AOF) and both stores on named volumes', () => {
    expect(serviceCommand(services.redis!).join(' ')).toMatch(/--appendonly yes/);
    const named = Object.keys(compose.volumes ?? {});
    const volumeOf = (name: string) => String(services[name]!.volumes?.[0]).split(':')[0]!;
    expect(named).toContain(volumeOf('postgres'));
    expect(named).toContain(volumeOf('redis'));
    expect(String(services.postgres!.volumes?.[0])).toMatch(/:\/var\/lib\/postgresql\/data$/);
    expect(String(services.redis!.volumes?.[0])).toMatch(/:\/data$/);
  });

  it('starts in order: stores healthy → migrate done → gateways and workers → balancer', () => {
    expect(conditions(services.migrate!)).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const name of ['gateway-1', 'gateway-2', 'worker-1', 'worker-2']) {
      expect(conditions(services[name]!), name).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
    expect(conditions(services.lb!)).toEqual({
      'gateway-1': { condition: 'service_healthy' },
      'gateway-2': { condition: 'service_healthy' },
    });
  });

  it('publishes one port, 8000, on the balancer only; Prometheus and Grafana on loopback unless asked', () => {
    for (const [name, service] of Object.entries(services)) {
      if (name !== 'lb' && !profiled(service)) expect(service.ports, name).toBeUndefined();
    }
    expect(services.prometheus!.ports!.map((p) => interpolate(String(p), {}))).toEqual(['127.0.0.1:9090:9090']);
    expect(services.grafana!.ports!.map((p) => interpolate(String(p), {}))).toEqual(['127.0.0.1:3000:3000']);
    expect(services.lb!.ports).toHaveLength(1);
    expect(interpolate(String(services.lb!.ports![0]), {})).toBe('8000:8000');
    // The balancer's internal (API) listener is reachable on the compose network only.
    expect(services.lb!.expose).toEqual(['8080']);
  });
});

describe('deploy/nginx.conf', () => {
  const mount = String(services.lb!.volumes?.find((v) => String(v).includes('nginx.conf')));
  const conf = readFileSync(join(ROOT, mount.split(':')[0]!), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .join('\n');

  it('is the file the lb service mounts as nginx.conf', () => {
    expect(mount).toMatch(/^\.\/deploy\/nginx\.conf:\/etc\/nginx\/nginx\.conf(:ro)?$/);
  });

  it('balances over both gateways on their container port', () => {
    const upstream = /upstream\s+(\w+)\s*\{([^}]*)\}/.exec(conf);
    expect(upstream).not.toBeNull();
    const [, name, body] = upstream!;
    expect(body).toMatch(/server\s+gateway-1:8000\b/);
    expect(body).toMatch(/server\s+gateway-2:8000\b/);
    expect(body).toMatch(/least_conn;/);
    expect(body).not.toMatch(/\b(ip_hash|hash|sticky)\b/); // no stickiness: clients recover anywhere
    expect(conf.match(new RegExp(`proxy_pass http://${name};`, 'g'))?.length).toBeGreaterThanOrEqual(2);
    expect(conf).toMatch(/listen\s+8000;/);
  });

  it('upgrades WebSockets on /connection/ with long timeouts and the original Host', () => {
    const ws = /location \/connection\/ \{([^}]*)\}/.exec(conf)?.[1] ?? '';
    expect(conf).toMatch(/proxy_http_version 1\.1;/);
    expect(ws).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(ws).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    expect(conf).toMatch(/map \$http_upgrade \$connection_upgrade \{[^}]*default upgrade;/);
    // Same-origin checks compare Origin with Host: the balancer must pass the client's Host.
    expect(ws).toMatch(/proxy_set_header Host \$http_host;/);
    const timeout = /proxy_read_timeout (\d+)(s|m|h)?;/.exec(ws);
    const seconds = Number(timeout?.[1]) * ({ s: 1, m: 60, h: 3600 }[timeout?.[2] ?? 's'] ?? 1);
    expect(seconds).toBeGreaterThan(60); // well beyond the 25 s server ping
  });

  it('passes /health through to the gateways', () => {
    expect(conf).toMatch(/location = \/health \{[^}]*proxy_pass http:\/\/\w+;/);
  });

  // Which location block answers a path, as nginx picks it among exact (`=`) and prefix
  // locations: an exact match wins, else the longest prefix. The file uses no regex locations
  // (checked), so this is the whole rule.
  const servers = serverBlocks(conf);
  const listening = (port: string) => servers.find((body) => new RegExp(`listen\\s+${port};`).test(body));
  const answer = (server: string, path: string): string => {
    const locations = [...server.matchAll(/location\s+(=\s+)?(\S+)\s*\{([^}]*)\}/g)].map((m) => ({
      exact: m[1] !== undefined,
      prefix: m[2]!,
      body: m[3]!.trim(),
    }));
    const exact = locations.find((l) => l.exact && l.prefix === path);
    const prefix = locations
      .filter((l) => !l.exact && path.startsWith(l.prefix))
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    return (exact ?? prefix)?.body ?? 'no location';
  };

  it('uses exact and prefix locations only, in two servers: public 8000 and internal 8080', () => {
    expect(conf).not.toMatch(/location\s+(~|\^~)/);
    expect(servers).toHaveLength(2);
    expect(listening('8000')).toBeDefined();
    expect(listening('8080')).toBeDefined();
  });

  it('denies the HTTP API and /metrics on the public listener (issue 9)', () => {
    const pub = listening('8000')!;
    for (const path of [
      '/api',
      '/api/publish',
      '/api/broadcast',
      '/metrics',
      '/metrics/',
      '/admin',
      '/admin/login',
      '/admin/live',
      '/unknown',
    ]) {
      expect(answer(pub, path), path).toMatch(/^return 40[34];$/);
    }
    for (const path of ['/connection/websocket', '/health', '/ready', '/', '/demo/centrifuge.js']) {
      expect(answer(pub, path), path).toMatch(/proxy_pass http:\/\/tidings_gateways;/);
    }
  });

  it('serves the HTTP API on the internal listener only, the port the lb service exposes but never publishes', () => {
    const internal = listening('8080')!;
    for (const path of ['/api', '/api/publish']) {
      expect(answer(internal, path), path).toMatch(/proxy_pass http:\/\/tidings_gateways;/);
    }
    // The admin console beside the API, on no other listener (docs/admin.md).
    for (const path of ['/admin', '/admin/login', '/admin/live']) {
      expect(answer(internal, path), path).toMatch(/proxy_pass http:\/\/tidings_gateways;/);
    }
    expect(answer(internal, '/admin/live')).toMatch(/proxy_buffering off;/);
    // Metrics are scraped per process, never through the balancer.
    expect(answer(internal, '/metrics')).toMatch(/^return 40[34];$/);
    expect(answer(internal, '/connection/websocket')).toMatch(/^return 40[34];$/);
    expect(services.lb!.expose?.map(String)).toContain('8080');
    expect((services.lb!.ports ?? []).map(String).join(' ')).not.toMatch(/8080/);
  });
});

/** The bodies of the `server { … }` blocks (not upstream `server host:port` lines). */
function serverBlocks(conf: string): string[] {
  const blocks: string[] = [];
  for (const start of conf.matchAll(/\bserver\s*\{/g)) {
    let depth = 0;
    for (let i = start.index + start[0].length - 1; i < conf.length; i++) {
      if (conf[i] === '{') depth++;
      else if (conf[i] === '}' && --depth === 0) {
        blocks.push(conf.slice(start.index + start[0].length, i));
        break;
      }
    }
  }
  return blocks;
}

describe('Dockerfile and .dockerignore', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = lines.reduce<string[][]>((acc, line) => {
    if (/^FROM /i.test(line)) acc.push([]);
    acc.at(-1)?.push(line);
    return acc;
  }, []);
  const final = stages.at(-1) ?? [];

  it('is multi-stage on a pinned Node image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const base = /^ARG NODE_IMAGE=(\S+)/m.exec(dockerfile)?.[1] ?? '';
    expect(base).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+(-slim)?$/);
    for (const stage of stages)
      expect(stage[0]).toMatch(/^FROM (\$\{NODE_IMAGE\}|node:\d+\.\d+\.\d+-\S+)( AS \w+)?$/);
  });

  it('builds in one stage and ships production dependencies, dist/ and migrations/ in the last', () => {
    expect(stages[0]!.join('\n')).toMatch(/RUN npm ci\b/);
    expect(stages[0]!.join('\n')).toMatch(/RUN npm run build/);
    const runtime = final.join('\n');
    expect(runtime).toMatch(/RUN npm ci --omit=dev --ignore-scripts/);
    expect(runtime).toMatch(/COPY --from=\w+ \/app\/dist \.\/dist/);
    expect(runtime).toMatch(/COPY migrations \.\/migrations/);
    expect(runtime).not.toMatch(/COPY (src|\.) /);
  });

  it('runs as a non-root user, the CLI as entrypoint, with a /health check done by node', () => {
    const user = final.filter((l) => /^USER /.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(final).toContain('ENTRYPOINT ["node", "dist/cli.js"]');
    const healthcheck = final.find((l) => /^HEALTHCHECK /.test(l)) ?? '';
    expect(healthcheck).toMatch(/CMD \["node", "-e", ".*\/health/);
    expect(healthcheck).not.toMatch(/curl|wget/);
  });

  it('sends only what the Dockerfile copies as build context', () => {
    const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    /** Docker's rule: the last pattern matching the path (or a parent) decides. */
    const included = (path: string) => {
      let keep = true;
      for (const raw of patterns) {
        const negate = raw.startsWith('!');
        const glob = new RegExp(
          `^${raw
            .replace(/^!/, '')
            .replace(/\/$/, '')
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')}(/|$)`,
        );
        if (glob.test(path)) keep = negate;
      }
      return keep;
    };
    const copied = lines
      .filter((l) => /^COPY /.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(copied.length).toBeGreaterThan(0);
    for (const path of copied) expect(included(path), path).toBe(true);
    for (const path of ['node_modules', 'dist', '.tidings', '.git', 'test', 'bench'])
      expect(included(path), path).toBe(false);
  });
});
