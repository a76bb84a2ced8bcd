/**
 * `tidings dev` as a newcomer runs it (issue 16): the banner hands out a token and an API
 * key it generated, both kept across restarts, and the HTTP API answers that key at once.
 * Run against the suite's servers (DATABASE_URL / REDIS_URL set), so no private ones start.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** Starts `tidings dev` and waits for its banner; `stop` ends it. */
async function startDev(env: NodeJS.ProcessEnv): Promise<{ lines: string[]; stop: () => Promise<unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'dev'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = () => {
    child.kill('SIGTERM');
    return exited;
  };
  try {
    await waitFor('the dev banner', () => lines.some((l) => l.includes('API key')), { timeoutMs: 30_000 });
  } catch (err) {
    await stop();
    throw err;
  }
  return { lines, stop };
}

function field(lines: string[], label: string): string {
  const line = lines.find((l) => l.trimStart().startsWith(label));
  if (!line) throw new Error(`no "${label}" line in the banner:\n${lines.join('\n')}`);
  return line.trimStart().slice(label.length).trim().split(/\s+/)[0]!;
}

describe('tidings dev', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('prints a generated API key that the HTTP API accepts, and keeps it across restarts', async () => {
    const devDir = mkdtempSync(join(tmpdir(), 'tidings-dev-'));
    const env = { ...stack.env(), TIDINGS_TOKEN_SECRET: '', TIDINGS_API_KEY: '', TIDINGS_DEV_DIR: devDir, LOG_LEVEL: 'warn' };
    const first = await startDev(env);
    await first.stop();
    const key = field(first.lines, 'API key');
    expect(key).toMatch(/^[0-9a-f]{48}$/);
    expect(field(first.lines, 'Secret')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Started again, it finds its key and serves the API with it.
    const again = await startDev(env);
    try {
      expect(field(again.lines, 'API key')).toBe(key);
      const api = field(again.lines, 'HTTP API').replace('<method>', 'info');
      const ok = await fetch(api, { method: 'POST', headers: { 'X-API-Key': key }, body: '{}' });
      expect(ok.status).toBe(200);
      const refused = await fetch(api, { method: 'POST', headers: { 'X-API-Key': 'x'.repeat(48) }, body: '{}' });
      expect(refused.status).toBe(401);
    } finally {
      await again.stop();
    }
  }, 90_000);
});
