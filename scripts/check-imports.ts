/**
 * `npm run check:imports`: the house's one-way arrows, checked (STYLE.md, "Layers").
 *
 * Fails on
 *  - an import cycle between files of src/ (type imports included: a cycle of types is
 *    still a reader going round in circles);
 *  - a cycle between folders (history → channels → history), even when no file cycle exists;
 *  - an import from a lower layer to a higher one.
 *
 * The layer order is written down once, here; a folder missing from it is an error, so a
 * new folder has to say where it stands.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Lowest first. Folders on one line are one layer: they may import each other, without cycles. */
export const LAYERS: string[][] = [
  ['protocol', 'config', 'observability'],
  ['auth', 'db', 'devstack', 'proxy'],
  ['bus'],
  ['history', 'channels', 'presence'],
  ['ingest', 'persist', 'webhooks'],
  ['gateway', 'api', 'http', 'cluster', 'admin'],
  ['app'],
  ['cli'],
];

const IMPORT = /(?:^|\n)\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

export interface Problem {
  kind: 'cycle' | 'folder cycle' | 'upward' | 'unlayered';
  detail: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of one file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2]!;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** `gateway` for src/gateway/x.ts; `cli` for src/cli.ts (the entry point belongs to the CLI). */
function folderOf(root: string, file: string): string {
  const rel = relative(root, file);
  const first = rel.split(/[\\/]/)[0]!;
  return first.endsWith('.ts') ? first.slice(0, -3) : first;
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((layer) => layer.includes(folder));
}

/** Every elementary cycle is not needed: one cycle through each strongly connected part is. */
function findCycles(graph: Map<string, Set<string>>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

export function checkImports(root: string): Problem[] {
  const files = sourceFiles(root);
  const fileGraph = new Map<string, Set<string>>();
  const folderGraph = new Map<string, Set<string>>();
  const problems: Problem[] = [];
  for (const file of files) {
    const from = folderOf(root, file);
    if (layerOf(from) < 0) problems.push({ kind: 'unlayered', detail: `src/${from} is in no layer of scripts/check-imports.ts` });
    const targets = importsOf(file).filter((t) => t.startsWith(root));
    fileGraph.set(file, new Set(targets));
    for (const target of targets) {
      const to = folderOf(root, target);
      if (to === from) continue;
      if (!folderGraph.has(from)) folderGraph.set(from, new Set());
      folderGraph.get(from)!.add(to);
      if (layerOf(to) > layerOf(from)) {
        problems.push({ kind: 'upward', detail: `${relative(root, file)} → ${relative(root, target)} (${from} is below ${to})` });
      }
    }
  }
  const rel = (p: string) => relative(root, p);
  for (const cycle of findCycles(fileGraph)) problems.push({ kind: 'cycle', detail: cycle.map(rel).join(' → ') });
  for (const cycle of findCycles(folderGraph)) problems.push({ kind: 'folder cycle', detail: cycle.join(' → ') });
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(import.meta.dirname, '..', 'src');
  const problems = checkImports(root);
  for (const p of problems) console.error(`${p.kind}: ${p.detail}`);
  if (problems.length > 0) {
    console.error(`check:imports: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log('check:imports: no cycles, no upward imports');
}
