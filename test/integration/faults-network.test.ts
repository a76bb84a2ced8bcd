/**
 * Guarantee 4 across network faults: a subscriber whose socket is cut, and the clients of a
 * gateway killed with -9, come back through a TCP proxy (standing in for a load balancer)
 * and recover everything published while they were away, exactly once and in order.
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
import { connected, newClient, record, type RecordedSubscription } from '../helpers/client.js';
import { TcpProxy } from '../helpers/proxy.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/** Connects through `url` and subscribes; resolves once the subscription is live. */
async function subscriber(
  url: string,
  user: string,
  channel: string,
): Promise<RecordedSubscription & { client: Centrifuge }> {
  const client = newClient(url, await token(user));
  const rec = record(client, channel);
  rec.sub.subscribe();
  client.connect();
  await rec.sub.ready(10_000);
  return { client, ...rec };
}

async function waitAway(what: string, clients: Centrifuge[]): Promise<void> {
  await waitFor(`${what} to notice it is disconnected`, () => clients.every((c) => c.state !== 'connected'));
}

describe('network faults', () => {
  const stack = new TestStack();
  const proxies: TcpProxy[] = [];
  const clients: Centrifuge[] = [];
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    for (const p of proxies) await p.close();
    await stack.close();
  });

  it('a subscriber cut off while 200 are published gets exactly those 200 on reconnect', async () => {
    const gateway = await stack.gateway();
    await stack.worker();
    const proxy = new TcpProxy([gateway.port]);
    proxies.push(proxy);
    await proxy.listen();
    const channel = uniqueChannel('cut');

    const away = await subscriber(wsUrl(proxy.port), 'away', channel);
    const publisher = await connected(wsUrl(gateway.port), await token('pub'));
    clients.push(away.client, publisher);
    const pub = new Publisher(publisher, channel, 'p');

    await pub.run(20);
    await waitFor('the subscriber to get the first 20', () => away.received.length === 20);
    const { epoch } = await publisher.history(channel, {});

    proxy.block(); // cut every socket, and keep the network down
    await waitAway('the cut subscriber', [away.client]);
    await pub.run(200);
    expect(pub.acked.size, 'every publish made while the subscriber was away is acknowledged').toBe(220);
    expect(away.received.length, 'nothing reaches a disconnected subscriber').toBe(20);

    proxy.unblock();
    await waitFor(
      () => `the subscriber to recover the 200 (has ${away.received.length - 20})`,
      () => away.received.length >= 220,
    );
    await settle();

    const last = away.subscribedEvents.at(-1);
    expect(away.subscribedEvents).toHaveLength(2);
    expect(last).toMatchObject({ wasRecovering: true, recovered: true, publications: 1, offset: 20 });
    expect(last?.epoch).toBe(epoch);
    expect(away.offsets().slice(20)).toEqual(Array.from({ length: 200 }, (_, i) => 21 + i));

    const audit = auditRun('cut subscriber, 200 while away', {
      publishers: [pub],
      stored: await storedPublications(stack.databaseUrl, channel),
      subscribers: [{ name: 'cut', received: away.received }],
    });
    printAudit(audit);
    expect(audit).toMatchObject({ acknowledged: 220, stored: 220 });
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });

  it('clients of a gateway killed with -9 reconnect to the other one and recover, exactly once, in order', async () => {
    const [gw1, gw2] = await Promise.all([stack.spawn('gateway'), stack.spawn('gateway')]);
    await stack.worker();
    const proxy = new TcpProxy([gw1.port, gw2.port]);
    proxies.push(proxy);
    await proxy.listen();
    const channel = uniqueChannel('gwkill');

    // Through the proxy every client lands on gw1, the first backend that accepts.
    const victims = await Promise.all(
      [0, 1, 2].map((i) => subscriber(wsUrl(proxy.port), `victim${i}`, channel)),
    );
    const witness = await subscriber(wsUrl(gw2.port), 'witness', channel);
    const direct = await connected(wsUrl(gw2.port), await token('direct'));
    const proxied = await connected(wsUrl(proxy.port), await token('proxied'));
    clients.push(...victims.map((v) => v.client), witness.client, direct, proxied);
    const steady = new Publisher(direct, channel, 'direct');
    const onVictim = new Publisher(proxied, channel, 'proxied');

    await Promise.all([steady.run(50), onVictim.run(50)]);
    for (const v of victims) await waitFor('victims to get the first 100', () => v.received.length === 100);

    // A stream from each side; gw1 dies in the middle of it, and the network between
    // clients and gateways stays down for a while so that much is published meanwhile.
    const streams = Promise.all([steady.run(600, 8), onVictim.run(300, 8)]);
    await waitFor('the stream to be under way', () => steady.acked.size >= 250);
    proxy.block();
    expect(await gw1.kill('SIGKILL'), 'gw1 died of SIGKILL').toBeNull();
    await waitAway('the clients of gw1', [...victims.map((v) => v.client), proxied]);
    const atKill = steady.acked.size;
    await waitFor('publishes while gw1 is down', () => steady.acked.size >= atKill + 150);
    const stalled = victims.map((v) => v.received.length);
    proxy.unblock(); // gw1 refuses, so the proxy routes every client to gw2
    await streams;

    await waitFor(
      'every queued publication to be committed',
      async () => (await stack.unfinishedJobs()) === 0,
    );
    const stored = await storedPublications(stack.databaseUrl, channel);
    for (const [i, s] of [...victims, witness].entries()) {
      await waitFor(
        () => `subscriber ${i} to get all ${stored.length} (has ${s.received.length})`,
        () => s.received.length >= stored.length,
      );
    }
    await settle();
    for (const v of victims) {
      expect(v.subscribedEvents.at(-1), 'the victims recovered on gw2').toMatchObject({
        wasRecovering: true,
        recovered: true,
        publications: 1,
      });
    }

    const audit = auditRun('gateway kill -9', {
      publishers: [steady, onVictim],
      stored,
      subscribers: [
        ...victims.map((v, i) => ({ name: `victim${i}`, received: v.received })),
        { name: 'witness', received: witness.received },
      ],
    });
    printAudit(audit);
    console.log(
      `[audit]   gateway kill -9 / victims had ${stalled.join(', ')} while gw1 was down; ${atKill} direct publishes acked at the kill`,
    );
    expect(audit.acknowledged, 'publishes went on while gw1 was down').toBeGreaterThanOrEqual(atKill + 150);
    expect(audit.stored).toBeGreaterThanOrEqual(audit.acknowledged);
    expect(auditFailures(audit)).toEqual(NO_FAILURES);
  });
});
