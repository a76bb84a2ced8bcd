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
 * (PostgreSQL's backends keep the data directory as their cwd). Backends that exited
 * between two readings are lost, which only under-counts; the bench keeps its pools open.
 */
export function cpuSecondsUnder(comm: string, dir: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (read(`/proc/${entry}/comm`).trim() !== comm) continue;
    try {
      if (!readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) continue;
    } catch {
      continue;
    }
    total += cpuSeconds(Number(entry));
  }
  return total;
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

/**
 * Takes a reading now; `stop()` returns each component's share of one core over the
 * interval, in %, plus `others`: what the rest of the machine used meanwhile (anything not
 * ours competes for the same cores and makes the figures lower than on an idle machine).
 */
export function cpuMeter(components: CpuComponent[]): { stop(): Record<string, number> } {
  const started = process.hrtime.bigint();
  const before = components.map((c) => c.read());
  const machineBefore = machineBusySeconds();
  return {
    stop() {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const out: Record<string, number> = {};
      let ours = 0;
      components.forEach((c, i) => {
        const used = c.read() - before[i]!;
        ours += used;
        out[c.label] = Math.round((used / seconds) * 100);
      });
      out.others = Math.max(0, Math.round(((machineBusySeconds() - machineBefore - ours) / seconds) * 100));
      return out;
    },
  };
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
