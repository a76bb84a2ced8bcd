/**
 * PostgreSQL connections dropped again and again in the middle of transactions (a flaky
 * network, a proxy or pooler restarting): the worker must neither crash (a connection that
 * dies while a transaction holds it emits 'error' on that client) nor leak the pool clients
 * whose BEGIN failed (once its small pool is gone, a worker never commits again). Guarantees
 * 1–5 hold throughout. The worker is a child process reaching the suite's PostgreSQL
 * through a proxy of its own, so only its connections are cut.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import {
  auditFailures,
  auditRun,
  auditTable,
  NO_FAILURES,
  printAudit,
  Publisher,
  settle,
  storedPublications,
} from '../helpers/audit.js';
import { connected, subscribed } from '../helpers/client.js';
import { TcpProxy } from '../helpers/proxy.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('PostgreSQL connections cut under the worker', () => {
  const stack = new TestStack();
  const proxy = new TcpProxy([Number(new URL(stack.databaseUrl).port)]);
  const clients: Centrifuge[] = [];
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await stack.close();
    await proxy.close();
  });

  it('every connection of the worker cut every 50 ms for 6 s: it neither crashes nor wedges, and loses nothing', async () => {
    await proxy.listen();
    const viaProxy = new URL(stack.databaseUrl);
    viaProxy.port = String(proxy.port);
    const gateway = await stack.gateway();
    const worker = await stack.spawn('worker', { DATABASE_URL: viaProxy.toString() });
    let exit: number | null | undefined;
    void worker.exited.then((code) => (exit = code));

    const channel = uniqueChannel('pgcut');
    const sub = await subscribed(wsUrl(gateway.port), await token('sub'), channel);
    const pubClients = await Promise.all(
      [0, 1].map(async (i) => connected(wsUrl(gateway.port), await token(`pub${i}`))),
    );
    clients.push(sub.client, ...pubClients);
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));
    const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);
    const stop = new AbortController();
    const streams = Promise.all(
      publishers.map((p) => p.stream({ signal: stop.signal, max: 5000, intervalMs: 5, window: 8 })),
    );
    try {
      await waitFor('the stream to be under way', () => acked() >= 200);
      for (let i = 0; i < 120; i++) {
        await new Promise((r) => setTimeout(r, 50));
        proxy.cut();
        expect(exit, `the worker is still running (${worker.output.slice(-3).join(' | ')})`).toBeUndefined();
      }
      const atEnd = acked();
      await waitFor(
        () => `publishes to be acknowledged again after the cuts (${acked() - atEnd} of 300)`,
        () => acked() >= atEnd + 300,
        { timeoutMs: 30_000 },
      );
      expect(exit, 'the worker is still running').toBeUndefined();
    } finally {
      stop.abort();
      await streams;
    }

    await waitFor('the ingest queues to drain', async () => (await stack.unfinishedJobs()) === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const stored = await storedPublications(stack.databaseUrl, channel);
    await waitFor(
      () => `the subscriber to get all ${stored.length} (has ${new Set(sub.offsets()).size})`,
      () => new Set(sub.offsets()).size >= stored.length,
      { timeoutMs: 30_000 },
    );
    await settle(300);
    const audit = auditRun('PostgreSQL connections cut every 50 ms', {
      publishers,
      stored,
      subscribers: [{ name: 'sub', received: sub.received }],
    });
    printAudit(audit);
    console.log(`[faults] ${audit.test}\n${auditTable([audit])}`);
    expect(audit.stored).toBeGreaterThanOrEqual(audit.acknowledged);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });
});
