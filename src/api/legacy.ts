/**
 * The legacy single endpoint `POST /api`, which gocent v3 (and other older clients) use
 * (CFG `internal/api/handler_legacy.go`; APICLI gocent `client.go`, `protocol.go`):
 *
 *   request   newline-delimited `{"method": M, "params": {…}, "id"?: N}`, where M is a method
 *             name in any case ("publish", "PRESENCE_STATS") or its number in Centrifugo's
 *             enum (PUBLISH 0, BROADCAST 1, … see LEGACY_METHODS)
 *   response  newline-delimited `{"id"?: N, "result": …}` or `{"id"?: N, "error": {…}}`, one
 *             per command, in order; `id` echoed when given and non-zero (Go's omitempty)
 *
 * Auth, 405, 413 and 503 as the per-method endpoints (one slot for the whole request). An
 * empty body, or a line that is not a command object, is 400 for the whole request, as in
 * Centrifugo. Differences: a method Tidings does not know is a 104 for that command (Go
 * answers 400 for the whole request when a string method is unknown), and a command with no `method` is a 104 rather than Go's zero value, publish.
 */
import type { RouteHandler } from '../http/server.js';
import { nestingExceeds } from '../protocol/codec.js';
import { encodeOutcome, type ApiDispatcher, type Outcome } from './dispatch.js';
import { ApiErrors } from './errors.js';
import { guarded, type Guard } from './handler.js';
import { sendJsonText, sendText } from './io.js';
import { isObject, type Params } from './params.js';

/** Centrifugo's `Command.MethodType` enum, by number. */
const LEGACY_METHODS = [
  'publish',
  'broadcast',
  'unsubscribe',
  'disconnect',
  'presence',
  'presence_stats',
  'history',
  'history_remove',
  'channels',
  'info',
  'rpc',
  'subscribe',
  'refresh',
] as const;

interface LegacyCommand {
  id: number | undefined;
  method: unknown;
  params: unknown;
}

/** The lines of the body as commands, or undefined when one is not a command object. */
function decodeCommands(text: string): LegacyCommand[] | undefined {
  const commands: LegacyCommand[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    // Same depth bound as the client protocol and the other endpoints (./handler.ts).
    if (nestingExceeds(line)) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (!isObject(value)) return undefined;
    const id = value.id ?? undefined;
    if (id !== undefined && (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0)) return undefined;
    commands.push({ id, method: value.method, params: value.params });
  }
  return commands;
}

/** The method name for a legacy method value (name in any case, or enum number). */
export function legacyMethodName(method: unknown): string | undefined {
  if (typeof method === 'number') return LEGACY_METHODS[method];
  if (typeof method === 'string') return method.toLowerCase();
  return undefined;
}

async function runCommand(api: ApiDispatcher, command: LegacyCommand): Promise<string> {
  const name = legacyMethodName(command.method);
  const params: unknown = command.params ?? {};
  let outcome: Outcome;
  if (name === undefined || !(LEGACY_METHODS as readonly string[]).includes(name)) {
    outcome = { ok: false, error: ApiErrors.notFound };
  } else if (!isObject(params)) {
    outcome = { ok: false, error: ApiErrors.badRequest };
  } else {
    outcome = await api.run(name, params as Params);
  }
  const reply = encodeOutcome(outcome);
  return command.id ? `{"id":${command.id},${reply.slice(1)}` : reply;
}

export function legacyEndpoint(api: ApiDispatcher, guard: Guard): RouteHandler {
  return guarded(guard, async (_req, res, body) => {
    const commands = body.length === 0 ? undefined : decodeCommands(body.toString('utf8'));
    if (!commands || commands.length === 0) return sendText(res, 400, 'Bad Request');
    const replies: string[] = [];
    // One after another, in order: a publish then a history in one request see each other.
    for (const command of commands) replies.push(await runCommand(api, command));
    sendJsonText(res, 200, replies.join('\n'));
  });
}
