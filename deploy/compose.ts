/**
 * Reads docker-compose.yml the way Compose does (YAML merge keys, `${VAR:-default}`
 * interpolation), so the local topology script and the topology test use the very same
 * services, commands and environment as `docker compose up`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNode, parse, parseDocument, visit, YAMLMap } from 'yaml';

export const ROOT = join(import.meta.dirname, '..');
export const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
/** The override that runs the same deployment on a Redis Cluster (issue 13). */
export const CLUSTER_COMPOSE_FILE = join(ROOT, 'docker-compose.cluster.yml');

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

/**
 * Several files merged as `docker compose -f a -f b` does (Compose's merge rules): mappings
 * merge key by key, sequences append, `command`, `entrypoint` and `healthcheck.test` are
 * replaced, and a value tagged `!override` replaces, `!reset` removes.
 */
export function readComposeFiles(files: string[]): ComposeFile {
  return files.map(readTagged).reduce((merged, next) => mergeNode(merged, next, '')) as ComposeFile;
}

/** Services of no profile, and those of the profiles given: what `up` starts. */
export function activeServices(compose: ComposeFile, profiles: string[] = []): Record<string, ComposeService> {
  return Object.fromEntries(
    Object.entries(compose.services).filter(([, s]) => {
      const own = (s.profiles as string[] | undefined) ?? [];
      return own.length === 0 || own.some((p) => profiles.includes(p));
    }),
  );
}

const TAGS = ['!override', '!reset'] as const;
const REPLACED = new Set(['command', 'entrypoint', 'test']);

/** A file as plain data, each `!override`/`!reset` value wrapped as `{ '!override': value }`. */
function readTagged(file: string): unknown {
  const doc = parseDocument(readFileSync(file, 'utf8'), { merge: true });
  visit(doc, (_key, node) => {
    if (!isNode(node) || !TAGS.includes(node.tag as (typeof TAGS)[number])) return undefined;
    const tag = node.tag!;
    node.tag = undefined;
    const wrapper = new YAMLMap();
    wrapper.set(tag, node);
    return wrapper;
  });
  return doc.toJS();
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const tagOf = (v: unknown) => (isMap(v) && Object.keys(v).length === 1 ? TAGS.find((t) => t in v) : undefined);

function mergeNode(base: unknown, next: unknown, key: string): unknown {
  const tag = tagOf(next);
  if (tag === '!reset') return undefined;
  if (tag === '!override' || base === undefined) return untag(tag ? (next as Record<string, unknown>)[tag] : next);
  if (Array.isArray(base) && Array.isArray(next)) return REPLACED.has(key) ? untag(next) : [...base, ...(untag(next) as unknown[])];
  if (!isMap(base) || !isMap(next)) return untag(next);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(next)) {
    const merged = mergeNode(base[k], v, k);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/** A value from one file only: its tags have nothing to apply to. */
function untag(value: unknown): unknown {
  const tag = tagOf(value);
  if (tag) return tag === '!reset' ? undefined : untag((value as Record<string, unknown>)[tag]);
  if (Array.isArray(value)) return value.map(untag);
  if (isMap(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untag(v)]));
  return value;
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
