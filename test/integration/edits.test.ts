/**
 * Edits and deletes as ordered events (issue 15): API `edit` and `delete` publish a new
 * publication in order, naming the offset they change in its tags, so live subscribers see
 * them; `history` with `latest: true` gives each original at its latest version, deleted ones
 * as tombstones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, call, callError, namespacesFile } from '../helpers/api.js';
import { connected, subscribed } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('edits and deletes', () => {
  const stack = new TestStack();
  let port = 0;

  beforeAll(async () => {
    const config = await namespacesFile({
      namespaces: { own: { client_edits: 'own' }, any: { client_edits: 'any' }, ro: { client_edits: 'any', publish: 'none' } },
    });
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_CONFIG: config })).port;
    await stack.worker({ TIDINGS_CONFIG: config });
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

  it('from a client: its author edits and deletes in an `own` namespace, others get 103', async () => {
    const channel = `own:${uniqueChannel('c')}`;
    const ann = await connected(wsUrl(port), await token('ann'));
    const bob = await connected(wsUrl(port), await token('bob'));
    const watcher = await subscribed(wsUrl(port), await token('eve'), channel);
    await ann.publish(channel, { text: 'hi' });
    await bob.publish(channel, { text: 'yo' });
    await call(port, 'publish', { channel, data: { text: 'from the backend' } });

    expect(await ann.rpc('tidings.edit', { channel, offset: 1, data: { text: 'hi!' } })).toEqual({ data: { offset: 4, epoch: expect.any(String) } });
    await expect(ann.rpc('tidings.edit', { channel, offset: 2, data: { text: 'not yours' } })).rejects.toMatchObject({ code: 103 });
    await expect(bob.rpc('tidings.delete', { channel, offset: 1 })).rejects.toMatchObject({ code: 103 });
    // A publication of the backend has no author among the clients.
    await expect(ann.rpc('tidings.delete', { channel, offset: 3 })).rejects.toMatchObject({ code: 103 });
    expect(await bob.rpc('tidings.delete', { channel, offset: 2 })).toMatchObject({ data: { offset: 5 } });

    await waitFor('five publications live', () => watcher.received.length === 5);
    expect(watcher.received.slice(3).map((r) => [r.offset, r.data, r.tags])).toEqual([
      [4, { text: 'hi!' }, { tidings_op: 'edit', tidings_of: '1' }],
      [5, null, { tidings_op: 'delete', tidings_of: '2' }],
    ]);
    const latest = await call<{ publications: { offset: number; data: unknown }[] }>(port, 'history', { channel, limit: -1, latest: true });
    expect(latest.publications.map((p) => [p.offset, p.data])).toEqual([
      [1, { text: 'hi!' }],
      [2, null],
      [3, { text: 'from the backend' }],
    ]);
    for (const c of [ann, bob, watcher.client]) c.disconnect();
  });

  it('from a client: `any` lets whoever may publish change any publication; the default and `publish: none` refuse', async () => {
    const anyChannel = `any:${uniqueChannel('c')}`;
    const closed = uniqueChannel('noedits');
    const readOnly = `ro:${uniqueChannel('c')}`;
    for (const channel of [anyChannel, closed, readOnly]) await call(port, 'publish', { channel, data: { n: 1 } });
    const ann = await connected(wsUrl(port), await token('ann'));
    expect(await ann.rpc('tidings.edit', { channel: anyChannel, offset: 1, data: { n: 2 } })).toMatchObject({ data: { offset: 2 } });
    expect(await ann.rpc('tidings.delete', { channel: anyChannel, offset: 1 })).toMatchObject({ data: { offset: 3 } });
    await expect(ann.rpc('tidings.edit', { channel: closed, offset: 1, data: {} })).rejects.toMatchObject({ code: 103 });
    await expect(ann.rpc('tidings.delete', { channel: readOnly, offset: 1 })).rejects.toMatchObject({ code: 103 });
    ann.disconnect();
  });

  it('from a client: malformed, missing and hostile requests are 107 and change nothing', async () => {
    const channel = `any:${uniqueChannel('c')}`;
    await call(port, 'publish', { channel, data: { n: 1 } });
    await call(port, 'edit', { channel, offset: 1, data: { n: 2 } });
    const ann = await connected(wsUrl(port), await token('ann'));
    const bad: [string, unknown][] = [
      ['tidings.edit', { channel, offset: 1 }],
      ['tidings.edit', { channel, data: {} }],
      ['tidings.edit', { channel, offset: 0, data: {} }],
      ['tidings.edit', { channel, offset: -1, data: {} }],
      ['tidings.edit', { channel, offset: 1.5, data: {} }],
      ['tidings.edit', { channel, offset: '1', data: {} }],
      ['tidings.edit', { channel, offset: 2 ** 60, data: {} }],
      ['tidings.edit', { channel, offset: 99, data: {} }],
      ['tidings.edit', { channel, offset: 2, data: {} }],
      ['tidings.delete', { channel, offset: 2 }],
      ['tidings.delete', { channel: '', offset: 1 }],
      ['tidings.delete', { channel: 'x'.repeat(1000), offset: 1 }],
      ['tidings.delete', { channel: 'any:a\u0000b', offset: 1 }],
      ['tidings.delete', { channel: 7, offset: 1 }],
      ['tidings.delete', null],
      ['tidings.delete', 'any:x'],
    ];
    for (const [method, data] of bad) {
      await expect(ann.rpc(method, data), `${method} ${JSON.stringify(data)?.slice(0, 80)}`).rejects.toMatchObject({ code: 107 });
    }
    const anonymous = await connected(wsUrl(port), await token(''));
    await expect(anonymous.rpc('tidings.edit', { channel, offset: 1, data: {} })).rejects.toMatchObject({ code: 103 });
    const history = await call<{ offset: number }>(port, 'history', { channel, limit: 0 });
    expect(history.offset, 'nothing was published by the refused calls').toBe(2);
    ann.disconnect();
    anonymous.disconnect();
  });
});
