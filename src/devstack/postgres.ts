/**
 * A private PostgreSQL server: the `postgres` binary run directly (not pg_ctl, which would
 * daemonize and hide the postmaster's PID), trust auth on 127.0.0.1, fsync and
 * synchronous_commit on, because durability tests kill it with -9 and expect every
 * committed row back.
 *
 * Layout of `dir`: pgdata/ (the cluster), sock/ (the Unix socket), postgres.log.
 */
import { mkdirSync, chownSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { asUser, ensureReachable, postgresRunAs, type OsUser } from './os-user.js';
import { ensureCluster, ensureStandby, findPostgres, type PgInstall } from './pg-cluster.js';
import { launch, type ServerHandle, type ServerSpec } from './server.js';

export interface PostgresOptions {
  dir: string;
  port?: number;
  /** Created when missing. Default 'tidings'. */
  database?: string;
  logger?: Logger;
  /**
   * A streaming replica (hot standby) of the private server on this port, made with
   * pg_basebackup when `dir` holds no cluster yet: for read-replica tests, which can make its
   * lag deterministic with pg_wal_replay_pause(). Its database comes from the primary.
   */
  standbyOf?: { port: number };
}

const SUPERUSER = 'postgres';
// sockaddr_un.sun_path holds 108 bytes; past that, go without the Unix socket (we use TCP).
const MAX_SOCKET_PATH = 100;

export function startPostgres(opts: PostgresOptions): Promise<ServerHandle> {
  const install = findPostgres();
  const user = postgresRunAs();
  const logger = opts.logger?.child({ component: 'devstack' });
  return launch(opts.port, (port) => postgresSpec(install, user, port, opts, logger));
}

function postgresSpec(
  install: PgInstall,
  user: OsUser | undefined,
  port: number,
  opts: PostgresOptions,
  logger: Logger | undefined,
): ServerSpec {
  const database = opts.database ?? 'tidings';
  const dir = resolve(opts.dir); // the postmaster runs in it, so relative paths would go wrong
  const pgdata = join(dir, 'pgdata');
  const sockDir = join(dir, 'sock');
  return {
    kind: 'postgres',
    port,
    url: `postgres://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    dataDir: dir,
    logFile: join(dir, 'postgres.log'),
    binary: install.postgres,
    // Backends setsid() away from the postmaster's group; they keep pgdata as their cwd.
    strays: { cwd: pgdata, comm: 'postgres' },
    stopSignal: 'SIGINT', // "fast" shutdown: SIGTERM ("smart") would wait for every client to leave
    logger,
    prepare: () => preparePostgres(install, user, dir, sockDir, logger, opts.standbyOf),
    command: () => ({ ...asUser(user, install.postgres, serverArgs(pgdata, sockDir, port)), cwd: dir }),
    ready: () => answers(port, pgdata),
    // A standby is read-only: its databases are the primary's.
    afterReady: () => (opts.standbyOf ? Promise.resolve() : ensureDatabase(port, database)),
    // Every process of the server is gone, so the lock file is stale. PostgreSQL would drop it itself unless
    // its PID now belongs to some other process, which happens after restarts in containers.
    afterExit: async () => rmSync(join(pgdata, 'postmaster.pid'), { force: true }),
  };
}

async function preparePostgres(
  install: PgInstall,
  user: OsUser | undefined,
  dir: string,
  sockDir: string,
  logger: Logger | undefined,
  standbyOf: { port: number } | undefined,
): Promise<void> {
  mkdirSync(sockDir, { recursive: true, mode: 0o700 });
  if (user) {
    ensureReachable(user, dir);
    chownSync(sockDir, user.uid, user.gid);
  }
  if (standbyOf) await ensureStandby(install, join(dir, 'pgdata'), user, standbyOf.port);
  else await ensureCluster(install, join(dir, 'pgdata'), user, logger);
}

function serverArgs(pgdata: string, sockDir: string, port: number): string[] {
  const socket = join(sockDir, `.s.PGSQL.${port}`).length <= MAX_SOCKET_PATH ? sockDir : '';
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socket,
    fsync: 'on',
    synchronous_commit: 'on',
    // Test runs open pools from several gateways and workers at once; 100 is tight.
    max_connections: '200',
  };
  const flags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  return ['-D', pgdata, '-p', String(port), ...flags];
}

function connect(port: number, database: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    database,
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => {}); // a server going away must not crash us; the query fails instead
  return client.connect().then(
    () => client,
    async (err: unknown) => {
      await client.end().catch(() => undefined);
      throw err;
    },
  );
}

/**
 * True once a client can connect and run a query ("the database system is starting up" is
 * no), and the server is ours: another PostgreSQL on the port must not pass for it.
 */
async function answers(port: number, pgdata: string): Promise<boolean> {
  try {
    const client = await connect(port, 'postgres');
    try {
      const { rows } = await client.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
      return rows[0]?.dir === pgdata;
    } finally {
      await client.end();
    }
  } catch {
    return false;
  }
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const client = await connect(port, 'postgres');
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount) return;
    await client.query(`create database ${quoteIdent(database)}`);
  } catch (err) {
    // duplicate_database: someone else created it between our check and ours.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
