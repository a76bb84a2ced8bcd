/**
 * One private server process behind a small lifecycle: start, stop (graceful), kill (-9).
 * Operations run one at a time, in call order, so a stop() issued during start() waits for
 * it. The port and the data directory never change, so clients can simply reconnect.
 */
import { realpathSync } from 'node:fs';
import type { Logger } from 'pino';
import { freePort, isPortFree, waitPortFree } from './ports.js';
import {
  forget,
  killMembers,
  logTail,
  signal,
  spawnServer,
  type Members,
  type Strays,
  type SpawnedServer,
} from './process.js';
import { sleep, waitUntil } from './wait.js';

export interface ServerHandle {
  readonly kind: 'redis' | 'postgres';
  /** Fixed at first start; restart reuses it. */
  readonly port: number;
  /** redis://127.0.0.1:PORT | postgres://USER@127.0.0.1:PORT/DB */
  readonly url: string;
  readonly dataDir: string;
  /** PID of the real server process (redis-server / postmaster); undefined when stopped. */
  readonly pid: number | undefined;
  /** (Re)starts on the same port and data dir; resolves when the server answers. */
  start(): Promise<void>;
  /** Graceful shutdown (SIGTERM for Redis, fast shutdown for PostgreSQL); waits for exit; idempotent. */
  stop(): Promise<void>;
  /** SIGKILL to the server and all its children; waits until the port is free; idempotent. */
  kill(): Promise<void>;
}

/** What differs between Redis and PostgreSQL. */
export interface ServerSpec {
  readonly kind: 'redis' | 'postgres';
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** The server binary, for logs (the command may be a user-switching wrapper around it). */
  readonly binary: string;
  /** Sent to the server's PID alone; the server takes its children down itself. */
  readonly stopSignal: NodeJS.Signals;
  readonly logger: Logger | undefined;
  /**
   * Children that leave the server's process group (PostgreSQL's) are found by name and by
   * working directory, which need not exist before prepare().
   */
  readonly strays?: { cwd: string; comm: string };
  /** Before every start: directories, ownership, cluster files. */
  prepare(): Promise<void>;
  /** The command whose PID becomes the server's PID (no forking wrapper). */
  command(): { file: string; args: string[]; cwd: string };
  /** One readiness attempt: true once the server answers, and is the one we started as `pid`. */
  ready(pid: number): Promise<boolean>;
  afterReady?(): Promise<void>;
  /** Once every process of the server is gone. */
  afterExit?(): Promise<void>;
}

/** The server exited before it answered; with a port picked for it, another port may work. */
export class ServerExitedError extends Error {
  override readonly name = 'ServerExitedError';
}

export class PortBusyError extends Error {
  override readonly name = 'PortBusyError';
}

interface ReapOptions {
  waitPort: boolean;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export class ManagedServer implements ServerHandle {
  #server: SpawnedServer | undefined;
  /** Processes of the last server until they are known to be gone (a crash may leave backends). */
  #members: Members | undefined;
  #expectingExit = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly spec: ServerSpec) {}

  get kind(): 'redis' | 'postgres' {
    return this.spec.kind;
  }
  get port(): number {
    return this.spec.port;
  }
  get url(): string {
    return this.spec.url;
  }
  get dataDir(): string {
    return this.spec.dataDir;
  }
  get pid(): number | undefined {
    return this.#running() ? this.#server?.pid : undefined;
  }

  start(): Promise<void> {
    return this.#serial(() => this.#start());
  }
  stop(): Promise<void> {
    return this.#serial(() => this.#stop());
  }
  kill(): Promise<void> {
    return this.#serial(() => this.#kill());
  }

  #serial(op: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #strays(): Strays | undefined {
    const strays = this.spec.strays;
    return strays && { cwd: realpathSync(strays.cwd), comm: strays.comm };
  }

  #running(): boolean {
    return this.#server !== undefined && this.#server.exit === undefined;
  }

  async #start(): Promise<void> {
    if (this.#running()) return;
    await this.#reap(); // leftovers of a crash must not hold the port or shared memory
    await this.spec.prepare();
    if (!(await isPortFree(this.spec.port)))
      throw new PortBusyError(`port ${this.spec.port} is already in use`);
    const began = Date.now();
    const { file, args, cwd } = this.spec.command();
    const server = await spawnServer(file, args, { cwd, logFile: this.spec.logFile, strays: this.#strays() });
    this.#server = server;
    this.#members = server.members;
    this.#expectingExit = false;
    void server.exited.then(() => this.#onExit(server));
    try {
      await this.#waitReady(server);
      await this.spec.afterReady?.();
    } catch (err) {
      // The port may be someone else's (that is often why we failed): do not wait for it.
      await this.#kill({ waitPort: false }).catch(() => undefined);
      throw err;
    }
    const { kind, binary, port, dataDir } = this.spec;
    this.spec.logger?.info(
      { kind, binary, port, dataDir, pid: server.pid, ms: Date.now() - began },
      `${kind} started`,
    );
  }

  #waitReady(server: SpawnedServer): Promise<void> {
    const { kind, port, logFile } = this.spec;
    return waitUntil(
      () => {
        if (server.exit) {
          const how = server.exit.signal ?? `code ${server.exit.code}`;
          throw new ServerExitedError(
            `${kind} exited (${how}) before answering on port ${port}: ${logTail(logFile)}`,
          );
        }
        return this.spec.ready(server.pid);
      },
      {
        what: `${kind} on port ${port} to answer (log: ${logFile})`,
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 50,
      },
    );
  }

  #onExit(server: SpawnedServer): void {
    if (this.#server !== server || this.#expectingExit) return;
    const { kind, port, logFile } = this.spec;
    this.spec.logger?.warn(
      { kind, port, pid: server.pid, exit: server.exit, logFile },
      `${kind} exited unexpectedly`,
    );
  }

  async #stop(): Promise<void> {
    const server = this.#server;
    if (server && server.exit === undefined) {
      this.#expectingExit = true;
      server.child.ref(); // the process is unref'd; waiting for its exit must keep us alive
      signal(server.pid, this.spec.stopSignal);
      const exited = await Promise.race([server.exited, sleep(STOP_TIMEOUT_MS, undefined, { ref: false })]);
      if (!exited) {
        this.spec.logger?.warn(
          { kind: this.spec.kind, pid: server.pid },
          `${this.spec.kind} did not stop in time, killing it`,
        );
        killMembers(server.members);
        await server.exited;
      }
      this.spec.logger?.info({ kind: this.spec.kind, port: this.spec.port }, `${this.spec.kind} stopped`);
    }
    await this.#reap();
  }

  async #kill(opts: ReapOptions = { waitPort: true }): Promise<void> {
    const server = this.#server;
    if (server && server.exit === undefined) {
      this.#expectingExit = true;
      server.child.ref(); // the process is unref'd; waiting for its exit must keep us alive
      killMembers(server.members);
      await server.exited;
      this.spec.logger?.info({ kind: this.spec.kind, port: this.spec.port }, `${this.spec.kind} killed`);
    }
    await this.#reap(opts);
  }

  /** Makes sure nothing of the last server runs and its port is free, then forgets it. */
  async #reap(opts: ReapOptions = { waitPort: true }): Promise<void> {
    const members = this.#members;
    if (members === undefined) return;
    // Killing again on every look: a backend may still be on its way out of a fast shutdown.
    await waitUntil(() => killMembers(members) === 0, {
      what: `every process of ${this.spec.kind} (group ${members.pgid}) to exit`,
      timeoutMs: 30_000,
    });
    forget(members);
    this.#members = undefined;
    if (opts.waitPort) await waitPortFree(this.spec.port);
    await this.spec.afterExit?.();
  }
}

/**
 * Starts a server on `port`, or on a free port we pick. A picked port can be taken by someone
 * else between our check and the server's bind (another test worker); then we try another.
 */
export async function launch(
  port: number | undefined,
  make: (port: number) => ServerSpec,
): Promise<ServerHandle> {
  for (let attempt = 1; ; attempt++) {
    const handle = new ManagedServer(make(port ?? (await freePort())));
    try {
      await handle.start();
      return handle;
    } catch (err) {
      const retryable = err instanceof ServerExitedError || err instanceof PortBusyError;
      if (port !== undefined || attempt >= 3 || !retryable) throw err;
    }
  }
}
