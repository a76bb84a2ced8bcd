/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof`): self time per function
 * and per file, heaviest first. Usage: npx tsx bench/tools/profile-summary.ts FILE [TOP]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary FILE [TOP]\n');
  process.exit(2);
}
const top = Number(topArg ?? 40);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((s, v) => s + v, 0);

const fnTotals = new Map<string, number>();
const fileTotals = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const short = url
    .replace(/^.*node_modules\//, 'nm/')
    .replace(/^.*\/work\/[^/]+\//, '')
    .replace(/^file:\/\//, '');
  const fn = `${functionName || '(anon)'} ${short}:${lineNumber + 1}`;
  fnTotals.set(fn, (fnTotals.get(fn) ?? 0) + us);
  const area = short.startsWith('nm/') ? short.split('/').slice(0, 2).join('/') : short || '(native/gc)';
  fileTotals.set(area, (fileTotals.get(area) ?? 0) + us);
}
const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title} (total ${(total / 1e6).toFixed(2)} s)\n`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  }
};
// Inclusive time: a sample counts once for every distinct function on its stack.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { functionName, url } = byId.get(at)!.callFrame;
    const key = `${functionName || '(anon)'} ${url.replace(/^.*node_modules\//, 'nm/').replace(/^.*\/work\/[^/]+\//, '')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}
print('self time by function', fnTotals);
print('inclusive time by function', inclusive);
print('self time by file/package', fileTotals);
