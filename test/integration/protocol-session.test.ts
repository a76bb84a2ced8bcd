/**
 * A connection's life after connect (PROTOCOL.md A.4, B refresh/presence/rpc/send/unsubscribe):
 * server pings and the pong timeout, connection-token refresh, and the commands Tidings
 * answers without a feature behind them (rpc, ping, presence where it is switched off).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { newClient } from '../helpers/client.js';
import { RawClient, tappedWebSocket, type Tap } from '../helpers/raw.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

describe('client protocol: the session', () => {
  const stack = new TestStack();
  let gateway: RunningGateway;
  let url: string;

  beforeAll(async () => {
    // Namespace `quiet` has presence switched off.
    const dir = await mkdtemp(join(tmpdir(), 'tidings-protocol-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ namespaces: { quiet: { presence: false } } }));
    gateway = await stack.gateway({ TIDINGS_CONFIG: join(dir, 'config.json') });
    await stack.worker();
    url = wsUrl(gateway.port);
  });
  afterAll(() => stack.close());

  describe('ping / pong', () => {
    it('pings with {} every interval, closes a silent client with 3012, keeps clients that answer', async () => {
      const pinging = await stack.gateway({ TIDINGS_PING_INTERVAL_S: '2', TIDINGS_PONG_TIMEOUT_S: '1' });
      const pingUrl = wsUrl(pinging.port);

      // The SDK answers pings; it runs over several intervals alongside the raw clients.
      const tap: Tap = { sent: [], received: [] };
      const sdk = newClient(pingUrl, await token('sdk'), { websocket: tappedWebSocket(tap) });
      const sdkTransitions: string[] = [];
      sdk.on('connecting', (ctx) => sdkTransitions.push(`connecting ${ctx.code}`));
      sdk.on('disconnected', (ctx) => sdkTransitions.push(`disconnected ${ctx.code}`));
      sdk.connect();
      await sdk.ready(5000);
      sdkTransitions.length = 0;

      const silent = await RawClient.open(pingUrl);
      const reply = await silent.connect(await token('silent'));
      expect(reply.connect).toMatchObject({ ping: 2, pong: true });

      const answering = await RawClient.open(pingUrl);
      await answering.connect(await token('answering'));
      answering.ws.on('message', (data) => {
        if (String(data).split('\n').includes('{}')) answering.send('{}');
      });

      const ping = await silent.next('a server ping', 4000);
      expect(ping).toEqual({});
      expect(silent.frames.at(-1)).toEqual({ text: '{}', isBinary: false });
      const close = await silent.closed(4000);
      expect(close).toEqual({ code: 3012, reason: 'no pong' });

      // Three more intervals: the SDK and the answering raw client stay connected.
      const pings = (raw: RawClient) => raw.messages.filter((m) => Object.keys(m).length === 0).length;
      await waitFor(
        'three pings answered by the SDK and by the answering raw client',
        () => tap.sent.filter((f) => f === '{}').length >= 3 && pings(answering) >= 3,
        { timeoutMs: 10_000 },
      );
      expect(sdk.state).toBe('connected');
      expect(sdkTransitions).toEqual([]);
      expect(answering.closeEvent).toBeUndefined();
      await sdk.publish(uniqueChannel('after-pings'), { ok: true });
      sdk.disconnect();
      answering.close();
    });
  });

  describe('refresh', () => {
    it('the SDK refreshes a token that expires in 2 s through getToken and stays connected past its exp', async () => {
      const tap: Tap = { sent: [], received: [] };
      let getTokenCalls = 0;
      const client = newClient(url, await token('refresher', { ttlSeconds: 2 }), {
        websocket: tappedWebSocket(tap),
        getToken: async () => {
          getTokenCalls++;
          return token('refresher', { ttlSeconds: 600 });
        },
      });
      const transitions: string[] = [];
      let clientId = '';
      client.on('connected', (ctx) => (clientId = ctx.client));
      client.connect();
      await client.ready(5000);
      const connectedAt = Date.now();
      client.on('connecting', (ctx) => transitions.push(`connecting ${ctx.code}`));
      client.on('disconnected', (ctx) => transitions.push(`disconnected ${ctx.code}`));

      await waitFor(
        'the SDK to send a refresh command',
        () => tap.sent.some((f) => f.includes('"refresh"')),
        { timeoutMs: 6000 },
      );
      const refreshReply = await waitFor('a refresh reply', () =>
        tap.received.flatMap((f) => f.split('\n')).find((line) => line.includes('"refresh"')),
      );
      const result = (
        JSON.parse(refreshReply) as { refresh: { client: string; expires: boolean; ttl: number } }
      ).refresh;
      expect(result.client).toBe(clientId);
      expect(result.expires).toBe(true);
      expect(result.ttl).toBeGreaterThan(590);
      expect(getTokenCalls).toBe(1);

      // Past the first token's exp: still the same connection, now expiring with the new token.
      await sleep(Math.max(0, connectedAt + 3000 - Date.now()));
      expect(client.state).toBe('connected');
      expect(transitions).toEqual([]);
      const conn = [...gateway.ws.connections].find((c) => c.clientId === clientId);
      expect(conn?.expiresAt).toBeGreaterThan(Date.now() / 1000 + 590);
      await client.publish(uniqueChannel('refreshed'), { ok: true });
      client.disconnect();
    });

    it('a refresh with a fresh token of the same user → refresh reply with the new expiry', async () => {
      const raw = await RawClient.open(url);
      const connect = await raw.connect(await token('same', { ttlSeconds: 60 }));
      const reply = await raw.call('refresh', { token: await token('same', { ttlSeconds: 900 }) });
      expect(reply.refresh).toMatchObject({
        client: (connect.connect as { client: string }).client,
        expires: true,
      });
      expect((reply.refresh as { ttl: number }).ttl).toBeGreaterThan(890);
      raw.close();
    });

    const refreshFailures: [string, () => Promise<string>, number, string][] = [
      ["another user's token", () => token('mallory', { ttlSeconds: 600 }), 3500, 'invalid token'],
      ['a garbage token', async () => 'garbage', 3500, 'invalid token'],
      ['an expired token', () => token('victim', { ttlSeconds: -5 }), 3005, 'connection expired'],
      ['an empty token', async () => '', 3501, 'bad request'],
    ];
    for (const [name, make, code, reason] of refreshFailures) {
      it(`a refresh with ${name} → close ${code}`, async () => {
        const raw = await RawClient.open(url);
        await raw.connect(await token('victim', { ttlSeconds: 60 }));
        raw.command('refresh', { token: await make() });
        expect(await raw.closed()).toEqual({ code, reason });
      });
    }
  });

  describe('commands without a feature behind them', () => {
    it('presence and presence_stats → 108 where presence is off; rpc and ping → 108; the SDK rejects only that call', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(await token());
      const quiet = `quiet:${uniqueChannel('nopresence')}`;
      expect((await raw.call('subscribe', { channel: quiet })).subscribe).toBeDefined();
      for (const [method, body] of [
        ['presence', { channel: quiet }],
        ['presence_stats', { channel: quiet }],
        ['rpc', { method: 'm', data: { x: 1 } }],
        ['ping', {}],
      ] as const) {
        const reply = await raw.call(method, body);
        expect(reply, method).toEqual({ id: reply.id, error: { code: 108, message: 'not available' } });
      }
      expect(raw.closeEvent).toBeUndefined();
      raw.close();

      const client = newClient(url, await token());
      client.connect();
      await client.ready(5000);
      await expect(client.presence(quiet)).rejects.toMatchObject({ code: 108 });
      await expect(client.presenceStats(quiet)).rejects.toMatchObject({ code: 108 });
      await expect(client.rpc('m', {})).rejects.toMatchObject({ code: 108 });
      expect(client.state).toBe('connected');
      client.disconnect();
    });

    it('presence replies keep their wire shape: the presence map and both stats numbers always present', async () => {
      const channel = uniqueChannel('presence');
      const raw = await RawClient.open(url);
      const connect = await raw.connect(await token('present'));
      expect((await raw.call('presence', { channel })).error).toMatchObject({ code: 103 }); // not subscribed
      await raw.call('subscribe', { channel });
      const client = (connect.connect as { client: string }).client;
      const presence = await raw.call('presence', { channel });
      expect(presence.presence).toEqual({ presence: { [client]: { client, user: 'present' } } });
      const stats = await raw.call('presence_stats', { channel });
      expect(stats.presence_stats).toEqual({ num_clients: 1, num_users: 1 });
      raw.close();
    });

    it('send gets no reply and does not close the connection', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(await token());
      raw.send('{"send":{"data":{"hello":"server"}}}');
      raw.send('{"send":{}}');
      const id = raw.command('history', { channel: uniqueChannel('after-send') });
      // Commands run in order: the next message after the connect reply is the history reply.
      expect((await raw.next('history reply after two sends')).id).toBe(id);
      expect(raw.messages).toHaveLength(2);
      expect(raw.closeEvent).toBeUndefined();
      raw.close();

      const client = newClient(url, await token());
      client.connect();
      await client.ready(5000);
      await client.send({ hello: 'server' });
      await client.publish(uniqueChannel('after-sdk-send'), { still: 'connected' });
      expect(client.state).toBe('connected');
      client.disconnect();
    });

    it('unsubscribe from a channel never subscribed → success reply', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(await token());
      const reply = await raw.call('unsubscribe', { channel: uniqueChannel('never') });
      expect(reply).toEqual({ id: reply.id, unsubscribe: {} });
      expect(raw.closeEvent).toBeUndefined();
      raw.close();
    });

    it('sub_refresh for a channel not subscribed → 103', async () => {
      const raw = await RawClient.open(url);
      await raw.connect(await token());
      const reply = await raw.call('sub_refresh', { channel: uniqueChannel('nosub'), token: 'x' });
      expect(reply.error).toMatchObject({ code: 103 });
      raw.close();
    });
  });
});
