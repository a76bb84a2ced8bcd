/**
 * The legacy single endpoint `POST /api` that gocent v3 uses (PROTOCOL.md F.1): newline-
 * delimited `{"method","params","id"?}` commands in, newline-delimited `{"result"}` /
 * `{"error"}` replies out, in order, echoing `id`. The request bodies below are byte for
 * byte what gocent's `json.Encoder` writes (one command per line, each ending in '\n').
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, request, type RequestOptions } from '../helpers/api.js';
import { subscribed, waitForCount } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';

describe('server API: legacy endpoint (gocent v3)', () => {
  const stack = new TestStack();
  let port = 0;

  beforeAll(async () => {
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY })).port;
    await stack.worker();
  });
  afterAll(() => stack.close());

  /** As gocent sends: Authorization: apikey, one JSON command per line. */
  async function legacy(lines: unknown[], opts: RequestOptions = {}) {
    const raw = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)) + '\n').join('');
    const res = await request(port, '/api', undefined, { auth: 'authorization', raw, ...opts });
    const replies = res.status === 200 ? res.text.split('\n').map((line) => JSON.parse(line) as Record<string, unknown>) : [];
    return { ...res, replies };
  }

  it('runs gocent pipe commands in order and answers one line each', async () => {
    const channel = uniqueChannel('legacy');
    const sub = await subscribed(wsUrl(port), await token('reader'), channel);
    const res = await legacy([
      { method: 'publish', params: { channel, data: { n: 1 } } },
      { method: 'publish', params: { channel, data: { n: 2 } } },
      { method: 'history', params: { channel, limit: -1 } },
      { method: 'presence_stats', params: { channel } },
      { method: 'info', params: null },
    ]);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.replies).toHaveLength(5);
    const [p1, p2, history, stats, info] = res.replies;
    expect(p1).toEqual({ result: { offset: 1, epoch: expect.any(String) } });
    expect(p2).toEqual({ result: { offset: 2, epoch: (p1!.result as { epoch: string }).epoch } });
    expect((history!.result as { publications: { data: unknown }[] }).publications.map((p) => p.data)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(stats).toEqual({ result: { num_clients: 1, num_users: 1 } });
    expect((info!.result as { nodes: unknown[] }).nodes).toHaveLength(1);
    await waitForCount(sub, 2, 'the subscriber');
    sub.client.disconnect();
  });

  it('accepts upper-case and numeric methods, echoes ids, answers errors per command', async () => {
    const channel = uniqueChannel('legacy-enum');
    const res = await legacy([
      { method: 'PUBLISH', params: { channel, data: 'x' }, id: 1 },
      { method: 6, params: { channel, limit: 1 }, id: 2 }, // HISTORY
      { method: 'publish', params: { channel: '', data: 'x' }, id: 3 },
      { method: 10, params: { method: 'anything' }, id: 4 }, // RPC: served, but this gateway has no RPC proxy
      { method: 'no_such_method', params: {}, id: 5 },
      { params: {}, id: 6 },
      { method: 'BROADCAST', params: { channels: [channel], data: 'y' } },
      { method: 9, params: {}, id: 0 }, // INFO; id 0 is not echoed (Go's omitempty)
    ]);
    expect(res.status).toBe(200);
    expect(res.replies).toEqual([
      { id: 1, result: { offset: 1, epoch: expect.any(String) } },
      { id: 2, result: { publications: [{ data: 'x', offset: 1, epoch: expect.any(String) }], epoch: expect.any(String), offset: 1 } },
      { id: 3, error: { code: 107, message: 'bad request' } },
      { id: 4, error: { code: 108, message: 'not available' } },
      { id: 5, error: { code: 104, message: 'not found' } },
      { id: 6, error: { code: 104, message: 'not found' } },
      { result: { responses: [{ result: { offset: 2, epoch: expect.any(String) } }] } },
      { result: { nodes: expect.any(Array) } },
    ]);
  });

  it('answers 400 to an empty body or a line that is not a command, 401 without the key', async () => {
    expect((await request(port, '/api', undefined, { auth: 'authorization', raw: '' })).status).toBe(400);
    expect((await legacy([{ method: 'info' }, '{broken'])).status).toBe(400);
    expect((await legacy(['[1]'])).status).toBe(400);
    expect((await legacy([{ method: 'info', id: 'seven' }])).status).toBe(400);
    const unauthorized = await legacy([{ method: 'info' }], { key: 'wrong' });
    expect({ status: unauthorized.status, text: unauthorized.text }).toEqual({ status: 401, text: '' });
    expect((await legacy([{ method: 'info' }], { auth: 'x-api-key', key: API_KEY })).status).toBe(200);
  });
});
