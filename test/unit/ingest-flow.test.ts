/**
 * src/ingest/flow.ts: client publishes wait for room in their partition's gateway backlog
 * (issue 12) instead of being refused. The backlog is a number the test sets; the real one
 * is src/ingest/client.ts's (test/integration/flow-control.test.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { IngestFlow } from '../../src/ingest/flow.js';

function flow(settings: { backlogMax?: number; batchMax?: number; publishTimeoutMs?: number } = {}) {
  const backlog = { n: 0 };
  const f = new IngestFlow(
    { backlogOf: () => backlog.n },
    { partitions: 1, backlogMax: 20_000, batchMax: 1000, publishTimeoutMs: 4000, ...settings },
  );
  return { f, backlog };
}

describe('IngestFlow', () => {
  it('holds back at two full jobs, never above the backlog bound', () => {
    expect(flow().f.flowBound).toBe(2000);
    expect(flow({ backlogMax: 500 }).f.flowBound).toBe(500);
    expect(flow().f.maxWaitMs).toBe(500);
  });

  it('answers at once while there is room', () => {
    const { f, backlog } = flow();
    backlog.n = 1999;
    expect(f.room('ch', performance.now())).toBe(true);
  });

  it('waits while the partition is full, and lets every waiter go once it has room', async () => {
    const { f, backlog } = flow();
    backlog.n = 2000;
    const waits = [f.room('a', performance.now()), f.room('b', performance.now())];
    let done = 0;
    for (const w of waits) void Promise.resolve(w).then(() => done++);
    await sleep(20);
    expect(done).toBe(0);
    backlog.n = 10;
    expect(await Promise.all(waits)).toEqual([true, true]);
  });

  it('gives up maxWaitMs after the frame was read, not after the wait began', async () => {
    const { f, backlog } = flow({ publishTimeoutMs: 800 });
    backlog.n = 5000;
    const started = performance.now();
    expect(await f.room('ch', started - 60)).toBe(false);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(30);
    expect(waited).toBeLessThan(150);
  });
});
