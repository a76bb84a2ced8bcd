/**
 * The shape every CLI command shares, and the one runner that turns their failures into
 * exit codes: a UsageError or ConfigError is one line on stderr and exit 2 / 1, never a
 * stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/index.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure we can describe in one line to the operator (missing binary, unreachable DB…). */
export class FatalError extends Error {
  override name = 'FatalError';
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>): Promise<number | void>;
}

export async function runCommand(command: Command, argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    values = parsed.values as typeof values;
  } catch (err) {
    process.stderr.write(`tidings ${command.name}: ${(err as Error).message}\n${command.usage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${command.summary}\n\n${command.usage}\n`);
    return 0;
  }
  try {
    return (await command.run(values)) ?? 0;
  } catch (err) {
    return reportFailure(command.name, err);
  }
}

/** A port we could not listen on is the operator's to fix, so it is one line naming the setting. */
function listenFailure(commandName: string, err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.syscall !== 'listen') return undefined;
  const setting = commandName === 'worker' ? 'TIDINGS_METRICS_PORT' : 'PORT';
  const where = `port ${e.port ?? '?'}${e.address ? ` on ${e.address}` : ''}`;
  if (e.code === 'EADDRINUSE') return `${where} is in use; stop what holds it or set ${setting}`;
  if (e.code === 'EACCES') return `${where} needs privileges this process lacks; set ${setting} to 1024 or above`;
  if (e.code === 'EADDRNOTAVAIL') return `${where}: this machine has no such address; set HOST`;
  return `cannot listen on ${where}: ${e.code ?? e.message}`;
}

export function reportFailure(commandName: string, err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`tidings ${commandName}: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`tidings ${commandName}: configuration error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof FatalError) {
    process.stderr.write(`tidings ${commandName}: ${err.message}\n`);
    return 1;
  }
  const listenProblem = listenFailure(commandName, err);
  if (listenProblem) {
    process.stderr.write(`tidings ${commandName}: ${listenProblem}\n`);
    return 1;
  }
  process.stderr.write(`tidings ${commandName}: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}
