/**
 * Graceful shutdown on SIGTERM: a gateway stops accepting, lets accepted publishes get
 * their commit acks, then asks its clients to reconnect elsewhere (3001); a worker finishes
 * its current job. Nothing acknowledged is lost and no job is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_FAILURES, Publisher, auditFailures, auditRun, printAudit, storedPublications } from '../helpers/audit.js';
import { connected, newClient, record } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('graceful shutdown', () => {
  const stack = new TestStack();
  let stableUrl = '';

  beforeAll(async () => {
    stableUrl = wsUrl((await stack.gateway()).port);
  });
  afterAll(() => stack.close());

  it('a gateway on SIGTERM answers what it accepted, closes clients with 3001 and exits 0', async () => {
    await stack.worker();
    const channel = uniqueChannel('sigterm-gw');
    const gateway = await stack.spawn('gateway');
    const client = newClient(wsUrl(gateway.port), await token('pub'));
    const closeCodes: number[] = [];
    client.on('connecting', (ctx) => closeCodes.push(ctx.code));
    client.connect();
    await client.ready(5000);
    const publisher = new Publisher(client, channel, 'p');
    const running = publisher.run(400, 32);
    await waitFor('some publishes acknowledged', () => publisher.acked.size >= 50);
    gateway.process.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    await waitFor('the client to be told to reconnect (3001)', () => closeCodes.includes(3001));
    client.disconnect();
    await running;

    await waitFor('queues to drain', async () => (await stack.unfinishedJobs()) === 0);
    const stored = await storedPublications(stack.databaseUrl, channel);
    const audit = auditRun('gateway SIGTERM', { publishers: [publisher], stored, subscribers: [] });
    printAudit(audit);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
    expect(audit.acknowledged).toBeGreaterThanOrEqual(50);
  });

  it('a worker on SIGTERM finishes its job and exits 0; nothing is stuck, nothing acked is lost', async () => {
    const channel = uniqueChannel('sigterm-worker');
    const worker = await stack.spawn('worker');
    const subscriber = await connected(stableUrl, await token('sub'));
    const rec = record(subscriber, channel);
    rec.sub.subscribe();
    await rec.sub.ready(5000);
    const client = await connected(stableUrl, await token('pub'));
    const publisher = new Publisher(client, channel, 'p');
    const running = publisher.run(600, 32);
    await waitFor('some publishes acknowledged', () => publisher.acked.size >= 100);
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await stack.worker(); // the replacement takes over what is left
    await running;
    await waitFor('queues to drain', async () => (await stack.unfinishedJobs()) === 0);
    const stored = await storedPublications(stack.databaseUrl, channel);
    await waitFor('the subscriber to receive every stored publication', () => rec.received.length >= stored.length);
    const audit = auditRun('worker SIGTERM', { publishers: [publisher], stored, subscribers: [{ name: 'sub', received: rec.received }] });
    printAudit(audit);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
    subscriber.disconnect();
    client.disconnect();
  });
});
