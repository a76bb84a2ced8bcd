#!/usr/bin/env node
/** The `tidings` executable: picks the command and hands it to the shared runner. */
import { runCommand, type Command } from './cli/command.js';
import { devCommand } from './cli/dev.js';
import { gatewayCommand } from './cli/gateway.js';
import { migrateCommand } from './cli/migrate.js';
import { tokenCommand } from './cli/token.js';
import { workerCommand } from './cli/worker.js';

const COMMANDS: Command[] = [devCommand, gatewayCommand, workerCommand, migrateCommand, tokenCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `tidings: a realtime sync service with durability built in\n\nUsage: tidings <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun "tidings <command> --help" for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`tidings: unknown command "${name}" (try: ${COMMANDS.map((c) => c.name).join(', ')})\n`);
    return 2;
  }
  return runCommand(command, rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    // A command that failed while starting may still hold connections (Redis reconnects
    // forever): its one line is written (synchronously, to a pipe or file), so leave now.
    if (code !== 0) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tidings: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
