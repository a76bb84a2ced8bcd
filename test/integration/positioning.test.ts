/**
 * Positioning: a publication whose pub/sub message never reached a gateway (committed,
 * cached, position moved, but the PUBLISH lost) is a silent gap until the next publication
 * arrives. The periodic position check closes it without any new traffic.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/bus/keys.js';
import { openDatabase } from '../../src/db/client.js';
import { persistBatch } from '../../src/db/repos/publications.js';
import { withScripts } from '../../src/bus/scripts.js';
import { fanoutCommitted } from '../../src/persist/fanout.js';
import { connected, record } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('positioning', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('delivers a publication whose pub/sub message was lost, at the next position check', async () => {
    const gw = await stack.gateway({ TIDINGS_POSITION_CHECK_S: '1' });
    await stack.worker();
    const channel = uniqueChannel('silent');
    const client = await connected(wsUrl(gw.port), await token());
    const rec = record(client, channel);
    rec.sub.subscribe();
    await rec.sub.ready(5000);
    await client.publish(channel, { n: 1 });
    await waitFor('the first publication', () => rec.received.length === 1);

    // Commit and cache offset 2 exactly as a worker would, but send the PUBLISH to nobody:
    // the gateway's topic never hears of it.
    const database = openDatabase(stack.databaseUrl);
    const redis = withScripts(new Redis(stack.redisUrl));
    try {
      const outcome = await persistBatch(database.db, [{ id: randomUUID(), channel, data: '{"n":2}' }]);
      const keys = { ...makeKeys(stack.prefix), topic: () => `${stack.prefix}:nowhere`, acks: () => `${stack.prefix}:nowhere` };
      await fanoutCommitted(redis, keys, () => ({ size: 100, ttlS: 60 }), [{ outcome, gatewayId: 'nobody' }]);
    } finally {
      await database.close();
      redis.disconnect();
    }

    await waitFor('the position check to deliver the lost publication', () => rec.received.length === 2, { timeoutMs: 10_000 });
    expect(rec.offsets()).toEqual([1, 2]);
    expect(rec.received[1]?.data).toEqual({ n: 2 });
    client.disconnect();
  });
});
