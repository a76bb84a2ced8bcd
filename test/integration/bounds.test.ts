/**
 * Backpressure and bounds: a client that stops reading is closed with 3008 instead of
 * growing the gateway's memory; a publish flood with no worker running is held back (the
 * connections stop being read: issue 12) while the HTTP API gets a clear temporary error
 * (111) once the backlog bound is reached, and the gateway's RSS stays bounded.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { API_KEY, api } from '../helpers/api.js';
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

  it('holds client publishes back when no worker drains the backlog (no 111), refuses the API with 111, with bounded memory', async () => {
    const isolated = new TestStack(); // no worker on this prefix, until the end
    try {
      const settings = {
        TIDINGS_INGEST_BACKLOG_MAX: '500',
        TIDINGS_PUBLISH_TIMEOUT_MS: '60000',
        TIDINGS_PARTITIONS: '1',
        TIDINGS_API_KEY: API_KEY,
      };
      const gw = await isolated.spawn('gateway', settings);
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
      await sleep(3000);
      // Issue 12: the publishes wait (their sockets are no longer read) instead of being
      // refused; only the HTTP API, which does not wait, meets the backlog's bound.
      const early = clients.flatMap((c) => c.messages.filter((m) => m.error));
      expect(early, 'no client publish refused while no worker runs').toEqual([]);
      const refused = await api(gw.port, 'publish', { channel, data: 'from the API' });
      expect(refused.body).toEqual({ error: { code: 111, message: 'too many requests' } });
      const after = rssMiB(gw.process.pid!);
      console.log(`[bounds] gateway RSS ${before.toFixed(0)} MiB → ${after.toFixed(0)} MiB with 10,000 publishes sent and no worker`);
      expect(after - before).toBeLessThan(200);
      // Nothing was lost meanwhile: once a worker runs, every publish is committed.
      await isolated.worker(settings);
      const replies = await Promise.all(clients.map((c, i) => Promise.all(ids[i]!.map((id) => c.reply(id, 60_000)))));
      expect(replies.flat().filter((r) => r.error)).toEqual([]);
      for (const c of clients) c.close();
    } finally {
      await isolated.close();
    }
  });
});
