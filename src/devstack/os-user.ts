/**
 * PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
 * permitted). When we are root we run initdb and postgres as the `postgres` OS user, which
 * the Debian package creates, through `setpriv`: it changes ids and execs the binary in place,
 * so the PID we spawn is the postmaster itself (`runuser` and `su` fork and wait instead, and
 * a kill would hit the wrapper).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { findBinary } from './binaries.js';

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const POSTGRES_USER = 'postgres';

/** The user to run PostgreSQL as, or undefined to run it as ourselves. */
export function postgresRunAs(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = lookupUser(POSTGRES_USER);
  if (!user) {
    throw new Error(
      `PostgreSQL will not run as root and there is no '${POSTGRES_USER}' user to run it as: ` +
        `create one (useradd --system ${POSTGRES_USER}) or set DATABASE_URL`,
    );
  }
  return user;
}

function lookupUser(name: string): OsUser | undefined {
  const line = passwdLine(name);
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) return undefined;
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** getent also sees users from NSS (LDAP, sssd); /etc/passwd is the fallback without it. */
function passwdLine(name: string): string | undefined {
  try {
    return execFileSync('getent', ['passwd', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    try {
      return readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${name}:`));
    } catch {
      return undefined;
    }
  }
}

/** `file args` as `user`, without an intermediate process. */
export function asUser(
  user: OsUser | undefined,
  file: string,
  args: string[],
): { file: string; args: string[] } {
  if (!user) return { file, args };
  const setpriv = findBinary('setpriv');
  return {
    file: setpriv,
    args: [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', file, ...args],
  };
}

/**
 * Lets `user` reach `dir`: every directory on the way needs search (x) permission for it.
 * mkdtemp makes 0700 directories, so we add o+x (enter, not list) to `dir` itself and to
 * directories under the temp dir; anywhere else we would be loosening someone's home
 * directory behind their back, so we say what to do instead.
 */
export function ensureReachable(user: OsUser, dir: string): void {
  const target = resolve(dir);
  const temp = resolve(tmpdir());
  for (let path = target; ; path = dirname(path)) {
    const stat = statSync(path);
    if (!canSearch(user, stat)) {
      if (path !== target && !isInside(temp, path)) {
        throw new Error(
          `PostgreSQL runs as user ${user.name}, which cannot enter ${path}: ` +
            `allow it (chmod o+x ${path}), use a data directory it can reach, or set DATABASE_URL`,
        );
      }
      chmodSync(path, stat.mode | 0o001);
    }
    if (path === dirname(path)) return;
  }
}

function canSearch(user: OsUser, stat: { uid: number; gid: number; mode: number }): boolean {
  // Supplementary groups are ignored: a false "no" only costs an o+x we did not need.
  if (stat.uid === user.uid) return (stat.mode & 0o100) !== 0;
  if (stat.gid === user.gid) return (stat.mode & 0o010) !== 0;
  return (stat.mode & 0o001) !== 0;
}

function isInside(parent: string, path: string): boolean {
  const rel = relative(parent, path);
  return rel.length > 0 && !rel.startsWith('..') && !isAbsolute(rel);
}
