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
}

export function startRedis(opts: RedisOptions): Promise<ServerHandle> {
  const binary = findBinary('redis-server');
  const logger = opts.logger?.child({ component: 'devstack' });
  return launch(opts.port, (port) => redisSpec(binary, port, opts, logger));
}

function redisSpec(binary: string, port: number, opts: RedisOptions, logger: Logger | undefined): ServerSpec {
  const dir = resolve(opts.dir); // redis-server runs in it, so relative paths would go wrong
  const logFile = join(dir, 'redis.log');
  const args = [
    ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
    ...['--save', '', '--appendonly', opts.appendonly === false ? 'no' : 'yes', '--appendfsync', 'everysec'],
    ...['--logfile', logFile, '--daemonize', 'no'],
  ];
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
    ready: () => ping(port),
  };
}

/**
 * True when the server replies +PONG. While it loads the AOF it replies -LOADING instead,
 * and is not ready yet.
 */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(reply.slice(0, end) === '+PONG');
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}
