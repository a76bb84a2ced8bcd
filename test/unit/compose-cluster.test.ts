/**
 * docker-compose.cluster.yml merged over docker-compose.yml as `docker compose -f … -f …`
 * does (issue 13), checked by reading: what starts, in which order, on which addresses, and
 * the gateways' and workers' environment through the real config loader.
 * test/integration/compose-cluster.test.ts forms the cluster itself from the same redis.conf
 * and init.sh.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  activeServices,
  CLUSTER_COMPOSE_FILE,
  COMPOSE_FILE,
  interpolate,
  readCompose,
  readComposeFiles,
  ROOT,
  serviceCommand,
  serviceEnv,
  type ComposeService,
} from '../../deploy/compose.js';
import { ENV_NAMES, loadConfig, redisSeeds, type Role } from '../../src/config/index.js';

const merged = readComposeFiles([COMPOSE_FILE, CLUSTER_COMPOSE_FILE]);
const services = activeServices(merged);
const NODES = ['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6'];
const TIDINGS: Record<string, Role> = { migrate: 'migrate', 'gateway-1': 'gateway', 'gateway-2': 'gateway', 'worker-1': 'worker', 'worker-2': 'worker' };
const EXPORTED = {
  TIDINGS_TOKEN_SECRET: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=',
  TIDINGS_API_KEY: '0123456789abcdef0123456789abcdef0123456789abcdef',
  POSTGRES_PASSWORD: '5f4dcc3b5aa765d61d8327deb882cf99',
};
const env = (name: string, extra: NodeJS.ProcessEnv = {}) => serviceEnv(services[name]!, { ...EXPORTED, ...extra });
const dependsOn = (s: ComposeService) => (Array.isArray(s.depends_on) ? {} : (s.depends_on ?? {}));
const conf = readFileSync(join(ROOT, 'deploy', 'redis-cluster', 'redis.conf'), 'utf8');
const setting = (name: string) => new RegExp(`^${name}\\s+(\\S+)\\s*$`, 'm').exec(conf)?.[1];

interface NetworkConfig {
  ipam: { config: { subnet: string; ip_range: string }[] };
}
const network = (merged.networks as Record<string, NetworkConfig>)['redis-cluster']!.ipam.config[0]!;
/** The fixed address of a node, as Compose interpolates it. */
const ipOf = (name: string, e: NodeJS.ProcessEnv = {}) =>
  interpolate((services[name]!.networks as Record<string, { ipv4_address: string }>)['redis-cluster']!.ipv4_address, e);
const inCidr = (ip: string, cidr: string) => {
  const [base, bits] = cidr.split('/');
  const num = (a: string) => a.split('.').reduce((n, part) => n * 256 + Number(part), 0);
  const block = 2 ** (32 - Number(bits));
  return Math.floor(num(ip) / block) === Math.floor(num(base!) / block);
};

describe('docker-compose.cluster.yml over docker-compose.yml', () => {
  it('starts six Redis nodes and the init service instead of the single Redis, and the same Tidings services', () => {
    const base = Object.keys(activeServices(readCompose())).filter((n) => n !== 'redis');
    expect(Object.keys(services).sort()).toEqual([...base, ...NODES, 'redis-cluster-init'].sort());
    expect(services.redis).toBeUndefined();
    // Every dependency of what starts also starts (Compose refuses a disabled one).
    for (const [name, service] of Object.entries(services))
      for (const dep of Object.keys(dependsOn(service))) expect(services[dep], `${name} → ${dep}`).toBeDefined();
  });

  it('runs every node from the pinned Redis image, the mounted redis.conf and a volume of its own', () => {
    const base = readCompose().services.redis!.image;
    const volumes = Object.keys((merged.volumes as Record<string, unknown>) ?? {});
    for (const name of NODES) {
      const node = services[name]!;
      expect(node.image, name).toBe(base);
      const mountsConf = node.volumes!.map(String).find((v) => v.startsWith('./deploy/redis-cluster/redis.conf:'));
      expect(mountsConf, name).toMatch(/:ro$/);
      expect(serviceCommand(node), name).toEqual(['redis-server', mountsConf!.split(':')[1]]);
      const data = node.volumes!.map(String).find((v) => v.endsWith(':/data'))!;
      expect(volumes, name).toContain(data.split(':')[0]);
      expect([node.healthcheck?.test ?? []].flat().join(' '), name).toMatch(/redis-cli ping/);
    }
    expect(new Set(NODES.map((n) => String(services[n]!.volumes![0]))).size).toBe(NODES.length);
    expect(setting('cluster-enabled')).toBe('yes');
    expect(setting('appendonly')).toBe('yes');
    expect(setting('maxmemory-policy')).toBe('noeviction');
  });

  it('gives the nodes fixed, distinct addresses outside the range handed to other containers', () => {
    for (const e of [{}, { REDIS_CLUSTER_NET: '172.30.99' }]) {
      const subnet = interpolate(network.subnet, e);
      const range = interpolate(network.ip_range, e);
      const ips = NODES.map((n) => ipOf(n, e));
      expect(new Set(ips).size).toBe(NODES.length);
      for (const ip of ips) {
        expect(inCidr(ip, subnet), `${ip} in ${subnet}`).toBe(true);
        expect(inCidr(ip, range), `${ip} outside ${range}`).toBe(false);
      }
    }
  });

  it('forms the cluster once every node is healthy, with init.sh, over the nodes\' fixed addresses', () => {
    const init = services['redis-cluster-init']!;
    expect(init.restart).toBe('no');
    expect(dependsOn(init)).toEqual(Object.fromEntries(NODES.map((n) => [n, { condition: 'service_healthy' }])));
    const script = init.volumes!.map(String).find((v) => v.startsWith('./deploy/redis-cluster/init.sh:'));
    expect(script).toMatch(/:ro$/);
    expect(init.entrypoint).toEqual(['/bin/sh', script!.split(':')[1]]);
    expect(init.image).toBe(services['redis-node-1']!.image); // redis-cli of the same release
    for (const e of [{}, { REDIS_CLUSTER_NET: '172.30.99' }]) {
      expect(serviceCommand(init).map((a) => interpolate(a, e))).toEqual(NODES.map((n) => `${ipOf(n, e)}:${setting('port')}`));
    }
    expect(init.networks).toEqual(['redis-cluster']);
  });

  it('starts gateways and workers in cluster mode, on the nodes\' network, once the cluster is formed', () => {
    for (const [name, role] of Object.entries(TIDINGS)) {
      const e = env(name);
      const config = loadConfig(role, e);
      for (const variable of Object.keys(e)) expect(ENV_NAMES, `${name}: ${variable}`).toContain(variable);
      expect(config.redisCluster, name).toBe(true);
      expect(config.ingest.partitions, name).toBe(32);
      expect(redisSeeds(e.REDIS_URL!).map((u) => new URL(u).host), name).toEqual(NODES.map((n) => `${n}:${setting('port')}`));
      if (role === 'migrate') continue;
      expect(services[name]!.networks, name).toEqual(['default', 'redis-cluster']);
      expect(dependsOn(services[name]!), name).toEqual({
        postgres: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
        'redis-cluster-init': { condition: 'service_completed_successfully' },
      });
    }
    // Everything shared agrees (partitions and the queue prefix decide every key's slot).
    const shared = (name: string) => {
      // The admin password goes to gateways only (docs/admin.md).
      const { TIDINGS_NODE_NAME: _n, PORT: _p, TIDINGS_METRICS_PORT: _m, TIDINGS_MAX_CONNECTIONS_PER_IP: _c, TIDINGS_CONNECT_RATE_PER_IP: _r, TIDINGS_ADMIN_PASSWORD: _a, ...rest } = env(name);
      return rest;
    };
    for (const name of Object.keys(TIDINGS)) expect(shared(name), name).toEqual(shared('gateway-1'));
  });

  it('keeps the balancer, ports and observability services of docker-compose.yml', () => {
    const withProfile = activeServices(merged, ['observability']);
    expect(withProfile.prometheus).toBeDefined();
    expect(withProfile.grafana).toBeDefined();
    expect(Object.entries(services).filter(([, s]) => s.ports).map(([n]) => n)).toEqual(['lb']);
  });
});

describe('deploy/compose.ts readComposeFiles', () => {
  it('applies !override: the gateways\' depends_on is replaced, not merged', () => {
    // docker-compose.yml's gateways depend on redis; the override replaced that whole map.
    expect(readCompose().services['gateway-1']!.depends_on).toHaveProperty('redis');
    expect(services['gateway-1']!.depends_on).not.toHaveProperty('redis');
    expect(JSON.stringify(merged)).not.toMatch(/!override|!reset/);
  });
});
