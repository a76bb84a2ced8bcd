/** GET /metrics: the documented metrics, fed by real traffic, and no channel names in labels. */
import { afterAll, describe, expect, it } from 'vitest';
import { connected, record } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The value of a series named `name{a="x",…}` (or bare), matching the given labels whatever
 * other labels (the node's) the line carries.
 */
function value(text: string, series: string): number {
  const [name, labelPart = ''] = series.replace(/}$/, '').split('{');
  const wanted = labelPart ? labelPart.split(',') : [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/i.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = m[2] ? m[2].split(',') : [];
    if (wanted.every((w) => labels.includes(w))) return Number(m[3]);
  }
  return Number.NaN;
}

describe('metrics', () => {
  const stack = new TestStack();
  afterAll(() => stack.close());

  it('exposes connections, commands, latencies, deliveries, recoveries and process metrics', async () => {
    const gw = await stack.gateway();
    await stack.worker();
    const channel = uniqueChannel('metrics');
    const client = await connected(wsUrl(gw.port), await token());
    const rec = record(client, channel);
    rec.sub.subscribe();
    await rec.sub.ready(5000);
    await Promise.all([1, 2, 3].map((n) => client.publish(channel, { n })));
    await waitFor('deliveries', () => rec.received.length === 3);
    client.disconnect();
    client.connect();
    await waitFor('recovery after reconnect', () => rec.subscribedEvents.length === 2);

    const res = await fetch(`http://127.0.0.1:${gw.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(value(text, 'tidings_gateway_connections')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'tidings_gateway_commands_total{method="publish",result="ok"}')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'tidings_ingest_publish_to_commit_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'tidings_hub_commit_to_deliver_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'tidings_hub_deliveries_total')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'tidings_recovery_total{outcome="cache"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'tidings_queue_waiting_jobs{partition="0"}')).toBeGreaterThanOrEqual(0);
    // Standard names for the process metrics, and the node on every series.
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(text, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).not.toContain('tidings_process_');
    expect(value(text, `tidings_gateway_connections{node="${gw.nodeName}"}`)).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(channel);
    client.disconnect();
  });
});
