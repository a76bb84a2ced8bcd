/**
 * docker-compose.yml's topology as plain processes on this machine, from the same file:
 * private PostgreSQL and Redis (src/devstack; or DATABASE_URL / REDIS_URL when set), the
 * one-shot `migrate`, every gateway and worker service with its own environment, and a small
 * least-connections TCP proxy standing in for nginx on one port. Ctrl-C stops it all.
 *
 *   npx tsx deploy/run-local.ts [--port 8000] [--gateway-ports 8001,8002] [--data DIR] [--src]
 *
 * --data (default .tidings/local) keeps the private servers' data; --src runs src/cli.ts through
 * tsx instead of the built dist/cli.js (no build needed). Variables exported in the shell are
 * interpolated into the compose file as Compose does, so TIDINGS_TOKEN_SECRET and
 * TIDINGS_API_KEY must be exported (the file has no defaults for them); DATABASE_URL /
 * REDIS_URL, when set, replace the private servers.
 * The proxy stands in for nginx's balancing only, not for its path rules: it listens on
 * 127.0.0.1 and passes every path, /api and /metrics included, which nginx keeps off its
 * public port. nginx works too: point deploy/nginx.conf's upstream servers at 127.0.0.1:8001
 * and :8002.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startPostgres, startRedis, type ServerHandle } from '../src/devstack/index.js';
import { readCompose, ROOT, serviceCommand, serviceEnv, tidingsServices } from './compose.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8000' },
    'gateway-ports': { type: 'string', default: '8001,8002' },
    data: { type: 'string', default: join(process.env.TIDINGS_DEV_DIR ?? '.tidings', 'local') },
    src: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'Usage: npx tsx deploy/run-local.ts [--port 8000] [--gateway-ports 8001,8002] [--data DIR] [--src]\n',
  );
  process.exit(0);
}
const cli = args.src ? ['--import', 'tsx', join(ROOT, 'src', 'cli.ts')] : [join(ROOT, 'dist', 'cli.js')];
if (!args.src && !existsSync(cli[0]!)) fail('dist/cli.js is missing: run `npm run build`, or pass --src');

const servers: ServerHandle[] = [];
const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function log(line: string): void {
  process.stdout.write(`[run-local] ${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`[run-local] ${message}\n`);
  process.exit(1);
}

/** One compose service as a child process; its output lines are prefixed with its name. */
function run(
  name: string,
  argv: string[],
  env: Record<string, string>,
  onLine?: (line: string) => void,
): ChildProcess {
  // Own process group: Ctrl-C reaches only this script, which then stops everything in order.
  const child = spawn(process.execPath, [...cli, ...argv], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`${name.padEnd(10)}| ${line}\n`);
      onLine?.(line);
    });
  }
  child.once('exit', (code, signal) => {
    if (!stopping && argv[0] !== 'migrate')
      log(`${name} exited (${signal ?? code}); compose would restart it`);
  });
  children.push({ name, child });
  return child;
}

function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((done) => child.once('exit', (code) => done(code)));
}

async function until(what: string, check: () => Promise<boolean>, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check().catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`${what}: the process exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The load balancer: each new connection goes to the gateway with the fewest open ones. */
function startProxy(port: number, backends: number[]): Promise<() => Promise<void>> {
  const open = backends.map(() => 0);
  const sockets = new Set<Socket>();
  const connect = (client: Socket, tried: Set<number>): void => {
    const candidates = backends.map((_, i) => i).filter((i) => !tried.has(i));
    if (candidates.length === 0) return void client.destroy();
    const i = candidates.reduce((a, b) => (open[b]! < open[a]! ? b : a));
    const upstream = createConnection({ host: '127.0.0.1', port: backends[i]! });
    let connected = false;
    upstream.once('error', () => (connected ? client.destroy() : connect(client, tried.add(i))));
    upstream.once('connect', () => {
      connected = true;
      open[i]!++;
      sockets.add(upstream);
      upstream.once('close', () => (open[i]!--, sockets.delete(upstream), client.destroy()));
      client.once('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    });
  };
  const server = createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.on('error', () => client.destroy()).once('close', () => sockets.delete(client));
    connect(client, new Set());
  });
  return new Promise((ready, reject) => {
    server.once('error', reject).listen(port, '127.0.0.1', () =>
      ready(async () => {
        const closed = new Promise((done) => server.close(done));
        for (const socket of sockets) socket.destroy();
        await closed;
      }),
    );
  });
}

async function stop(closeProxy?: () => Promise<void>): Promise<void> {
  stopping = true;
  await closeProxy?.();
  const running = children.filter(({ child }) => child.exitCode === null && child.signalCode === null);
  for (const { child } of running) child.kill('SIGTERM');
  const kill = setTimeout(() => running.forEach(({ child }) => child.kill('SIGKILL')), 30_000);
  await Promise.all(running.map(({ child }) => exitCode(child)));
  clearTimeout(kill);
  for (const server of servers.reverse()) await server.stop().catch(() => undefined);
}

async function main(): Promise<void> {
  const port = Number(args.port);
  const gatewayPorts = args['gateway-ports']!.split(',').map(Number);
  // The compose file requires POSTGRES_PASSWORD for its postgres service; here DATABASE_URL is
  // replaced below by our own server's, so any value does.
  const exported = {
    ...process.env,
    POSTGRES_PASSWORD: process.env.POSTGRES_PASSWORD || 'unused-by-run-local',
  };
  const services = tidingsServices(readCompose()).map(([name, service]) => ({
    name,
    argv: serviceCommand(service),
    env: serviceEnv(service, exported),
  }));
  const gateways = services.filter((s) => s.argv[0] === 'gateway');
  const workers = services.filter((s) => s.argv[0] === 'worker');
  if (gateways.length > gatewayPorts.length)
    fail(`${gateways.length} gateways need ${gateways.length} --gateway-ports`);

  // The postgres and redis services: private servers, as `tidings dev` starts them (Redis with AOF).
  let { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl } = process.env;
  const data = resolve(args.data!);
  mkdirSync(data, { recursive: true, mode: 0o711 });
  chmodSync(data, statSync(data).mode | 0o001); // the postgres OS user must pass through when we are root
  if (!databaseUrl) {
    servers.push(await startPostgres({ dir: join(data, 'postgres') }));
    databaseUrl = servers.at(-1)!.url;
  }
  if (!redisUrl) {
    servers.push(await startRedis({ dir: join(data, 'redis'), appendonly: true }));
    redisUrl = servers.at(-1)!.url;
  }
  log(`PostgreSQL ${databaseUrl}, Redis ${redisUrl}`);
  const local = (env: Record<string, string>, extra: Record<string, string> = {}) => ({
    ...env,
    DATABASE_URL: databaseUrl!,
    REDIS_URL: redisUrl!,
    ...extra,
  });

  // depends_on migrate: service_completed_successfully
  for (const s of services.filter((x) => x.argv[0] === 'migrate')) {
    const code = await exitCode(run(s.name, s.argv, local(s.env)));
    if (code !== 0) throw new Error(`${s.name} exited with ${code}`);
  }

  // Workers announce themselves in their log; gateways are healthy once /ready answers 200.
  await Promise.all([
    ...workers.map((s) => {
      let consuming = false;
      // Containers each have their own TIDINGS_METRICS_PORT; here the workers share one host.
      const env = local(s.env, s.env.TIDINGS_METRICS_PORT ? { TIDINGS_METRICS_PORT: '0' } : {});
      const child = run(
        s.name,
        s.argv,
        env,
        (line) => (consuming ||= line.includes('persist worker consuming')),
      );
      return until(`${s.name} to start`, async () => consuming, child);
    }),
    ...gateways.map((s, i) => {
      const child = run(s.name, s.argv, local(s.env, { PORT: String(gatewayPorts[i]), HOST: '127.0.0.1' }));
      const ready = async () => (await fetch(`http://127.0.0.1:${gatewayPorts[i]}/ready`)).ok;
      return until(`${s.name} to be ready`, ready, child);
    }),
  ]);

  const closeProxy = await startProxy(port, gatewayPorts.slice(0, gateways.length));
  let signals = 0;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (signals++ > 0) return;
      log('stopping');
      void stop(closeProxy).then(
        () => (log('stopped'), process.exit(0)),
        (err: Error) => (log(`stop failed: ${err.message}`), process.exit(1)),
      );
    });
  }
  log(`ready: http://127.0.0.1:${port}/ (gateways on ${gatewayPorts.join(', ')}; ${workers.length} workers)`);
}

main().catch(async (err: Error) => {
  log(`failed: ${err.message}`);
  await stop();
  process.exit(1);
});
