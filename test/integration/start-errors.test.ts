/**
 * A process that cannot start says why in one line and exits (issue 16): a port that is
 * taken is the operator's to fix, so it names the setting, with no stack trace, and the
 * process does not linger on the connections it had opened.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../helpers/stack.js';

const ROOT = join(import.meta.dirname, '..', '..');

function runCli(role: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), role], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 30_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

describe('start-up failures', () => {
  const stack = new TestStack();
  let holder: Server;
  let port = 0;

  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as AddressInfo).port;
  });
  afterAll(async () => {
    holder.close();
    await stack.close();
  });

  it('a gateway on a port that is taken: one line naming PORT, exit 1', async () => {
    const { code, stderr } = await runCli('gateway', { ...stack.env(), PORT: String(port), LOG_LEVEL: 'silent' });
    expect(code).toBe(1);
    expect(stderr).toBe(`tidings gateway: port ${port} on 127.0.0.1 is in use; stop what holds it or set PORT\n`);
  });

  it("a worker whose metrics port is taken: one line naming TIDINGS_METRICS_PORT, exit 1", async () => {
    const { code, stderr } = await runCli('worker', { ...stack.env(), TIDINGS_METRICS_PORT: String(port), LOG_LEVEL: 'silent' });
    expect(code).toBe(1);
    expect(stderr).toBe(`tidings worker: port ${port} on 127.0.0.1 is in use; stop what holds it or set TIDINGS_METRICS_PORT\n`);
  });
});
