/**
 * `tidings token`: prints an HS256 JWT signed with TIDINGS_TOKEN_SECRET, and a newline, on
 * stdout; nothing else goes to stdout, so `TOKEN=$(tidings token --user 42)` works. Options
 * are checked before the configuration is read, so a usage mistake is reported as such
 * (exit 2) even where the secret is missing (exit 1).
 */
import { signToken } from '../auth/jwt.js';
import { isValidChannelName } from '../channels/names.js';
import { loadConfig } from '../config/index.js';
import { MAX_USER_BYTES, isStorableText } from '../protocol/text.js';
import { UsageError, type Command } from './command.js';

/** Tokens expire after a day unless --ttl says otherwise: a forgotten token should not live forever. */
export const DEFAULT_TOKEN_TTL_SECONDS = 86_400;

/** Ten years: a larger --ttl is a typo, and beyond it `exp` stops being a sane date. */
const MAX_TTL_SECONDS = 10 * 365 * 86_400;

const USAGE = `Usage: tidings token --user ID [--ttl S] [--channel CH] [--info JSON]

Prints a JWT signed (HS256) with TIDINGS_TOKEN_SECRET: a connection token, or with --channel
a subscription token for that channel.

Options:
  --user ID       the user id (the "sub" claim, at most 255 bytes); required
  --ttl S         lifetime in whole seconds, > 0 (the "exp" claim); default ${DEFAULT_TOKEN_TTL_SECONDS} (24 hours)
  --channel CH    make a subscription token for channel CH (the "channel" claim; a valid channel name)
  --info JSON     JSON attached as the "info" claim (conn_info, or chan_info with --channel)
  -h, --help      show this help

Environment: TIDINGS_TOKEN_SECRET (required, at least 32 bytes)`;

export const tokenCommand: Command = {
  name: 'token',
  summary: 'print a connection token, or with --channel a subscription token (HS256 JWT)',
  usage: USAGE,
  options: {
    user: { type: 'string' },
    ttl: { type: 'string' },
    channel: { type: 'string' },
    info: { type: 'string' },
  },
  async run(values) {
    const user = storableUser(requiredText(values.user, '--user'));
    const ttlSeconds = parseTtl(values.ttl);
    const channel = values.channel === undefined ? undefined : validChannel(requiredText(values.channel, '--channel'));
    const info = parseInfo(values.info);
    const secret = loadConfig('token').tokenSecret;
    const token = await signToken({ user, secret, ttlSeconds, channel, info });
    process.stdout.write(`${token}\n`);
    return 0;
  },
};

/** A non-empty string option, or a UsageError naming it. */
function requiredText(value: string | boolean | undefined, name: string): string {
  if (typeof value !== 'string') throw new UsageError(`${name} is required`);
  if (value === '') throw new UsageError(`${name} must not be empty`);
  return value;
}

/** A user id the gateway accepts as `sub` (it refuses a token whose sub it could not store). */
function storableUser(user: string): string {
  if (!isStorableText(user, MAX_USER_BYTES)) {
    throw new UsageError(`--user must be at most ${MAX_USER_BYTES} bytes of text without NUL or lone surrogates`);
  }
  return user;
}

/** A channel name the gateway accepts: a token for any other could never be used. */
function validChannel(channel: string): string {
  if (!isValidChannelName(channel)) throw new UsageError(`--channel ${JSON.stringify(channel.slice(0, 64))} is not a valid channel name`);
  return channel;
}

/** --ttl as whole seconds in 1..MAX_TTL_SECONDS; the default when absent. */
function parseTtl(value: string | boolean | undefined): number {
  if (value === undefined) return DEFAULT_TOKEN_TTL_SECONDS;
  const ttl = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(ttl >= 1 && ttl <= MAX_TTL_SECONDS)) {
    throw new UsageError(
      `--ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got "${String(value)}"`,
    );
  }
  return ttl;
}

/** --info parsed as JSON (undefined when absent); a UsageError naming --info otherwise. */
function parseInfo(value: string | boolean | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(String(value));
  } catch (err) {
    throw new UsageError(`--info must be valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
}
