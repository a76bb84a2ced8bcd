/**
 * A private Redis server. No RDB snapshots; the append-only file (fsync every second) is the
 * only persistence, and only when asked for: tests use both a Redis that survives kill -9
 * and one that loses everything (guarantee 6: Redis is never the only copy).
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { findBinary } from './binaries.js';
import { launch, type ServerHandle, type ServerSpec } from './server.js';

export interface RedisOptions {
  dir: string;
  port?: number;
  /** Append-only file with fsync every second. Default true. */
  appendonly?: boolean;
  logger?: Logger;
  /**
   * Start as a Redis Cluster node whose cluster bus listens on this port (the default, port +
   * 10000, could land in the ephemeral range or on another test's server).
   */
  clusterBusPort?: number;
  /**
   * A redis.conf to start from (deploy/redis-cluster/redis.conf): its settings stand, the
   * devstack only sets where the server listens and writes (port, bind, dir, log, bus port).
   */
  configFile?: string;
}

export function startRedis(opts: RedisOptions): Promise<ServerHandle> {
  const binary = findBinary('redis-server');
  const logger = opts.logger?.child({ component: 'devstack' });
  return launch(opts.port, (port) => redisSpec(binary, port, opts, logger));
}

function redisSpec(binary: string, port: number, opts: RedisOptions, logger: Logger | undefined): ServerSpec {
  const dir = resolve(opts.dir); // redis-server runs in it, so relative paths would go wrong
  const logFile = join(dir, 'redis.log');
  const where = [...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir], ...['--logfile', logFile, '--daemonize', 'no']];
  const args =
    opts.configFile === undefined
      ? [
          ...where,
          ...['--save', '', '--appendonly', opts.appendonly === false ? 'no' : 'yes', '--appendfsync', 'everysec'],
          ...clusterArgs(opts.clusterBusPort),
        ]
      : [resolve(opts.configFile), ...where, ...(opts.clusterBusPort === undefined ? [] : ['--cluster-port', String(opts.clusterBusPort)])];
  return {
    kind: 'redis',
    port,
    url: `redis://127.0.0.1:${port}`,
    dataDir: dir,
    logFile,
    binary,
    stopSignal: 'SIGTERM', // Redis flushes the AOF and exits
    logger,
    prepare: async () => void mkdirSync(dir, { recursive: true }),
    command: () => ({ file: binary, args, cwd: dir }),
    ready: (pid) => answers(port, pid),
  };
}

/** A cluster node keeps its view of the cluster in nodes.conf, in its own data directory. */
function clusterArgs(busPort: number | undefined): string[] {
  if (busPort === undefined) return [];
  return ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'];
}

// PING, then INFO server: the first says the AOF is loaded, the second whose server this is.
const PROBE = '*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n';

/**
 * True when *our* server answers: it replies +PONG (while it loads the AOF it replies
 * -LOADING) and INFO names our PID. Another Redis on the port (one that won the bind race)
 * must not pass for ours.
 */
function answers(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write(PROBE));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1'); // one char per byte, so lengths match RESP's
      const verdict = judge(reply, pid);
      if (verdict !== undefined) done(verdict);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** undefined while the replies are incomplete. */
function judge(reply: string, pid: number): boolean | undefined {
  const pingEnd = reply.indexOf('\r\n');
  if (pingEnd < 0) return undefined;
  if (reply.slice(0, pingEnd) !== '+PONG') return false;
  const header = /^\$(\d+)\r\n/.exec(reply.slice(pingEnd + 2));
  if (!header) return reply.length - pingEnd > 32 ? false : undefined;
  const bodyStart = pingEnd + 2 + header[0].length;
  if (reply.length < bodyStart + Number(header[1])) return undefined;
  return new RegExp(`^process_id:${pid}\r?$`, 'm').test(reply.slice(bodyStart));
}
