/**
 * Edits and deletes as ordered events (issue 15): API `edit` and `delete` publish a new
 * publication in order, naming the offset they change in its tags, so live subscribers see
 * them; `history` with `latest: true` gives each original at its latest version, deleted ones
 * as tombstones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, call, callError } from '../helpers/api.js';
import { subscribed } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('edits and deletes', () => {
  const stack = new TestStack();
  let port = 0;

  beforeAll(async () => {
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY })).port;
    await stack.worker();
  });
  afterAll(() => stack.close());

  it('are new publications in order that subscribers see, and history latest folds them back', async () => {
    const channel = uniqueChannel('edits');
    const sub = await subscribed(wsUrl(port), await token(), channel);
    for (const text of ['one', 'two', 'three']) await call(port, 'publish', { channel, data: { text } });
    expect(await call(port, 'edit', { channel, offset: 2, data: { text: 'two, edited' } })).toMatchObject({ offset: 4 });
    expect(await call(port, 'edit', { channel, offset: 2, data: { text: 'two, edited again' } })).toMatchObject({ offset: 5 });
    expect(await call(port, 'delete', { channel, offset: 3 })).toMatchObject({ offset: 6 });
    await waitFor('six publications live', () => sub.received.length === 6);
    expect(sub.received.slice(3).map((r) => r.data)).toEqual([{ text: 'two, edited' }, { text: 'two, edited again' }, null]);

    const all = await call<{ publications: { offset: number; tags?: Record<string, string> }[] }>(port, 'history', { channel, limit: -1 });
    expect(all.publications.map((p) => [p.offset, p.tags])).toEqual([
      [1, undefined],
      [2, undefined],
      [3, undefined],
      [4, { tidings_op: 'edit', tidings_of: '2' }],
      [5, { tidings_op: 'edit', tidings_of: '2' }],
      [6, { tidings_op: 'delete', tidings_of: '3' }],
    ]);
    const latest = await call<{ publications: { offset: number; data: unknown; tags?: Record<string, string> }[]; offset: number }>(port, 'history', {
      channel,
      limit: -1,
      latest: true,
    });
    expect(latest.offset).toBe(6);
    expect(latest.publications.map((p) => [p.offset, p.data, p.tags])).toEqual([
      [1, { text: 'one' }, undefined],
      [2, { text: 'two, edited again' }, { tidings_edited: '5' }],
      [3, null, { tidings_deleted: '6' }],
    ]);
    sub.client.disconnect();
  });

  it('refuses a target that is missing, or is itself an edit or a delete (107)', async () => {
    const channel = uniqueChannel('editbad');
    await call(port, 'publish', { channel, data: { a: 1 } });
    await call(port, 'edit', { channel, offset: 1, data: { a: 2 } });
    for (const params of [
      { channel, offset: 9, data: {} },
      { channel, offset: 2, data: {} },
      { channel, offset: 0, data: {} },
      { channel, offset: 1 },
      { offset: 1, data: {} },
    ]) {
      expect((await callError(port, 'edit', params)).code, JSON.stringify(params)).toBe(107);
    }
    expect((await callError(port, 'delete', { channel, offset: 2 })).code).toBe(107);
    expect((await callError(port, 'edit', { channel: 'nosuchns:x', offset: 1, data: {} })).code).toBe(102);
  });
});
