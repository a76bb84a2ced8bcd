/**
 * The method table and the one place where a method's outcome is decided: a result as
 * JSON text, or an API error (STYLE habit 7: mapped here, logged here when unexpected).
 * The per-method endpoints, `batch` and the legacy endpoint all run methods through it.
 */
import { metrics } from '../observability/metrics.js';
import { runBatch, type Outcome } from './batch.js';
import { resultJson, type ApiContext, type ApiMethod } from './context.js';
import { ApiError, ApiErrors, apiErrorOf, isExpectedError } from './errors.js';
import { history, historyRemove } from './history.js';
import { channels, info } from './nodes.js';
import type { Params } from './params.js';
import { presence, presenceStats } from './presence.js';
import { broadcast, publish } from './publish.js';
import { rpc } from './rpc.js';
import { deletePublication, edit } from './edits.js';
import { catchup, readCursorSet, unread } from './sync.js';
import { disconnect, refresh, subscribe, unsubscribe } from './users.js';
import { webhookDeadLetters } from './webhooks.js';
import { channelSearch, ingestFailed, queueStats, workers } from './inspect.js';

export type { Outcome };

const METHODS: Record<string, ApiMethod> = {
  publish,
  broadcast,
  subscribe,
  unsubscribe,
  disconnect,
  presence,
  presence_stats: presenceStats,
  history,
  history_remove: historyRemove,
  rpc,
  refresh,
  edit,
  delete: deletePublication,
  read_cursor_set: readCursorSet,
  unread,
  catchup,
  channels,
  info,
  webhook_dead_letters: webhookDeadLetters,
  channel_search: channelSearch,
  queue_stats: queueStats,
  ingest_failed: ingestFailed,
  workers,
};

/** Every method name served at `POST /api/<name>`. */
export const API_METHOD_NAMES: readonly string[] = [...Object.keys(METHODS), 'batch'];

function isMethod(name: string): boolean {
  return Object.hasOwn(METHODS, name);
}

export class ApiDispatcher {
  constructor(private readonly ctx: ApiContext) {}

  /** Runs a method; never rejects. `batch` is only allowed at the top level. */
  async run(method: string, params: Params): Promise<Outcome> {
    try {
      const json =
        method === 'batch'
          ? await runBatch(params, isMethod, (m, p) => this.run(m, p))
          : resultJson(await this.method(method)(this.ctx, params));
      metrics.apiCommands.inc({ method, result: 'ok' });
      return { ok: true, json };
    } catch (err) {
      if (isExpectedError(err)) this.ctx.log.debug({ method, err }, 'api method refused');
      else this.ctx.log.error({ err, method }, 'api method failed');
      const error = apiErrorOf(err);
      // Only known names reach here (routes, batch and legacy check them), so labels stay bounded.
      metrics.apiCommands.inc({ method, result: String(error.code) });
      return { ok: false, error };
    }
  }

  private method(name: string): ApiMethod {
    if (!isMethod(name)) throw new ApiError(ApiErrors.notFound, name);
    return METHODS[name]!;
  }
}

/** A reply of the per-method and legacy endpoints: `{"result":…}` or `{"error":{code,message}}`. */
export function encodeOutcome(outcome: Outcome): string {
  return outcome.ok ? `{"result":${outcome.json}}` : `{"error":${JSON.stringify(outcome.error)}}`;
}
