/**
 * Backpressure and bounds: a client that stops reading is closed with 3008 instead of
 * growing the gateway's memory; a publish flood with no worker running gets a clear
 * temporary error (111) once the backlog bound is reached, and the gateway's RSS stays
 * bounded.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

describe('bounds', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('closes a subscriber that does not read with 3008 (slow)', async () => {
    const gw = await stack.gateway({ TIDINGS_CLIENT_QUEUE_MAX_BYTES: '65536' });
    await stack.worker();
    const channel = uniqueChannel('slow');
    const slow = await RawClient.open(wsUrl(gw.port));
    await slow.connect(await token('slow'));
    await slow.call('subscribe', { channel });
    // Stop reading: the kernel buffers fill, then the gateway's own queue.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pub = await RawClient.open(wsUrl(gw.port));
    await pub.connect(await token('pub'));
    const big = 'x'.repeat(8000);
    for (let i = 0; i < 400; i++) pub.command('publish', { channel, data: { i, big } });
    await waitFor('the slow client to be closed', () => gw.ws.connections.size === 1, { timeoutMs: 30_000 });
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed(10_000);
    expect(closed.code).toBe(3008);
    pub.close();
  });

  it('refuses publishes with 111 when no worker drains the backlog, with bounded memory', async () => {
    const isolated = new TestStack(); // no worker on this prefix
    try {
      const gw = await isolated.spawn('gateway', {
        TIDINGS_INGEST_BACKLOG_MAX: '2000',
        TIDINGS_PUBLISH_TIMEOUT_MS: '60000',
        TIDINGS_PARTITIONS: '1',
        // Only the backlog bound may refuse here, not the per-connection rate limit.
        TIDINGS_CLIENT_RATE: '1000000',
        TIDINGS_CLIENT_BURST: '1000000',
      });
      const before = rssMiB(gw.process.pid!);
      const clients = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const c = await RawClient.open(wsUrl(gw.port));
          await c.connect(await token(`flood${i}`));
          return c;
        }),
      );
      const channel = uniqueChannel('flood');
      const payload = 'y'.repeat(1000);
      const ids = clients.map((c) => Array.from({ length: 2500 }, (_, n) => c.command('publish', { channel, data: { n, payload } })));
      const replies = await Promise.all(clients.map((c, i) => Promise.all(ids[i]!.slice(-50).map((id) => c.reply(id, 20_000)))));
      const codes = replies.flat().map((r) => (r.error as { code?: number } | undefined)?.code);
      expect(codes.every((code) => code === 111)).toBe(true);
      const after = rssMiB(gw.process.pid!);
      console.log(`[bounds] gateway RSS ${before.toFixed(0)} MiB → ${after.toFixed(0)} MiB after 10,000 publishes with no worker`);
      expect(after - before).toBeLessThan(200);
      for (const c of clients) c.close();
    } finally {
      await isolated.close();
    }
  });
});
