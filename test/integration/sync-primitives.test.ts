/**
 * Read cursors, unread counts and catch-up (issue 15): `tidings.read` / `tidings.unread` /
 * `tidings.catchup` through the official SDK's `client.rpc`, the same through the HTTP API, a
 * cursor that only moves forward, the user's other connections told at once (badges agree
 * across devices), and a catch-up bounded per channel and in bytes.
 */
import type { Centrifuge } from 'centrifuge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, call, callError } from '../helpers/api.js';
import { connected } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('read cursors and unread counts', () => {
  const stack = new TestStack();
  let port = 0;

  beforeAll(async () => {
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY })).port;
    await stack.worker();
  });
  afterAll(() => stack.close());

  async function publish(channel: string, n: number): Promise<void> {
    for (let i = 1; i <= n; i++) await call(port, 'publish', { channel, data: { i } });
  }

  function messages(client: Centrifuge): unknown[] {
    const got: unknown[] = [];
    client.on('message', (ctx) => got.push(ctx.data));
    return got;
  }

  it('tidings.read moves the cursor forward only, answers the unread count, and tells the other devices', async () => {
    const channel = uniqueChannel('inbox');
    await publish(channel, 5);
    const phone = await connected(wsUrl(port), await token('ann'));
    const laptop = await connected(wsUrl(port), await token('ann'));
    const onPhone = messages(phone);
    const onLaptop = messages(laptop);

    expect(await phone.rpc('tidings.read', { channel, offset: 3 })).toEqual({ data: { offset: 5, read: 3, unread: 2 } });
    await waitFor('the laptop to hear of it', () => onLaptop.length === 1);
    expect(onLaptop[0]).toEqual({ type: 'tidings.read', channel, offset: 5, read: 3, unread: 2 });
    // Backwards is a no-op, past the top is the top.
    expect(await laptop.rpc('tidings.read', { channel, offset: 1 })).toEqual({ data: { offset: 5, read: 3, unread: 2 } });
    expect(await laptop.rpc('tidings.read', { channel, offset: 99 })).toEqual({ data: { offset: 5, read: 5, unread: 0 } });
    await waitFor('the phone to hear of it', () => onPhone.length === 2);
    expect(onPhone.at(-1)).toMatchObject({ read: 5, unread: 0 });
    expect(onLaptop).toHaveLength(1); // never its own
    phone.disconnect();
    laptop.disconnect();
  });

  it('tidings.unread answers per channel, an error object where the caller may not read, and every cursor without names', async () => {
    const a = uniqueChannel('ua');
    const b = uniqueChannel('ub');
    const quiet = uniqueChannel('quiet');
    await publish(a, 4);
    await publish(b, 2);
    const client = await connected(wsUrl(port), await token('bo'));
    await client.rpc('tidings.read', { channel: a, offset: 1 });
    await client.rpc('tidings.read', { channel: b, offset: 2 });
    const secret = `$${uniqueChannel('secret')}`;
    expect(await client.rpc('tidings.unread', { channels: [a, quiet, secret] })).toEqual({
      data: {
        channels: {
          [a]: { offset: 4, read: 1, unread: 3 },
          [quiet]: { offset: 0, read: 0, unread: 0 },
          [secret]: { error: { code: 103, message: 'permission denied' } },
        },
      },
    });
    const all = (await client.rpc('tidings.unread', {})) as { data: { channels: Record<string, unknown> } };
    expect(all.data.channels).toEqual({ [a]: { offset: 4, read: 1, unread: 3 }, [b]: { offset: 2, read: 2, unread: 0 } });
    client.disconnect();
  });

  it('refuses what is not a cursor: anonymous users, bad offsets and channel lists', async () => {
    const channel = uniqueChannel('bad');
    const client = await connected(wsUrl(port), await token('cy'));
    for (const [data, code] of [
      [{ channel, offset: -1 }, 107],
      [{ channel, offset: 'x' }, 107],
      [{ offset: 1 }, 107],
      [{ channel: '', offset: 1 }, 107],
      [{ channel: 'a\u0000b', offset: 1 }, 107],
      [{ channel: '\ud800x', offset: 1 }, 107],
      [{ channel: 'x'.repeat(300), offset: 1 }, 107],
      [{ channel: 42, offset: 1 }, 107],
      [{ channel, offset: 2 ** 60 }, 107],
    ] as const) {
      await expect(client.rpc('tidings.read', data), JSON.stringify(data)).rejects.toMatchObject({ code });
    }
    await expect(client.rpc('tidings.unread', { channels: 'x' })).rejects.toMatchObject({ code: 107 });
    await expect(client.rpc('tidings.unread', { channels: Array.from({ length: 1001 }, (_, i) => `c${i}`) })).rejects.toMatchObject({ code: 106 });
    await expect(client.rpc('tidings.nothing', {})).rejects.toMatchObject({ code: 104 });
    client.disconnect();
    const anonymous = await connected(wsUrl(port), await token(''));
    await expect(anonymous.rpc('tidings.unread', {})).rejects.toMatchObject({ code: 103 });
    anonymous.disconnect();
  });

  it('the HTTP API sets a cursor for a user (whose connections hear of it) and reads unread counts', async () => {
    const channel = uniqueChannel('api');
    await publish(channel, 3);
    const client = await connected(wsUrl(port), await token('dee'));
    const heard = messages(client);
    expect(await call(port, 'read_cursor_set', { user: 'dee', channel, offset: 2 })).toEqual({ offset: 3, read: 2, unread: 1 });
    await waitFor('the connection to hear of it', () => heard.length === 1);
    expect(heard[0]).toEqual({ type: 'tidings.read', channel, offset: 3, read: 2, unread: 1 });
    expect(await call(port, 'unread', { user: 'dee', channels: [channel] })).toEqual({ channels: { [channel]: { offset: 3, read: 2, unread: 1 } } });
    expect(await call(port, 'unread', { user: 'dee' })).toEqual({ channels: { [channel]: { offset: 3, read: 2, unread: 1 } } });
    expect((await callError(port, 'read_cursor_set', { user: 'dee', channel, offset: -5 })).code).toBe(107);
    expect((await callError(port, 'read_cursor_set', { channel, offset: 1 })).code).toBe(107);
    expect((await callError(port, 'unread', { user: 'dee', channels: [''] })).code).toBe(107);
    client.disconnect();
  });

  describe('catch-up across channels', () => {
    type Catchup = { data: { channels: Record<string, { publications?: { offset: number; data: unknown }[]; offset?: number; more?: boolean; unread?: number; epoch?: string; error?: { code: number } }> } };

    it('answers each channel after its offset, at most `limit`, with its top, epoch, more and unread; 103 and 112 in place', async () => {
      const a = uniqueChannel('ca');
      const b = uniqueChannel('cb');
      const quiet = uniqueChannel('cq');
      await publish(a, 5);
      await publish(b, 3);
      const { epoch } = await call<{ epoch: string }>(port, 'history', { channel: a, limit: 0 });
      const client = await connected(wsUrl(port), await token('eve'));
      await client.rpc('tidings.read', { channel: a, offset: 4 });
      const secret = `$${uniqueChannel('cs')}`;
      const got = (await client.rpc('tidings.catchup', {
        channels: { [a]: { offset: 2, epoch }, [b]: { offset: 0 }, [quiet]: {}, [secret]: { offset: 0 } },
        limit: 2,
      })) as Catchup;
      const { channels } = got.data;
      expect(channels[a]).toMatchObject({ offset: 5, epoch, more: true, unread: 1 });
      expect(channels[a]!.publications!.map((p) => [p.offset, p.data])).toEqual([[3, { i: 3 }], [4, { i: 4 }]]);
      expect(channels[b]!.publications!.map((p) => p.offset)).toEqual([1, 2]);
      expect(channels[b]).toMatchObject({ offset: 3, more: true, unread: 3 });
      expect(channels[quiet]).toEqual({ publications: [], offset: 0, epoch: '', more: false, unread: 0 });
      expect(channels[secret]).toEqual({ error: { code: 103, message: 'permission denied' } });
      // The rest of b, from where the first call stopped.
      const rest = (await client.rpc('tidings.catchup', { channels: { [b]: { offset: 2 } } })) as Catchup;
      expect(rest.data.channels[b]).toMatchObject({ more: false, publications: [{ offset: 3, data: { i: 3 } }] });
      // Offsets of another epoch mean nothing: 112 for that channel alone.
      const stale = (await client.rpc('tidings.catchup', { channels: { [a]: { offset: 1, epoch: 'oldepoch' }, [b]: { offset: 3 } } })) as Catchup;
      expect(stale.data.channels[a]).toEqual({ error: { code: 112, message: 'unrecoverable position' } });
      expect(stale.data.channels[b]).toMatchObject({ publications: [], more: false });
      client.disconnect();
    });

    it('stops at the reply byte bound and says more, so the client pages on', async () => {
      const small = wsUrl((await stack.gateway({ TIDINGS_REPLY_MAX_BYTES: String(64 * 1024) })).port);
      const big = uniqueChannel('cbig');
      const after = uniqueChannel('cafter');
      for (let i = 1; i <= 8; i++) await call(port, 'publish', { channel: big, data: { pad: 'x'.repeat(20_000), i } });
      await publish(after, 2);
      const client = await connected(small, await token('fin'));
      const first = (await client.rpc('tidings.catchup', { channels: { [big]: { offset: 0 }, [after]: { offset: 0 } } })) as Catchup;
      const got = first.data.channels[big]!.publications!.map((p) => p.offset);
      expect(got.length).toBeGreaterThanOrEqual(1);
      expect(got.length).toBeLessThan(8);
      expect(first.data.channels[big]!.more).toBe(true);
      expect(first.data.channels[after]).toMatchObject({ publications: [], more: true });
      let offset = got.at(-1)!;
      const all = [...got];
      while (offset < 8) {
        const next = (await client.rpc('tidings.catchup', { channels: { [big]: { offset } } })) as Catchup;
        const page = next.data.channels[big]!.publications!.map((p) => p.offset);
        all.push(...page);
        offset = page.at(-1)!;
      }
      expect(all).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      client.disconnect();
    });

    it('refuses a malformed request (107) and serves the API for a user', async () => {
      const client = await connected(wsUrl(port), await token('gus'));
      for (const data of [
        { channels: ['x'] },
        { channels: { x: 5 } },
        { channels: { x: { offset: -1 } } },
        { channels: { x: { offset: 1, epoch: 7 } } },
        { channels: {}, limit: 0 },
        { channels: { '': {} } },
        { channels: { 'a\u0000b': {} } },
        { channels: { '\udc00': {} } },
      ]) {
        await expect(client.rpc('tidings.catchup', data), JSON.stringify(data)).rejects.toMatchObject({ code: 107 });
      }
      const many = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`c${i}`, {}]));
      await expect(client.rpc('tidings.catchup', { channels: many })).rejects.toMatchObject({ code: 107 });
      client.disconnect();

      const channel = uniqueChannel('capi');
      await publish(channel, 2);
      const viaApi = await call<{ channels: Record<string, unknown> }>(port, 'catchup', { user: 'gus', channels: { [channel]: { offset: 1 }, 'nosuchns:x': {} } });
      expect(viaApi.channels[channel]).toMatchObject({ offset: 2, more: false, unread: 2, publications: [{ offset: 2, data: { i: 2 } }] });
      expect(viaApi.channels['nosuchns:x']).toEqual({ error: { code: 102, message: 'unknown channel' } });
    });
  });
});
