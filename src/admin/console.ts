/**
 * The console's pages and actions. Every read and every change goes through the server API's
 * dispatcher (src/api/dispatch.ts), the very code `POST /api/<method>` runs: the session
 * stands in for the API key, nothing else differs, so the console can do nothing the API
 * cannot and validates nothing twice. What the pages add is bounded input (each field has a
 * length, each number a range: 400 otherwise) and escaped output.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiDispatcher } from '../api/dispatch.js';
import type { ApiErrorBody } from '../api/errors.js';
import { isValidChannelName, MAX_CHANNEL_BYTES } from '../channels/names.js';
import type { NodeInfo } from '../cluster/registry.js';
import type { WorkerInfo } from '../cluster/workers.js';
import type { PartitionStats } from '../ingest/client.js';
import type { FailedJob } from '../ingest/stats.js';
import type { Logger } from '../observability/logger.js';
import type { DeadLetter } from '../webhooks/dead-letters.js';
import {
  channelPage,
  channelsPage,
  type ChannelHit,
  type ChannelView,
  type Publication,
} from './channel-pages.js';
import { BadInput, field, redirect, sendHtml } from './http.js';
import { href } from './html.js';
import { deadLettersPage, errorPage, nodesPage, queuesPage, type DeadLetterView } from './pages.js';

/** Publications per page of a channel's history; failed jobs and channels per page. */
const HISTORY_PAGE = 20;
const FAILED_PAGE = 20;
const CHANNELS_PAGE = 50;
const WEBHOOK_DEAD_LETTERS = 50;
/** Presence lists are shown up to this many connections (the counts always). */
const PRESENCE_LIST_MAX = 100;
/** A publication's data as typed in the form, in characters. */
const MAX_DATA_CHARS = 65_536;

/** An API method's error, as the console shows it. */
export class ApiFailure extends Error {
  override name = 'ApiFailure';
  constructor(readonly error: ApiErrorBody) {
    super(error.message);
  }

  /** 400 for what the request asked wrong, 404 for an unknown namespace, else 500. */
  get status(): number {
    if (this.error.code === 102) return 404;
    return this.error.code === 107 || this.error.code === 108 ? 400 : 500;
  }
}

/** What a page handler gets once the session was checked. */
export interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  csrf: string;
}

export class Console {
  constructor(
    private readonly api: Pick<ApiDispatcher, 'run'>,
    private readonly log: Logger,
  ) {}

  /** Runs an API method; its result parsed, or ApiFailure. */
  async call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const outcome = await this.api.run(method, params);
    if (!outcome.ok) throw new ApiFailure(outcome.error);
    return JSON.parse(outcome.json) as T;
  }

  async nodes(r: Request): Promise<void> {
    const [info, workers] = await Promise.all([
      this.call<{ nodes: NodeInfo[] }>('info'),
      this.call<{ workers: WorkerInfo[] }>('workers'),
    ]);
    sendHtml(r.res, 200, nodesPage(r.csrf, info.nodes, workers.workers));
  }

  async queues(r: Request): Promise<void> {
    const stats = await this.call<{ partitions: PartitionStats[] }>('queue_stats');
    sendHtml(r.res, 200, queuesPage(r.csrf, stats.partitions));
  }

  async deadLetters(r: Request): Promise<void> {
    const partition = intParam(r.query, 'partition', 1023);
    const offset = intParam(r.query, 'offset', 10_000) ?? 0;
    const [stats, webhooks] = await Promise.all([
      this.call<{ partitions: PartitionStats[] }>('queue_stats'),
      this.call<{ events: DeadLetter[]; total: number }>('webhook_dead_letters', {
        limit: WEBHOOK_DEAD_LETTERS,
      }).catch(shownAsError),
    ]);
    const view: DeadLetterView = { webhooks, partitions: stats.partitions };
    if (partition !== undefined) {
      const failed = await this.call<{ jobs: FailedJob[]; total: number }>('ingest_failed', {
        partition,
        offset,
        limit: FAILED_PAGE,
      });
      view.failed = { partition, offset, pageSize: FAILED_PAGE, ...failed };
    }
    sendHtml(r.res, 200, deadLettersPage(r.csrf, view));
  }

  async channels(r: Request): Promise<void> {
    const prefix = field(r.query, 'prefix', MAX_CHANNEL_BYTES) ?? '';
    const after = field(r.query, 'after', MAX_CHANNEL_BYTES);
    const found = await this.call<{ channels: ChannelHit[]; next: string }>('channel_search', {
      prefix,
      after,
      limit: CHANNELS_PAGE,
    });
    sendHtml(r.res, 200, channelsPage(r.csrf, prefix, found.channels, found.next));
  }

  async channel(r: Request): Promise<void> {
    const channel = channelParam(r.query, 'name');
    const before = intParam(r.query, 'before', Number.MAX_SAFE_INTEGER);
    const [history, presence] = await Promise.all([this.history(channel, before), this.presence(channel)]);
    const view: ChannelView = { channel, ...history, presence, notice: noticeOf(r.query) };
    sendHtml(r.res, 200, channelPage(r.csrf, view));
  }

  /** POST /admin/publish: the API's `publish`, then back to the channel, which shows the offset. */
  async publish(r: Request, form: URLSearchParams): Promise<void> {
    const channel = channelParam(form, 'channel');
    const text = field(form, 'data', MAX_DATA_CHARS);
    if (text === undefined || text.trim() === '') throw new BadInput('data required');
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new BadInput('data is not valid JSON');
    }
    const result = await this.call<{ offset: number }>('publish', { channel, data });
    redirect(r.res, href('/admin/channel', { name: channel, published: result.offset }));
  }

  async removeHistory(r: Request, form: URLSearchParams): Promise<void> {
    const channel = channelParam(form, 'channel');
    await this.call('history_remove', { channel });
    redirect(r.res, href('/admin/channel', { name: channel, removed: 1 }));
  }

  /** A page failed: BadInput and API errors are the request's fault (4xx), the rest ours (500, logged). */
  fail(res: ServerResponse, csrf: string | undefined, err: unknown): void {
    if (res.headersSent) return void res.end();
    if (err instanceof BadInput) return sendHtml(res, 400, errorPage(csrf, 'Bad request', err.message));
    if (err instanceof ApiFailure) return sendHtml(res, err.status, errorPage(csrf, 'Refused', err.message));
    this.log.error({ err }, 'admin page failed');
    sendHtml(res, 500, errorPage(csrf, 'Error', 'Something went wrong; the log has the details.'));
  }

  private async history(channel: string, before: number | undefined) {
    const params = {
      channel,
      limit: HISTORY_PAGE,
      reverse: true,
      since: before === undefined ? undefined : { offset: before },
    };
    try {
      const page = await this.call<{ publications: Publication[]; epoch: string; offset: number }>(
        'history',
        params,
      );
      const last = page.publications[page.publications.length - 1];
      const older =
        page.publications.length === HISTORY_PAGE && last && last.offset > 1 ? last.offset : undefined;
      return { epoch: page.epoch, top: page.offset, publications: page.publications, older };
    } catch (err) {
      // History off for the namespace (108): the rest of the page still has something to say.
      if (!(err instanceof ApiFailure) || err.status === 404) throw err;
      return {
        epoch: '',
        top: 0,
        publications: [],
        older: undefined,
        historyError: `History: ${err.message}`,
      };
    }
  }

  private async presence(channel: string): Promise<ChannelView['presence']> {
    try {
      const stats = await this.call<{ num_clients: number; num_users: number }>('presence_stats', {
        channel,
      });
      if (stats.num_clients > PRESENCE_LIST_MAX) return { clients: [], users: stats.num_users };
      const list = await this.call<{ presence: Record<string, { client: string; user: string }> }>(
        'presence',
        { channel },
      );
      return { clients: Object.values(list.presence), users: stats.num_users };
    } catch (err) {
      if (!(err instanceof ApiFailure) || err.status === 404) throw err;
      return { error: `Presence: ${err.message}` };
    }
  }
}

function shownAsError(err: unknown): { error: string } {
  if (err instanceof ApiFailure) return { error: err.message };
  throw err;
}

/** A channel name from a query or form: present, and a name the API would take, else 400. */
export function channelParam(params: URLSearchParams, name: string): string {
  const channel = field(params, name, MAX_CHANNEL_BYTES);
  if (!channel) throw new BadInput(`${name} required`);
  if (!isValidChannelName(channel)) throw new BadInput(`${name} is not a valid channel name`);
  return channel;
}

/** A whole number within [0, max], or undefined when absent; anything else is 400. */
function intParam(params: URLSearchParams, name: string, max: number): number | undefined {
  const text = field(params, name, 16);
  if (text === undefined || text === '') return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value > max)
    throw new BadInput(`${name} must be a whole number from 0 to ${max}`);
  return value;
}

/** The notice after an action; built from numbers only, so nothing from the address is echoed. */
function noticeOf(query: URLSearchParams): string | undefined {
  const published = intParam(query, 'published', Number.MAX_SAFE_INTEGER);
  if (published !== undefined) return `Published at offset ${published}.`;
  return query.get('removed') === '1' ? 'History removed.' : undefined;
}
