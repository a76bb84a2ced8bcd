/**
 * GatewayWorker parity (docs/gatewayworker.md): each Gateway::* call a PHP backend makes,
 * done the Tidings way — the HTTP API plus channel conventions — against real clients.
 *
 * Conventions: every client's token lists `all` (sendToAll) and `user#<uid>` (sendToUid) as
 * server-side channels; a group is a channel `group-<name>`.
 */
import type { Centrifuge } from 'centrifuge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, call } from '../helpers/api.js';
import { newClient } from '../helpers/client.js';
import { TestStack, token, uniqueChannel, wsUrl } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface Peer {
  client: Centrifuge;
  clientId: string;
  got: { channel: string; data: unknown }[];
  unsubscribed: string[];
}

describe('GatewayWorker parity', () => {
  const stack = new TestStack({ env: { TIDINGS_API_KEY: API_KEY } });
  let port = 0;
  const all = uniqueChannel('all');
  const peers: Peer[] = [];

  async function connectAs(uid: string): Promise<Peer> {
    const client = newClient(wsUrl(port), await token(uid, { channels: [all, `user#${uid}`] }));
    const peer: Peer = { client, clientId: '', got: [], unsubscribed: [] };
    client.on('publication', (ctx) => peer.got.push({ channel: ctx.channel, data: ctx.data }));
    client.on('unsubscribed', (ctx) => peer.unsubscribed.push(ctx.channel));
    client.on('connected', (ctx) => (peer.clientId = ctx.client));
    client.connect();
    await client.ready(5000);
    peers.push(peer);
    return peer;
  }

  const received = (peer: Peer, channel: string) => peer.got.filter((g) => g.channel === channel).map((g) => g.data);

  beforeAll(async () => {
    port = (await stack.gateway()).port;
    await stack.worker();
  });
  afterAll(async () => {
    for (const p of peers) p.client.disconnect();
    await stack.close();
  });

  it('sendToAll, sendToUid, bindUid and isUidOnline', async () => {
    const alice = await connectAs('alice');
    const bob = await connectAs('bob');
    await call(port, 'publish', { channel: all, data: { hello: 'everyone' } });
    await waitFor('both to get the broadcast', () => received(alice, all).length === 1 && received(bob, all).length === 1);

    await call(port, 'publish', { channel: 'user#bob', data: { hello: 'bob' } });
    await waitFor('bob to get his message', () => received(bob, 'user#bob').length === 1);
    expect(received(alice, 'user#bob')).toEqual([]);

    // isUidOnline: someone is present on the user's personal channel.
    const online = await call<{ num_clients: number }>(port, 'presence_stats', { channel: 'user#bob' });
    expect(online.num_clients).toBe(1);
    const offline = await call<{ num_clients: number }>(port, 'presence_stats', { channel: 'user#nobody' });
    expect(offline.num_clients).toBe(0);
  });

  it('joinGroup, sendToGroup, getClientIdCountByGroup, getUidListByGroup, leaveGroup', async () => {
    const group = uniqueChannel('group');
    const carol = await connectAs('carol');
    const dave = await connectAs('dave');
    await call(port, 'subscribe', { channel: group, user: 'carol', client: carol.clientId });
    await call(port, 'subscribe', { channel: group, user: 'dave' });
    await waitFor('the group to have two members', async () => {
      const stats = await call<{ num_clients: number }>(port, 'presence_stats', { channel: group });
      return stats.num_clients === 2;
    });
    const presence = await call<{ presence: Record<string, { user: string }> }>(port, 'presence', { channel: group });
    expect(Object.values(presence.presence).map((p) => p.user).sort()).toEqual(['carol', 'dave']);

    await call(port, 'publish', { channel: group, data: { to: 'group' } });
    await waitFor('both members to get the group message', () => received(carol, group).length === 1 && received(dave, group).length === 1);

    await call(port, 'unsubscribe', { channel: group, user: 'dave' });
    await waitFor('dave to leave the group', () => dave.unsubscribed.includes(group));
    await call(port, 'publish', { channel: group, data: { to: 'group', n: 2 } });
    await waitFor('carol to get the second message', () => received(carol, group).length === 2);
    expect(received(dave, group)).toHaveLength(1);
  });

  it('closeClient', async () => {
    const erin = await connectAs('erin');
    const codes: number[] = [];
    erin.client.on('disconnected', (ctx) => codes.push(ctx.code));
    await call(port, 'disconnect', { user: 'erin', client: erin.clientId });
    await waitFor('erin to be disconnected for good', () => codes.includes(3503));
  });
});
