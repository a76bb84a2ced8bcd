import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/command.js';
import { DEFAULT_TOKEN_TTL_SECONDS, tokenCommand } from '../../src/cli/token.js';
import { verifyConnectionToken, verifySubscriptionToken } from '../../src/auth/jwt.js';
import { DisconnectError, ProtocolError } from '../../src/protocol/codes.js';

const SECRET = 'cli-test-secret-at-least-32-characters';

/** Runs `tidings token ARGS` in this process, capturing what it writes. */
async function runToken(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => (
    (stdout += String(chunk)),
    true
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (stderr += String(chunk)),
    true
  )) as typeof process.stderr.write;
  try {
    const code = await runCommand(tokenCommand, args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe('tidings token', () => {
  const saved = process.env.TIDINGS_TOKEN_SECRET;
  beforeEach(() => {
    process.env.TIDINGS_TOKEN_SECRET = SECRET;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TIDINGS_TOKEN_SECRET;
    else process.env.TIDINGS_TOKEN_SECRET = saved;
  });

  it('prints a subscription token and a newline that verifies with the secret only', async () => {
    const { code, stdout, stderr } = await runToken(['--user', '42', '--channel', 'news']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = stdout.trim();
    const grant = await verifySubscriptionToken(token, SECRET, { channel: 'news', user: '42', client: 'c1' });
    expect(grant.expiresAt! - grant.claims.iat!).toBe(DEFAULT_TOKEN_TTL_SECONDS);
    await expect(
      verifySubscriptionToken(token, 'some-other-secret-of-32-characters!!', {
        channel: 'news',
        user: '42',
        client: 'c1',
      }),
    ).rejects.toBeInstanceOf(ProtocolError);
  });

  it('prints a connection token with --ttl and --info', async () => {
    const { code, stdout } = await runToken(['--user', '42', '--ttl', '120', '--info', '{"name":"Ann"}']);
    expect(code).toBe(0);
    const creds = await verifyConnectionToken(stdout.trim(), SECRET);
    expect(creds).toMatchObject({ user: '42', info: { name: 'Ann' } });
    expect(creds.expiresAt! - creds.claims.iat!).toBe(120);
    await expect(
      verifyConnectionToken(stdout.trim(), 'some-other-secret-of-32-characters!!'),
    ).rejects.toBeInstanceOf(DisconnectError);
  });

  it('exits 2 with one line naming --info when --info is not JSON', async () => {
    const { code, stdout, stderr } = await runToken(['--user', '42', '--info', 'notjson']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain('--info');
  });

  it('exits 2 without --user, with a bad --ttl, or with a user or channel the gateway would refuse', async () => {
    for (const args of [
      [],
      ['--user', ''],
      ['--user', 'a\u0000b'],
      ['--user', 'x\ud800'],
      ['--user', 'u'.repeat(256)],
      ['--user', '1', '--channel', 'a'.repeat(300)],
      ['--user', '1', '--channel', 'bad\nname'],
      ['--user', '1', '--ttl', '0'],
      ['--user', '1', '--ttl', '1.5'],
      ['--user', '1', '--ttl', 'x'],
    ]) {
      const { code, stdout, stderr } = await runToken(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('exits 1 with one line naming TIDINGS_TOKEN_SECRET when it is missing', async () => {
    delete process.env.TIDINGS_TOKEN_SECRET;
    const { code, stdout, stderr } = await runToken(['--user', '42']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain('TIDINGS_TOKEN_SECRET');
  });

  it('lists every option in --help', async () => {
    const { code, stdout } = await runToken(['--help']);
    expect(code).toBe(0);
    for (const option of ['--user', '--ttl', '--channel', '--info']) expect(stdout).toContain(option);
  });
});
