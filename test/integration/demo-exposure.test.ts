/**
 * The demo is for trying Tidings out, not part of a production gateway (issue 9): a gateway
 * serves no demo page unless TIDINGS_DEMO is on, and `tidings gateway` refuses at start, in
 * one line, to hand out demo tokens from a non-loopback address, or to run on a weak secret.
 * test/e2e/demo.test.ts drives the page itself.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/command.js';
import { gatewayCommand } from '../../src/cli/gateway.js';
import { TestStack } from '../helpers/stack.js';

async function status(port: number, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
}

/** `tidings gateway` in this process with `env` on top of the stack's, capturing stderr. */
async function runGateway(env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  const saved = { ...process.env };
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof write;
  Object.assign(process.env, env);
  try {
    return { code: await runCommand(gatewayCommand, []), stderr };
  } finally {
    process.stderr.write = write;
    for (const name of Object.keys(env)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

describe('demo exposure', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('is off by default on a gateway: no page, no SDK copy, no tokens', async () => {
    const gw = await stack.gateway();
    for (const path of ['/', '/?room=lobby', '/demo/centrifuge.js', '/demo/token?user=mallory'])
      expect(await status(gw.port, path), path).toBe(404);
    expect(await status(gw.port, '/health')).toBe(200);
  });

  it('serves the page with TIDINGS_DEMO=true, still without tokens', async () => {
    const gw = await stack.gateway({ TIDINGS_DEMO: 'true' });
    const page = await fetch(`http://127.0.0.1:${gw.port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await status(gw.port, '/demo/centrifuge.js?v=1')).toBe(200);
    expect(await status(gw.port, '/demo/token?user=mallory')).toBe(404);
  });

  it('`tidings gateway` refuses demo tokens on a non-loopback bind, in one line, before listening', async () => {
    const { code, stderr } = await runGateway({
      ...stack.env(),
      HOST: '0.0.0.0',
      TIDINGS_DEMO_TOKENS: 'true',
    });
    expect(code).toBe(1);
    expect(stderr).toBe(
      'tidings gateway: configuration error: TIDINGS_DEMO_TOKENS: hands out tokens to anyone, so it needs HOST on loopback (127.0.0.1, ::1, localhost), not 0.0.0.0\n',
    );
  });

  it('`tidings gateway` refuses a weak token secret or API key, in one line naming it', async () => {
    for (const [name, value] of [
      ['TIDINGS_TOKEN_SECRET', 'change-me-this-is-not-a-secret'],
      ['TIDINGS_TOKEN_SECRET', 'sixteen-chars-xx'],
      ['TIDINGS_API_KEY', 'change-me-api-key'],
      ['TIDINGS_API_KEY', 'k'.repeat(31)],
    ]) {
      const { code, stderr } = await runGateway({ ...stack.env(), [name!]: value });
      expect(code, `${name}=${value}`).toBe(1);
      expect(stderr).toMatch(new RegExp(`^tidings gateway: configuration error: ${name}: [^\\n]+\\n$`));
    }
  });
});
