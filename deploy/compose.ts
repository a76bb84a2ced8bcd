/**
 * Reads docker-compose.yml the way Compose does (YAML merge keys, `${VAR:-default}`
 * interpolation), so the local topology script and the topology test use the very same
 * services, commands and environment as `docker compose up`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const ROOT = join(import.meta.dirname, '..');
export const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: (string | number | Record<string, unknown>)[];
  expose?: (string | number)[];
  volumes?: (string | Record<string, unknown>)[];
  restart?: string;
  [key: string]: unknown;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

export function readCompose(file = COMPOSE_FILE): ComposeFile {
  return parse(readFileSync(file, 'utf8'), { merge: true }) as ComposeFile;
}

/** Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
export function interpolate(text: string, env: NodeJS.ProcessEnv): string {
  const pattern = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
  return text.replace(
    pattern,
    (match, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const value = env[(name ?? bare)!];
      const missing = value === undefined || (colon === ':' && value === '');
      if (!missing) return value;
      if (op === '?') throw new Error(`${name}: ${arg || 'required'}`);
      return op === '-' ? interpolate(arg ?? '', env) : '';
    },
  );
}

/** A service's environment after interpolation, as the container would see it. */
export function serviceEnv(
  service: ComposeService,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Array.isArray(service.environment)
    ? service.environment.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, env[line] ?? ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(service.environment ?? {}).map(([k, v]) => [k, v === null ? (env[k] ?? '') : String(v)]);
  for (const [key, value] of entries) out[key!] = interpolate(value!, env);
  return out;
}

/** The service's command as an argv (after the image's ENTRYPOINT). */
export function serviceCommand(service: ComposeService): string[] {
  const command = service.command ?? [];
  return typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : command;
}

/** The services run from the Tidings image, i.e. the ones with `build: .` */
export function tidingsServices(compose: ComposeFile): [string, ComposeService][] {
  return Object.entries(compose.services).filter(([, s]) => {
    const context = typeof s.build === 'string' ? s.build : s.build?.context;
    return context === '.' || context === './';
  });
}
