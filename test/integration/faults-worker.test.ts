/**
 * Guarantees 1 to 5 across a persist worker killed with -9 in the middle of a
 * stream: BullMQ's stall check hands its job to the restarted worker, which repeats it.
 * Nothing acknowledged is lost, nothing is stored twice, offsets stay 1..N, each
 * publisher's messages keep their order, and every subscriber gets each stored
 * publication once, in order.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Centrifuge } from 'centrifuge';
import {
  auditFailures,
  auditRun,
  NO_FAILURES,
  printAudit,
  Publisher,
  settle,
  storedPublications,
} from '../helpers/audit.js';
import { connected, subscribed } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PER_PUBLISHER = 1000;

describe('worker faults', () => {
  const stack = new TestStack();
  const clients: Centrifuge[] = [];
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await stack.close();
  });

  /**
   * Two publishers stream 2 × 1000 through two gateways; `workers` child workers consume.
   * The first is killed with -9 while a job is active, and restarted a moment later.
   */
  async function killMidStream(test: string, workers: number) {
    const [gw1, gw2] = await Promise.all([stack.gateway(), stack.gateway()]);
    const nodes = await Promise.all(Array.from({ length: workers }, () => stack.spawn('worker')));
    const channel = uniqueChannel('wkill');
    const subs = await Promise.all(
      [gw1, gw2].map(async (gw, i) => subscribed(wsUrl(gw.port), await token(`sub${i}`), channel)),
    );
    const pubClients = await Promise.all(
      [gw1, gw2].map(async (gw, i) => connected(wsUrl(gw.port), await token(`pub${i}`))),
    );
    clients.push(...subs.map((s) => s.client), ...pubClients);
    const publishers = pubClients.map((c, i) => new Publisher(c, channel, `p${i}`));

    const streams = Promise.all(publishers.map((p) => p.run(PER_PUBLISHER, 16)));
    const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);
    await waitFor('the stream to be under way', () => acked() >= 600);
    // Kill while a job is active, so the stall check and the repeated job are exercised.
    await waitFor('a job to be active', async () => (await stack.jobCount(['active'])) > 0);
    expect(await nodes[0]!.kill('SIGKILL'), 'the worker died of SIGKILL').toBeNull();
    const atKill = acked();
    // A job the dead worker held stays active (its lock is not renewed) until the stall check.
    const orphaned = await stack.jobCount(['active']);
    // Let publishes pile up (and some time out) before the worker returns.
    await waitFor(
      'publishes to be in flight after the kill',
      () => publishers.reduce((n, p) => n + p.sent.length - p.settled, 0) >= 16,
    );
    await new Promise((r) => setTimeout(r, 500));
    await stack.spawn('worker');
    await streams;

    await waitFor(
      'every queued publication to be committed',
      async () => (await stack.unfinishedJobs()) === 0,
      {
        timeoutMs: 30_000,
      },
    );
    const stored = await storedPublications(stack.databaseUrl, channel);
    for (const [i, s] of subs.entries()) {
      await waitFor(
        () => `subscriber ${i} to get all ${stored.length} (has ${s.received.length})`,
        () => s.received.length >= stored.length,
      );
    }

    await settle();
    const audit = auditRun(test, {
      publishers,
      stored,
      subscribers: subs.map((s, i) => ({ name: `sub${i}`, received: s.received })),
    });
    printAudit(audit);
    const errors = new Set(publishers.flatMap((p) => [...p.failed.values()]));
    console.log(
      `[audit]   ${test} / ${atKill} acked at the kill; ${orphaned} job(s) active after it; ` +
        `error replies: ${[...errors].join('; ') || 'none'}`,
    );
    expect(audit.sent).toBe(2 * PER_PUBLISHER);
    expect(audit.acknowledged).toBeGreaterThan(atKill);
    expect(audit.stored).toBeGreaterThanOrEqual(audit.acknowledged);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  }

  it('kill -9 of the only worker mid-stream, then a restart: every ack stored once, offsets 1..N, delivered once in order', async () => {
    // Alone, the killed worker is certainly the one that held the active job.
    await killMidStream('worker kill -9 mid-stream (1 worker)', 1);
  });

  it('kill -9 of one of two workers mid-stream: the other takes over, the restarted one joins, nothing lost or doubled', async () => {
    await killMidStream('worker kill -9 mid-stream (1 of 2 workers)', 2);
  });
});
