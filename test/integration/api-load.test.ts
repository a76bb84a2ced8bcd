/**
 * The server HTTP API under load (issue 12): a gateway runs at most TIDINGS_API_MAX_INFLIGHT
 * requests at once, queues TIDINGS_API_QUEUE_MAX more for up to TIDINGS_API_QUEUE_TIMEOUT_MS,
 * and answers anything beyond with 503 and `Retry-After`. Every request ends in a result or
 * a 503; a 503 one published nothing, a result one was committed; none hangs.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, api, request, type ApiResponse } from '../helpers/api.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';
import { within } from '../helpers/wait.js';

const LIMITS = { TIDINGS_API_KEY: API_KEY, TIDINGS_API_MAX_INFLIGHT: '4', TIDINGS_API_QUEUE_MAX: '32' };

function isResult(res: ApiResponse): boolean {
  return res.status === 200 && (res.body as { result?: unknown } | undefined)?.result !== undefined;
}

describe('server API under load', () => {
  const stack = new TestStack();
  let port = 0;
  let db: pg.Client;

  beforeAll(async () => {
    port = (await stack.gateway(LIMITS)).port;
    await stack.worker();
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stack.close();
  });

  it('answers each of 400 concurrent publishes with a result or a 503 with Retry-After; none hangs, none is lost', async () => {
    const channel = uniqueChannel('api-load');
    const responses = await within(
      'an answer to every one of 400 concurrent requests',
      Promise.all(Array.from({ length: 400 }, (_, n) => api(port, 'publish', { channel, data: { n } }))),
      60_000,
    );
    const published = responses.flatMap((res, n) => (isResult(res) ? [n] : []));
    const busy = responses.filter((res) => res.status === 503);
    console.log(`[api-load] 400 concurrent publishes, 4 running + 32 queued: ${published.length} results, ${busy.length} × 503`);
    expect(published.length + busy.length, 'every answer is a result or a 503').toBe(400);
    expect(published.length, 'at least the running and the queued').toBeGreaterThanOrEqual(36);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.every((res) => res.headers.get('retry-after') === '1')).toBe(true);
    const rows = await db.query<{ data: string }>('select data from publications where channel = $1', [channel]);
    const stored = rows.rows.map((row) => (JSON.parse(row.data) as { n: number }).n).sort((a, b) => a - b);
    expect(stored, 'exactly the publishes answered with a result were committed').toEqual(published);
  });

  it('keeps the legacy endpoint under the same bound', async () => {
    const channel = uniqueChannel('api-load-legacy');
    const body = (n: number) => JSON.stringify({ method: 'publish', params: { channel, data: { n } } });
    const responses = await within(
      'an answer to every one of 200 concurrent legacy requests',
      Promise.all(Array.from({ length: 200 }, (_, n) => request(port, '/api', undefined, { raw: body(n) }))),
      60_000,
    );
    const statuses = responses.map((res) => res.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
  });

  it('answers 503 to a request that waited TIDINGS_API_QUEUE_TIMEOUT_MS for a slot', async () => {
    const slow = new TestStack(); // no worker: a publish holds its slot until its timeout
    try {
      const gw = await slow.gateway({ ...LIMITS, TIDINGS_API_MAX_INFLIGHT: '1', TIDINGS_API_QUEUE_TIMEOUT_MS: '300', TIDINGS_PUBLISH_TIMEOUT_MS: '3000' });
      const channel = uniqueChannel('api-queue-timeout');
      const started = performance.now();
      const first = api(gw.port, 'publish', { channel, data: 'holds the slot' });
      const waiting = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const res = await api(gw.port, 'history', { channel });
          return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started };
        }),
      );
      expect(waiting.map((w) => [w.status, w.retryAfter])).toEqual(waiting.map(() => [503, '1']));
      expect(Math.max(...waiting.map((w) => w.ms)), 'refused after the queue timeout, not the publish timeout').toBeLessThan(2500);
      const held = await first;
      expect(held.status).toBe(200); // answered in the end: here error 100, no worker ran it
    } finally {
      await slow.close();
    }
  });
});
