/**
 * API publish, broadcast and batch (PROTOCOL.md F.2): results carry the committed offset and
 * epoch; subscribers receive what the API published (data and tags); idempotency_key makes a
 * repeat return the first result without a second publication, also after the worker that
 * stored the first one was replaced; and every documented error.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_COMMANDS, MAX_BATCH_REPLY_BYTES } from '../../src/api/batch.js';
import type { RunningWorker } from '../../src/app/worker.js';
import { call, callError, namespacesFile } from '../helpers/api.js';
import { API_KEY } from '../helpers/api.js';
import { subscribed, waitForCount } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';

interface PublishResult {
  offset: number;
  epoch: string;
}

describe('server API: publish, broadcast, batch', () => {
  const stack = new TestStack();
  let port = 0;
  let worker: RunningWorker;
  let db: pg.Client;

  beforeAll(async () => {
    const config = await namespacesFile({ namespaces: { chat: {} } });
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_CONFIG: config })).port;
    worker = await stack.worker({ TIDINGS_CONFIG: config });
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stack.close();
  });

  async function rows(channel: string): Promise<{ offset: number; data: string; tags: string | null; idempotency_key: string | null }[]> {
    const result = await db.query(
      'select "offset"::int as offset, data, tags, idempotency_key from publications where channel = $1 order by "offset"',
      [channel],
    );
    return result.rows;
  }

  it('publishes through the queue: offsets 1, 2, 3 in one epoch, delivered with data and tags', async () => {
    const channel = uniqueChannel('pub');
    const sub = await subscribed(wsUrl(port), await token('reader'), channel);
    const tags = { kind: 'note', lang: 'en' };
    const results = [
      await call<PublishResult>(port, 'publish', { channel, data: { n: 1 }, tags }),
      await call<PublishResult>(port, 'publish', { channel, data: 'two' }),
      await call<PublishResult>(port, 'publish', { channel, data: null }),
    ];
    expect(results.map((r) => r.offset)).toEqual([1, 2, 3]);
    expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
    expect(results[0]!.epoch).toMatch(/^[a-z]{8}$/);

    await waitForCount(sub, 3, 'the subscriber');
    expect(sub.received.map((r) => r.data)).toEqual([{ n: 1 }, 'two', null]);
    // The result is given after the commit: the rows are there, tags as JSON text.
    const stored = await rows(channel);
    expect(stored.map((r) => [r.offset, r.data, r.tags])).toEqual([
      [1, '{"n":1}', JSON.stringify(tags)],
      [2, '"two"', null],
      [3, 'null', null],
    ]);
    const history = await call<{ publications: { tags?: unknown }[] }>(port, 'history', { channel, limit: 1 });
    expect(history.publications[0]!.tags).toEqual(tags);
    sub.client.disconnect();
  });

  it('refuses bad publishes with 107 / 102 / 108', async () => {
    const channel = uniqueChannel('bad');
    expect((await callError(port, 'publish', { channel: '', data: 1 })).code).toBe(107);
    expect((await callError(port, 'publish', { data: 1 })).code).toBe(107);
    expect((await callError(port, 'publish', { channel: 'has space', data: 1 })).code).toBe(107);
    expect((await callError(port, 'publish', { channel })).code).toBe(107); // no data
    expect((await callError(port, 'publish', { channel, b64data: 'aGVsbG8=' })).code).toBe(107);
    expect((await callError(port, 'publish', { channel, data: 1, tags: { n: 1 } })).code).toBe(107);
    expect((await callError(port, 'publish', { channel, data: 1, idempotency_key: 5 })).code).toBe(107);
    expect((await callError(port, 'publish', { channel: 'nosuchns:x', data: 1 })).code).toBe(102);
    expect((await callError(port, 'publish', { channel, data: 1, version: 3 })).code).toBe(108);
    expect(await callError(port, 'publish', { channel: '', data: 1 })).toEqual({ code: 107, message: 'bad request' });
    expect(await rows(channel)).toEqual([]);
    // Accepted no-ops: every publication is stored, deltas are not used.
    expect((await call<PublishResult>(port, 'publish', { channel, data: 1, skip_history: true, delta: true })).offset).toBe(1);
  });

  it('idempotency_key: a repeat returns the first result and stores nothing', async () => {
    const channel = uniqueChannel('idem');
    const first = await call<PublishResult>(port, 'publish', { channel, data: { v: 1 }, idempotency_key: 'k1' });
    const repeat = await call<PublishResult>(port, 'publish', { channel, data: { v: 2 }, idempotency_key: 'k1' });
    expect(repeat).toEqual(first);
    const other = await call<PublishResult>(port, 'publish', { channel, data: { v: 3 }, idempotency_key: 'k2' });
    expect(other.offset).toBe(first.offset + 1);
    // Two repeats in flight together are one publication too.
    const together = await Promise.all([1, 2].map(() => call<PublishResult>(port, 'publish', { channel, data: 0, idempotency_key: 'k3' })));
    expect(together[0]).toEqual(together[1]);
    // The key is scoped to the channel.
    const elsewhere = await call<PublishResult>(port, 'publish', { channel: uniqueChannel('idem2'), data: 1, idempotency_key: 'k1' });
    expect(elsewhere.offset).toBe(1);

    const stored = await rows(channel);
    expect(stored.map((r) => [r.offset, r.data, r.idempotency_key])).toEqual([
      [1, '{"v":1}', 'k1'],
      [2, '{"v":3}', 'k2'],
      [3, '0', 'k3'],
    ]);
  });

  it('idempotency_key holds after the worker is replaced', async () => {
    const channel = uniqueChannel('idem-restart');
    const first = await call<PublishResult>(port, 'publish', { channel, data: 'once', idempotency_key: 'restart' });
    await worker.close();
    worker = await stack.worker();
    const repeat = await call<PublishResult>(port, 'publish', { channel, data: 'twice', idempotency_key: 'restart' });
    expect(repeat).toEqual(first);
    const next = await call<PublishResult>(port, 'publish', { channel, data: 'next' });
    expect(next.offset).toBe(first.offset + 1);
    expect((await rows(channel)).map((r) => r.data)).toEqual(['"once"', '"next"']);
  });

  it('broadcasts to every channel, answering each in request order', async () => {
    const [a, b] = [uniqueChannel('bc'), uniqueChannel('bc')];
    await call(port, 'publish', { channel: b, data: 'earlier' });
    const result = await call<{ responses: unknown[] }>(port, 'broadcast', {
      channels: [a, b, '', 'nosuchns:x', `chat:${a}`],
      data: { hello: true },
      tags: { t: '1' },
    });
    expect(result.responses).toEqual([
      { result: { offset: 1, epoch: expect.any(String) } },
      { result: { offset: 2, epoch: expect.any(String) } },
      { error: { code: 107, message: 'bad request' } },
      { error: { code: 102, message: 'unknown channel' } },
      { result: { offset: 1, epoch: expect.any(String) } },
    ]);
    expect((await rows(a))[0]).toMatchObject({ data: '{"hello":true}', tags: '{"t":"1"}' });
    expect((await callError(port, 'broadcast', { channels: [], data: 1 })).code).toBe(107);
    expect((await callError(port, 'broadcast', { data: 1 })).code).toBe(107);
    expect((await callError(port, 'broadcast', { channels: [a], b64data: 'eA==' })).code).toBe(107);
  });

  it('runs a batch in order, or in parallel, one reply per command', async () => {
    const channel = uniqueChannel('batch');
    const result = await call<{ replies: unknown[] }>(port, 'batch', {
      commands: [
        { publish: { channel, data: 1 } },
        { publish: { channel, data: 2 } },
        { history: { channel, limit: -1 } },
        { publish: { channel: '', data: 3 } },
        { no_such_method: {} },
        { batch: { commands: [] } },
        'not a command',
        { presence_stats: { channel } },
      ],
    });
    expect(result.replies).toEqual([
      { publish: { offset: 1, epoch: expect.any(String) } },
      { publish: { offset: 2, epoch: expect.any(String) } },
      { history: { publications: [{ data: 1, offset: 1, epoch: expect.any(String) }, { data: 2, offset: 2 }], epoch: expect.any(String), offset: 2 } },
      { error: { code: 107, message: 'bad request' } },
      { error: { code: 104, message: 'not found' } },
      { error: { code: 104, message: 'not found' } },
      { error: { code: 107, message: 'bad request' } },
      { presence_stats: { num_clients: 0, num_users: 0 } },
    ]);

    const channels = Array.from({ length: 5 }, () => uniqueChannel('pbatch'));
    const parallel = await call<{ replies: { publish: PublishResult }[] }>(port, 'batch', {
      parallel: true,
      commands: channels.map((c) => ({ publish: { channel: c, data: c } })),
    });
    expect(parallel.replies.map((r) => r.publish.offset)).toEqual([1, 1, 1, 1, 1]);
    expect((await call<{ replies: unknown[] }>(port, 'batch', { commands: [] })).replies).toEqual([]);
    expect((await callError(port, 'batch', {})).code).toBe(107);
  });

  it('attack: a batch is bounded in commands and in reply bytes, and says which commands it did not run', async () => {
    const channel = uniqueChannel('bbound');
    const tooMany = Array.from({ length: MAX_BATCH_COMMANDS + 1 }, () => ({ presence_stats: { channel } }));
    expect((await callError(port, 'batch', { commands: tooMany })).code).toBe(107);
    expect((await call<{ replies: unknown[] }>(port, 'batch', { commands: tooMany.slice(1) })).replies).toHaveLength(MAX_BATCH_COMMANDS);

    // Each history reply carries one ~50 KB publication: the bound is passed after about 84.
    await call(port, 'publish', { channel, data: 'x'.repeat(50_000) });
    for (const parallel of [false, true]) {
      const { replies } = await call<{ replies: Record<string, unknown>[] }>(port, 'batch', {
        parallel,
        commands: Array.from({ length: 120 }, () => ({ history: { channel, limit: 1 } })),
      });
      expect(replies).toHaveLength(120);
      const answered = replies.filter((r) => 'history' in r).length;
      expect(answered).toBeGreaterThanOrEqual(Math.floor(MAX_BATCH_REPLY_BYTES / 50_100));
      expect(answered).toBeLessThan(120);
      const refused = replies.filter((r) => 'error' in r);
      expect(refused).toHaveLength(120 - answered);
      expect(new Set(refused.map((r) => JSON.stringify(r)))).toEqual(new Set(['{"error":{"code":106,"message":"limit exceeded"}}']));
      if (!parallel) expect(replies.slice(answered).every((r) => 'error' in r)).toBe(true);
    }
  });
});
