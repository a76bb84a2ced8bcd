/**
 * Finding server binaries on this machine. Debian keeps `postgres` and `initdb` out of PATH
 * (only the pg_wrapper scripts are there), under /usr/lib/postgresql/<major>/bin, so we look
 * there too, newest major first. A missing binary is one line that names the package.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const POSTGRES_ROOT = '/usr/lib/postgresql';

// Binary name → Debian package that ships it; unknown names are assumed to be their own package.
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  postgres: 'postgresql',
  initdb: 'postgresql',
  pg_ctl: 'postgresql',
  setpriv: 'util-linux',
};

export class MissingBinaryError extends Error {
  override readonly name = 'MissingBinaryError';
  readonly binary: string;
  readonly debianPackage: string;

  constructor(binary: string) {
    const pkg = DEBIAN_PACKAGES[binary] ?? binary;
    super(`${binary} not found: install it (Debian: apt-get install -y ${pkg})`);
    this.binary = binary;
    this.debianPackage = pkg;
  }
}

/** Absolute path of `name`: PATH first, then /usr/lib/postgresql/*\/bin (highest version first). */
export function findBinary(name: string): string {
  for (const dir of [...pathDirs(), ...postgresBinDirs()]) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new MissingBinaryError(name);
}

function pathDirs(): string[] {
  return (process.env.PATH ?? '').split(delimiter).filter((dir) => dir.length > 0);
}

/** /usr/lib/postgresql/<version>/bin, sorted by version, highest first ("15" > "9.6"). */
export function postgresBinDirs(): string[] {
  let versions: string[];
  try {
    versions = readdirSync(POSTGRES_ROOT);
  } catch {
    return [];
  }
  return versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    .map((v) => join(POSTGRES_ROOT, v, 'bin'));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
