/**
 * Read cursors and unread counts (issue 15): `tidings.read` / `tidings.unread` through the
 * official SDK's `client.rpc`, the same through the HTTP API, a cursor that only moves
 * forward, and the user's other connections told at once (badges agree across devices).
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
});
