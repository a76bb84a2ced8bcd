/**
 * Server processes and how to find all of them. Every server is spawned detached, so it leads
 * its own process group, which also holds redis-server's AOF-rewrite child. PostgreSQL's
 * children, though, call setsid() at birth (InitPostmasterChild) and leave the group; what
 * they keep is the postmaster's working directory, the data directory. So a server's members
 * are its group plus, when given, every process whose cwd is that directory, which still
 * finds backends after the postmaster died and they were reparented.
 *
 * Servers this process started are SIGKILLed on 'exit', so a test that forgets stop() does
 * not leave them behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
} from 'node:fs';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How to recognise every process of one server. */
export interface Members {
  /** The server's PID, which is also its process group id (it was spawned detached). */
  readonly pgid: number;
  /** Processes outside the group that belong to the server anyway. */
  readonly strays?: Strays;
}

/** Processes named `comm` whose working directory is `cwd` (a real path). */
export interface Strays {
  readonly cwd: string;
  readonly comm: string;
}

export interface SpawnedServer {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly members: Members;
  /** Settles when Node has reaped the process. */
  readonly exited: Promise<ExitInfo>;
  /** Set once the process has exited. */
  exit: ExitInfo | undefined;
}

export interface SpawnOptions {
  cwd: string;
  logFile: string;
  strays?: Strays;
}

const started = new Map<number, Members>();
let exitHookInstalled = false;

/** Starts `command` in its own process group, stdout and stderr appended to `logFile`. */
export async function spawnServer(
  command: string,
  args: readonly string[],
  opts: SpawnOptions,
): Promise<SpawnedServer> {
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', fd, fd] });
    await once(child, 'spawn');
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  // Do not keep the event loop alive for a server: a process that is otherwise done should
  // exit, and the 'exit' hook below then takes its servers down with it.
  child.unref();
  const pid = child.pid as number; // defined: 'spawn' was emitted
  return track(child, opts.strays === undefined ? { pgid: pid } : { pgid: pid, strays: opts.strays });
}

function track(child: ChildProcess, members: Members): SpawnedServer {
  installExitHook();
  started.set(members.pgid, members);
  const server: SpawnedServer = {
    child,
    pid: members.pgid,
    members,
    exit: undefined,
    exited: new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        server.exit = { code, signal };
        resolve(server.exit);
      });
    }),
  };
  return server;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const members of started.values()) killMembers(members);
  });
}

/** Forget a server once it is known to be gone, so the exit hook does not signal reused ids. */
export function forget(members: Members): void {
  started.delete(members.pgid);
}

/** SIGKILLs every living member; returns how many there were. */
export function killMembers(members: Members): number {
  const living = livingMembers(members);
  // Signal the group only while it has members: an empty group's id may be reused.
  if (living.some((p) => p.pgrp === members.pgid)) signal(-members.pgid, 'SIGKILL');
  for (const p of living) signal(p.pid, 'SIGKILL');
  return living.length;
}

/** Sends `sig` to a PID (or, negative, a group); one that is already gone is fine. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

interface ProcessInfo {
  pid: number;
  pgrp: number;
}

/**
 * Members still running. Zombies do not count: orphans are reparented to PID 1, which in a
 * container may never reap them, yet a zombie holds no port, no shared memory and no file.
 */
export function livingMembers(members: Members): ProcessInfo[] {
  if (!existsSync('/proc/self/stat'))
    return groupReachable(members.pgid) ? [{ pid: members.pgid, pgrp: members.pgid }] : [];
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProcStat(entry);
    if (!info || info.state === 'Z' || info.state === 'X') continue;
    if (info.pgrp === members.pgid || isStray(entry, members.strays)) found.push(info);
  }
  return found;
}

function readProcStat(pid: string): (ProcessInfo & { state: string }) | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited while we listed /proc
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so cut at the last ')'.
  const [state, , pgrp] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return state && pgrp ? { pid: Number(pid), pgrp: Number(pgrp), state } : undefined;
}

// The name check keeps us from killing, say, a shell someone opened in the data directory.
function isStray(pid: string, strays: Strays | undefined): boolean {
  if (strays === undefined) return false;
  try {
    if (readlinkSync(`/proc/${pid}/cwd`) !== strays.cwd) return false;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === strays.comm;
  } catch {
    return false; // not ours to read, or gone
  }
}

function groupReachable(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The last lines of a log file, joined on one line, for error messages. */
export function logTail(logFile: string, lines = 3): string {
  try {
    const fd = openSync(logFile, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 4096);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      const all = buffer
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim());
      return all
        .filter((l) => l.length > 0)
        .slice(-lines)
        .join(' | ');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}
