/**
 * The pieces that bound replies (issue 9), without servers: the reply budget and its batched
 * reads, the read permits, the command backlog's pause / resume / hard limit, and the
 * outbox's pacing (replies paced, live pushes bounded). A fake socket stands in for `ws`:
 * only it can show a buffer that does not drain, on demand.
 */
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { BusPublication } from '../../src/bus/topic.js';
import { Backlog } from '../../src/gateway/backlog.js';
import { FlushScheduler, Outbox } from '../../src/gateway/outbox.js';
import { readWithin, ReplyBudget, REPLY_ENVELOPE_BYTES } from '../../src/history/budget.js';
import { Permits } from '../../src/history/permits.js';

function pubs(from: number, count: number, bytes: number): BusPublication[] {
  return Array.from({ length: count }, (_, i) => ({ offset: from + i, json: 'x'.repeat(bytes - 1) }));
}

describe('ReplyBudget', () => {
  it('takes publications while they fit the bytes, envelope included; the first always', () => {
    const budget = new ReplyBudget(1000, 10_000 + REPLY_ENVELOPE_BYTES);
    expect(budget.take(pubs(1, 30, 1000)).map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(budget.done).toBe(true);

    const tiny = new ReplyBudget(1000, 1);
    expect(tiny.take(pubs(1, 3, 50_000)).map((p) => p.offset)).toEqual([1]);
    expect(tiny.done).toBe(true);
  });

  it('stops at the count', () => {
    const budget = new ReplyBudget(3, 1 << 20);
    expect(budget.take(pubs(1, 5, 10))).toHaveLength(3);
    expect(budget.done).toBe(true);
  });

  it('sizes the next batch by what the bytes left hold at the mean size', () => {
    const budget = new ReplyBudget(10_000, 100_000 + REPLY_ENVELOPE_BYTES);
    expect(budget.nextBatch()).toBe(16);
    budget.take(pubs(1, 16, 1000));
    expect(budget.nextBatch()).toBe(84);
  });

  it('readWithin reads batch after batch and stops once the reply is full, not after reading everything', async () => {
    const stored = pubs(1, 10_000, 1000);
    const asked: number[] = [];
    const budget = new ReplyBudget(10_000, 50_000 + REPLY_ENVELOPE_BYTES);
    const got = await readWithin(budget, 0, async (cursor, n) => {
      asked.push(n);
      return stored.slice(cursor, cursor + n);
    });
    expect(got.map((p) => p.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(asked.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(51);
  });

  it('readWithin stops at a short batch (the end of what is stored)', async () => {
    const stored = pubs(1, 5, 10);
    const got = await readWithin(new ReplyBudget(100, 1 << 20), 0, async (cursor, n) => stored.slice(cursor, cursor + n));
    expect(got).toHaveLength(5);
  });
});

describe('Permits', () => {
  it('runs at most `size` at once, the others in arrival order, and gives permits back on failure', async () => {
    const permits = new Permits(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const work = (i: number) =>
      permits.run(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        order.push(i);
        if (i === 0) throw new Error('boom');
      });
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => work(i)));
    expect(most).toBe(2);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(order.slice(2)).toEqual([2, 3, 4, 5]);
  });
});

describe('Backlog', () => {
  const limits = {
    high: { commands: 4, bytes: 1000 },
    low: { commands: 1, bytes: 100 },
    hard: { commands: 10, bytes: 5000 },
  };

  it('pauses the socket over the high-water mark, resumes at the low one, refuses past the hard limit', () => {
    const calls: string[] = [];
    const backlog = new Backlog({ pause: () => calls.push('pause'), resume: () => calls.push('resume') }, limits);
    for (let i = 0; i < 5; i++) expect(backlog.add(1, 10)).toBe(true);
    expect(calls).toEqual(['pause']);
    expect(backlog.isPaused).toBe(true);
    for (let i = 0; i < 3; i++) backlog.remove(1, 10);
    expect(calls).toEqual(['pause']); // 2 left: above the low-water mark
    backlog.remove(1, 10);
    expect(calls).toEqual(['pause', 'resume']);
    expect(backlog.add(1, 4000)).toBe(true);
    expect(backlog.add(1, 4000)).toBe(false);
  });

  it('counts publishes in flight until their ack, with the commands waiting (issue 12)', () => {
    const calls: string[] = [];
    const backlog = new Backlog({ pause: () => calls.push('pause'), resume: () => calls.push('resume') }, limits);
    expect(backlog.add(5, 50)).toBe(true); // one frame of five publishes
    expect(calls).toEqual(['pause']);
    const acks = Array.from({ length: 5 }, () => backlog.hold(10)); // each queued in turn
    backlog.remove(5, 50); // the frame ran; its five publishes are still in flight
    expect(backlog.pending).toBe(5);
    expect(calls, 'still paused: five in flight').toEqual(['pause']);
    acks.slice(0, 4).forEach((ack) => ack());
    expect(calls).toEqual(['pause', 'resume']);
    acks[0]!(); // a second call does nothing
    expect(backlog.pending).toBe(1);
  });

  it('pauses on bytes in flight too', () => {
    const calls: string[] = [];
    const backlog = new Backlog({ pause: () => calls.push('pause'), resume: () => calls.push('resume') }, limits);
    const ack = backlog.hold(1500);
    expect(calls).toEqual(['pause']);
    ack();
    expect(calls).toEqual(['pause', 'resume']);
  });
});

describe('Outbox pacing', () => {
  function fakeSocket() {
    const sent: (string | Buffer)[] = [];
    const socket = { bufferedAmount: 0, send: (data: string | Buffer) => sent.push(data) };
    return { socket, sent, ws: socket as unknown as WebSocket };
  }

  it('does not hold a paced reply against live pushes, but writable() waits until the client read it', async () => {
    const { socket, ws } = fakeSocket();
    const outbox = new Outbox(ws, new FlushScheduler(), 1000);
    expect(outbox.push('r'.repeat(900), false)).toBe(true); // a reply, paced
    outbox.flushNow();
    socket.bufferedAmount = 900; // the client has not read it yet
    expect(outbox.push(Buffer.alloc(500))).toBe(true); // a live push still fits its bound
    outbox.flushNow();
    socket.bufferedAmount = 1400;
    let writable = false;
    const waiting = outbox.writable().then(() => (writable = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(writable).toBe(false);
    socket.bufferedAmount = 300; // the client read most of it
    await waiting;
    expect(writable).toBe(true);
  });

  it('still reports a client whose live backlog passes the bound (3008)', () => {
    const { socket, ws } = fakeSocket();
    const outbox = new Outbox(ws, new FlushScheduler(), 1000);
    expect(outbox.push(Buffer.alloc(600))).toBe(true);
    outbox.flushNow();
    socket.bufferedAmount = 600;
    expect(outbox.push(Buffer.alloc(600))).toBe(false);
  });

  it('writable() resolves when the outbox closes', async () => {
    const { socket, ws } = fakeSocket();
    const outbox = new Outbox(ws, new FlushScheduler(), 10);
    socket.bufferedAmount = 100;
    const waiting = outbox.writable();
    outbox.close();
    await waiting;
  });
});
