/**
 * docker-compose.yml's topology without Docker: deploy/run-local.ts starts `migrate`, both
 * gateways and both workers with the environment the compose file gives them, behind one
 * proxy port. Through that port: readiness, no demo page (off by default), an SDK client
 * publishing to subscribers on both gateways; the API (with the API key the compose file
 * passes) on a gateway's own port, as backends inside the compose network reach it. Then
 * SIGTERM stops everything cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { signToken } from '../../src/auth/jwt.js';
import { freePort, isPortFree } from '../../src/devstack/ports.js';
import { connected, subscribed, waitForCount } from '../helpers/client.js';
import { uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = join(import.meta.dirname, '..', '..');
// The compose file requires both and the gateways refuse them under 32 bytes/characters.
const SECRET = `local-topology-${randomBytes(16).toString('hex')}`;
const API_KEY = `key-${randomBytes(16).toString('hex')}`;

describe('deploy/run-local.ts: the compose topology as plain processes', () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  const output: string[] = [];
  let ports: number[] = [];
  let dataDir = '';

  beforeAll(async () => {
    ports = await distinctFreePorts(3);
    dataDir = await mkdtemp(join(tmpdir(), 'tidings-local-topology-'));
    child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'deploy', 'run-local.ts'), '--src', '--port', String(ports[0])].concat([
        '--gateway-ports',
        `${ports[1]},${ports[2]}`,
        '--data',
        dataDir,
      ]),
      {
        cwd: ROOT,
        env: {
          ...process.env,
          // Interpolated into the compose file's ${TIDINGS_TOKEN_SECRET:?…} and ${TIDINGS_API_KEY:?…}.
          TIDINGS_TOKEN_SECRET: SECRET,
          TIDINGS_API_KEY: API_KEY,
          // The servers the integration project already runs (the script's own private ones
          // take longer to start); a queue prefix of our own keeps this file's keys apart.
          DATABASE_URL: inject('databaseUrl'),
          REDIS_URL: inject('redisUrl'),
          TIDINGS_QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let ready = false;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        if (line.startsWith('[run-local] ready:')) ready = true;
      });
    }
    await waitFor(
      'the local topology to be ready',
      () => {
        if (child.exitCode !== null)
          throw new Error(`run-local exited ${child.exitCode}:\n${output.slice(-20).join('\n')}`);
        return ready;
      },
      { timeoutMs: 90_000 },
    );
  });

  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is ready through the proxy, serves no demo page (TIDINGS_DEMO unset), and both gateways answer', async () => {
    const ready = await fetch(`http://127.0.0.1:${ports[0]}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect((await fetch(`http://127.0.0.1:${ports[0]}/health`)).status).toBe(200);
    for (const path of ['/', '/demo/centrifuge.js', '/demo/token?user=x'])
      expect((await fetch(`http://127.0.0.1:${ports[0]}${path}`)).status, path).toBe(404);
    for (const port of ports.slice(1))
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
    // Node names come from the compose file's TIDINGS_NODE_NAME.
    const started = output.join('\n');
    for (const name of ['migrate', 'gateway-1', 'gateway-2', 'worker-1', 'worker-2']) {
      expect(started).toContain(`"node":"${name}"`);
    }
  });

  it('delivers publications to subscribers on both gateways, from a client through the proxy and from the API', async () => {
    const channel = uniqueChannel('local');
    const reader = await signToken({ user: 'reader', secret: SECRET, ttlSeconds: 600 });
    // One subscriber through the proxy, one on each gateway directly: whichever gateway the
    // publisher lands on, delivery crosses to the other one.
    const subs = await Promise.all(ports.map((port) => subscribed(wsUrl(port), reader, channel)));
    const pub = await connected(
      wsUrl(ports[0]!),
      await signToken({ user: 'writer', secret: SECRET, ttlSeconds: 600 }),
    );
    try {
      await pub.publish(channel, { text: 'hello through the proxy' });
      // The API from inside the network: not through the public port (nginx keeps it off there).
      const api = await fetch(`http://127.0.0.1:${ports[2]}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
        body: JSON.stringify({ channel, data: { text: 'hello from the API' } }),
      });
      expect(api.status).toBe(200);
      expect(await api.json()).toMatchObject({ result: { offset: 2 } });
      for (const [i, sub] of subs.entries()) {
        await waitForCount(sub, 2, `subscriber ${i}`);
        expect(sub.received.map((r) => [r.offset, r.data])).toEqual([
          [1, { text: 'hello through the proxy' }],
          [2, { text: 'hello from the API' }],
        ]);
      }
    } finally {
      for (const sub of subs) sub.client.disconnect();
      pub.disconnect();
    }
  });

  it('stops every process and frees every port on SIGTERM', async () => {
    child.kill('SIGTERM');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 45_000))])).toBe(0);
    expect(output.join('\n')).not.toContain('second signal');
    for (const port of ports) expect(await isPortFree(port)).toBe(true);
  });
});

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
