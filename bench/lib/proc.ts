/**
 * Linux /proc readings: resident memory of a process, and CPU time per component of the
 * stack (load generator, gateways, workers, Redis, every PostgreSQL backend), so a result
 * says where the two cores went.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** VmRSS of a process in bytes, or undefined when it cannot be read. */
export function rssBytes(pid: number): number | undefined {
  const status = read(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** utime + stime of one process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of every process named `comm` whose working directory is under `dir`
 * (PostgreSQL's backends keep the data directory as their cwd), per pid.
 */
export function cpuSecondsByPid(comm: string, dir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (read(`/proc/${entry}/comm`).trim() !== comm) continue;
    try {
      if (!readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) continue;
    } catch {
      continue;
    }
    out.set(Number(entry), cpuSeconds(Number(entry)));
  }
  return out;
}

/**
 * A cumulative CPU reader for a changing set of processes (PostgreSQL backends come and go:
 * a pool closes idle connections after 10 s). Each reading adds what every process used
 * since the previous one (all of it for a process not seen before), so the total never goes
 * back when one exits; what a process used between its last reading and its exit is lost,
 * which only under-counts.
 */
export function cpuSecondsUnder(comm: string, dir: string): () => number {
  let last = new Map<number, number>();
  let total = 0;
  return () => {
    const now = cpuSecondsByPid(comm, dir);
    for (const [pid, seconds] of now) total += seconds - (last.get(pid) ?? 0);
    last = now;
    return total;
  };
}

export interface CpuComponent {
  label: string;
  read(): number;
}

/** Busy CPU seconds of the whole machine, all cores (from /proc/stat). */
export function machineBusySeconds(): number {
  const fields = read('/proc/stat').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy is everything but idle and iowait.
  const total = fields.slice(0, 8).reduce((s, v) => s + v, 0);
  return (total - fields[3]! - fields[4]!) / TICKS_PER_SECOND;
}

/** The cores /proc/stat counts (its cpuN lines): the ones `machineBusySeconds` adds up. */
function statCores(): number {
  return read('/proc/stat').split('\n').filter((line) => /^cpu\d+ /.test(line)).length || 1;
}

/**
 * Entries of a CpuUsage that are not a component of the deployment: what the rest of the
 * machine used, and what nothing used. Sums over the deployment skip them.
 */
export const NOT_COMPONENTS: ReadonlySet<string> = new Set(['others', 'idle']);

/** CPU over an interval: core-seconds and % of one core per component, plus `others` and `idle`. */
export interface CpuUsage {
  wallS: number;
  seconds: Record<string, number>;
  percent: Record<string, number>;
}

/**
 * Takes a reading now; `stop()` returns each component's share of one core over the
 * interval, in %, plus `others`: what the rest of the machine used meanwhile (anything not
 * ours competes for the same cores and makes the figures lower than on an idle machine),
 * and `idle`: the cores' time nothing used (iowait counted as idle).
 * `usage()` returns the same interval as core-seconds too.
 */
export function cpuMeter(components: CpuComponent[]): { stop(): Record<string, number>; usage(): CpuUsage } {
  const started = process.hrtime.bigint();
  const before = components.map((c) => c.read());
  const machineBefore = machineBusySeconds();
  const usage = (): CpuUsage => {
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const seconds: Record<string, number> = {};
    const percent: Record<string, number> = {};
    let ours = 0;
    components.forEach((c, i) => {
      const used = c.read() - before[i]!;
      ours += used;
      seconds[c.label] = Math.round(used * 100) / 100;
      percent[c.label] = Math.round((used / wallS) * 100);
    });
    const busy = machineBusySeconds() - machineBefore;
    const others = Math.max(0, busy - ours);
    seconds.others = Math.round(others * 100) / 100;
    percent.others = Math.round((others / wallS) * 100);
    // A run that leaves cores idle is bound by waiting (a closed loop's latency), not by CPU.
    const idle = Math.max(0, statCores() * wallS - busy);
    seconds.idle = Math.round(idle * 100) / 100;
    percent.idle = Math.round((idle / wallS) * 100);
    return { wallS, seconds, percent };
  };
  return { stop: () => usage().percent, usage };
}

/** The load average over the last minute and the core count, to record how busy the box was. */
export function loadAverage(): number {
  return Number(read('/proc/loadavg').split(' ')[0]);
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
