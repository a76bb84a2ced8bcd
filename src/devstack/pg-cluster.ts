/**
 * PostgreSQL cluster files. initdb takes a second or more; copying an initialised cluster
 * takes a fraction of that. So we initialise one template per PostgreSQL version (and OS
 * user) under the temp dir, once per machine, and copy it into every new data directory.
 * Both the template and each copy appear by rename(2), so a concurrent test worker, or a
 * crash half-way, never sees a half-made cluster.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { chown, mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { findBinary } from './binaries.js';
import { asUser, type OsUser } from './os-user.js';

const run = promisify(execFile);

/** Bump when the initdb arguments change, so old templates are not reused. */
const TEMPLATE_FORMAT = 1;

export interface PgInstall {
  readonly postgres: string;
  readonly initdb: string;
  /** For standbys (tests of read replicas). */
  readonly basebackup: string;
  /** "15.20" */
  readonly version: string;
}

/** postgres, and the initdb beside it (a different major version's initdb would not do). */
export function findPostgres(): PgInstall {
  const postgres = findBinary('postgres');
  // realpath: PATH may hold a symlink (/usr/local/bin/postgres → /usr/lib/postgresql/15/bin/postgres).
  const sibling = join(dirname(realpathSync(postgres)), 'initdb');
  const initdb = existsSync(sibling) ? sibling : findBinary('initdb');
  const backupSibling = join(dirname(realpathSync(postgres)), 'pg_basebackup');
  const basebackup = existsSync(backupSibling) ? backupSibling : 'pg_basebackup';
  const output = execFileSync(postgres, ['--version'], { encoding: 'utf8' });
  const version = /\(PostgreSQL\)\s+(\d+(?:\.\d+)?)/.exec(output)?.[1] ?? 'unknown';
  return { postgres, initdb, basebackup, version };
}

/** Makes `pgdata` a cluster, unless it already is one. */
export async function ensureCluster(
  pg: PgInstall,
  pgdata: string,
  user: OsUser | undefined,
  log?: Logger,
): Promise<void> {
  if (isCluster(pgdata)) return;
  await removeEmptyDir(pgdata);
  const template = await ensureTemplate(pg, user, log);
  const began = Date.now();
  const partial = `${pgdata}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  // -a keeps owner and modes: postgres requires pgdata to be its own and 0700 (or 0750).
  await run('cp', ['-a', template, partial]);
  await rename(partial, pgdata);
  log?.debug({ template, pgdata, ms: Date.now() - began }, 'copied PostgreSQL template cluster');
}

/**
 * Makes `pgdata` a streaming replica of the server on 127.0.0.1:`primaryPort`, unless it
 * already is a cluster: pg_basebackup -R copies the primary and writes the standby signal and
 * the connection it replicates from (trust auth, as initdb set it up for replication too).
 */
export async function ensureStandby(pg: PgInstall, pgdata: string, user: OsUser | undefined, primaryPort: number): Promise<void> {
  if (isCluster(pgdata)) return;
  await removeEmptyDir(pgdata);
  const partial = `${pgdata}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  // Made here and handed over: the server's user may not create entries in the parent.
  await mkdir(partial, { mode: 0o700 });
  if (user) await chown(partial, user.uid, user.gid);
  const args = ['-D', partial, '-R', '-X', 'stream', '-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '--no-sync', '--checkpoint=fast'];
  await runMaking(partial, 'pg_basebackup', asUser(user, pg.basebackup, args));
  await rename(partial, pgdata);
}

function isCluster(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION')) && existsSync(join(dir, 'global', 'pg_control'));
}

/** An empty pgdata (made by hand, say) is fine to replace; anything else we refuse to touch. */
async function removeEmptyDir(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new Error(`${dir} is not empty and not a PostgreSQL data directory: move it away`);
    }
    throw err;
  }
}

async function ensureTemplate(pg: PgInstall, user: OsUser | undefined, log?: Logger): Promise<string> {
  const owner = user?.name ?? `uid${process.getuid?.() ?? 'x'}`;
  const template = join(tmpdir(), `tidings-pg-template-${pg.version}-${owner}-f${TEMPLATE_FORMAT}`);
  if (isCluster(template)) return template;
  // A template the temp-dir cleaner has half-emptied: move it aside atomically, then rebuild.
  if (existsSync(template)) await discard(template);
  const partial = `${template}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  const began = Date.now();
  await initdb(pg, partial, user);
  try {
    await rename(partial, template);
    log?.info({ template, ms: Date.now() - began }, 'initialised PostgreSQL template cluster');
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    // Another worker renamed its template first: use that one.
    if (!isCluster(template)) throw err;
  }
  return template;
}

async function discard(dir: string): Promise<void> {
  const aside = `${dir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(dir, aside).catch(() => undefined); // someone else may have moved it already
  await rm(aside, { recursive: true, force: true });
}

async function initdb(pg: PgInstall, dir: string, user: OsUser | undefined): Promise<void> {
  // trust: only 127.0.0.1 and our own socket can reach it. C locale: present everywhere and
  // fast. --no-sync: a template only ever lives in the temp dir; copies are what servers use.
  const args = ['-D', dir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'];
  await runMaking(dir, 'initdb', asUser(user, pg.initdb, args));
}

/**
 * Runs a command that fills `dir`; on failure removes what it left and throws with the last
 * line it printed. cwd: the tools resolve paths against it, and our own cwd may be closed to
 * the postgres user.
 */
async function runMaking(dir: string, what: string, cmd: { file: string; args: string[] }): Promise<void> {
  try {
    await run(cmd.file, cmd.args, { cwd: tmpdir(), maxBuffer: 4 * 1024 * 1024 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${what} failed: ${stderr.split('\n').pop() || (err as Error).message}`);
  }
}
