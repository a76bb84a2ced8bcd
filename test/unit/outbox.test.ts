/**
 * src/gateway/outbox.ts: frames coalesced per tick, '\n' joins, text frames only, the byte
 * bound for live pushes, pacing through writable().
 *
 * Why a fake socket for most of this (STYLE habit 13): what the outbox decides depends on
 * the socket's `bufferedAmount`, and a real socket cannot be made to hold a given number of
 * unsent bytes on demand (the kernel buffers take what they take). The fake records each
 * send() and lets a test set bufferedAmount. One test sends through a real `ws` pair on
 * loopback, to show that what the fake records is what a client receives: one text message.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FlushScheduler, Outbox } from '../../src/gateway/outbox.js';

class FakeSocket {
  bufferedAmount = 0;
  readonly sent: { payload: Buffer | string; binary: boolean | undefined }[] = [];

  send(payload: Buffer | string, opts: { binary?: boolean }): void {
    this.sent.push({ payload, binary: opts.binary });
  }

  /** The messages sent so far, as text. */
  get texts(): string[] {
    return this.sent.map((s) => s.payload.toString());
  }
}

function outbox(maxBytes = 1024, scheduler = new FlushScheduler()) {
  const socket = new FakeSocket();
  return { socket, box: new Outbox(socket as unknown as WebSocket, scheduler, maxBytes) };
}

/** The scheduler flushes on setImmediate: after this, the tick's frames have gone out. */
const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether the promise has settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return settled;
}

describe('Outbox coalescing', () => {
  it('sends the frames of one tick as one message joined with newlines', async () => {
    const { socket, box } = outbox();
    box.push('{"id":1}');
    box.push(Buffer.from('{"push":2}'));
    box.push('{"id":3}');
    expect(socket.sent, 'nothing leaves before the tick ends').toEqual([]);
    await nextTick();
    expect(socket.texts).toEqual(['{"id":1}\n{"push":2}\n{"id":3}']);
  });

  it('joins strings as a string, and sends a lone frame as it is (the hub encodes a push once)', async () => {
    const { socket, box } = outbox();
    box.push('a');
    box.push('b');
    await nextTick();
    const shared = Buffer.from('{"push":1}');
    box.push(shared);
    await nextTick();
    expect(socket.sent[0]!.payload).toBe('a\nb');
    expect(socket.sent[1]!.payload, 'the very same Buffer, not a copy').toBe(shared);
  });

  it('sends every message as a text frame, Buffers included', async () => {
    const { socket, box } = outbox();
    box.push(Buffer.from('x'));
    await nextTick();
    box.push(Buffer.from('y'));
    box.push('z');
    await nextTick();
    box.push('w');
    await nextTick();
    expect(socket.sent.map((s) => s.binary)).toEqual([false, false, false]);
  });

  it('flushes every outbox marked during a tick once, in one pass', async () => {
    const scheduler = new FlushScheduler();
    const one = outbox(1024, scheduler);
    const two = outbox(1024, scheduler);
    one.box.push('1a');
    two.box.push('2a');
    one.box.push('1b');
    await nextTick();
    expect([one.socket.texts, two.socket.texts]).toEqual([['1a\n1b'], ['2a']]);
  });

  it('flushNow writes at once; close drops what is queued and accepts nothing more', async () => {
    const { socket, box } = outbox();
    box.push('reply');
    box.flushNow();
    expect(socket.texts).toEqual(['reply']);
    box.push('lost');
    box.close();
    expect(box.push('after close')).toBe(true);
    await nextTick();
    expect(socket.texts).toEqual(['reply']);
  });

  it('reaches a real client as one text message', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    try {
      const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
      await new Promise((resolve) => server.once('listening', resolve));
      const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const received = new Promise<{ text: string; isBinary: boolean }>((resolve) =>
        client.once('message', (data, isBinary) => resolve({ text: String(data), isBinary })),
      );
      const box = new Outbox(await accepted, new FlushScheduler(), 1024);
      box.push(Buffer.from('{"push":{"channel":"a"}}'));
      box.push('{"id":1}');
      expect(await received).toEqual({ text: '{"push":{"channel":"a"}}\n{"id":1}', isBinary: false });
      client.close();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('Outbox byte bound', () => {
  it('refuses a live push once what the client owes would pass maxBytes', () => {
    const { box } = outbox(100);
    expect(box.push('x'.repeat(60))).toBe(true);
    expect(box.push('x'.repeat(40)), 'exactly at the bound').toBe(true);
    expect(box.push('x')).toBe(false);
  });

  it('counts the bytes in the socket buffer, and bytes rather than characters', () => {
    const { socket, box } = outbox(100);
    socket.bufferedAmount = 90;
    expect(box.push('é'.repeat(5)), '10 bytes').toBe(true);
    expect(box.push('y')).toBe(false);
    expect(box.pending()).toBe(90 + 10 + 1);
  });

  it('does not hold a paced reply against the live pushes after it', async () => {
    const { socket, box } = outbox(100);
    expect(box.push('r'.repeat(1000), false), 'a paced reply is never refused').toBe(true);
    expect(box.push('x'.repeat(100))).toBe(true);
    expect(box.push('x')).toBe(false);
    await nextTick();
    socket.bufferedAmount = 1000; // the reply is still in the socket's buffer
    expect(box.push('x'.repeat(100)), 'nor while it waits in the socket buffer').toBe(true);
  });

  it('counts paced bytes only while they are unsent', async () => {
    const { socket, box } = outbox(100);
    box.push('r'.repeat(1000), false);
    await nextTick();
    socket.bufferedAmount = 0; // the client read the reply
    expect(box.push('x'.repeat(100))).toBe(true);
    await nextTick();
    socket.bufferedAmount = 100; // and not the live push
    expect(box.push('x')).toBe(false);
  });
});

describe('Outbox.writable', () => {
  it('resolves at once while the client owes no more than maxBytes', async () => {
    const { socket, box } = outbox(100);
    socket.bufferedAmount = 100;
    expect(await settlesWithin(box.writable(), 5)).toBe(true);
  });

  it('waits until the client has read enough, with one poll shared by every waiter', async () => {
    const { socket, box } = outbox(100);
    socket.bufferedAmount = 500;
    const first = box.writable();
    expect(box.writable(), 'the same wait').toBe(first);
    expect(await settlesWithin(first, 50), 'the client has not read').toBe(false);
    socket.bufferedAmount = 50;
    expect(await settlesWithin(first, 1000), 'writable within a poll interval of the read').toBe(true);
  });

  it('resolves when the outbox closes, so a paced producer re-checks its state', async () => {
    const { socket, box } = outbox(100);
    socket.bufferedAmount = 500;
    const waiting = box.writable();
    box.close();
    expect(await settlesWithin(waiting, 1000)).toBe(true);
  });
});
