/**
 * The server API's HTTP surface (PROTOCOL.md F.1): API key in either header style, compared
 * in constant time; 401 with an empty body for a wrong, missing or unconfigured key; 405 for
 * anything but POST; 400 for a body that is not a JSON object; 413 for a body over 1 MiB;
 * 404 for an unknown method; and the transport error mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, API_KEY, namespacesFile, request } from '../helpers/api.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';

describe('server API: auth and HTTP surface', () => {
  const stack = new TestStack();
  let port = 0;
  let closedPort = 0;

  beforeAll(async () => {
    const config = await namespacesFile({ namespaces: { known: {} } });
    port = (await stack.gateway({ TIDINGS_API_KEY: API_KEY, TIDINGS_CONFIG: config })).port;
    closedPort = (await stack.gateway()).port; // TIDINGS_API_KEY unset
    await stack.worker();
  });
  afterAll(() => stack.close());

  it('accepts the key in X-API-Key and in Authorization: apikey (any case)', async () => {
    expect((await api(port, 'info', {}, { auth: 'x-api-key' })).status).toBe(200);
    expect((await api(port, 'info', {}, { auth: 'authorization' })).status).toBe(200);
    const mixedCase = await api(port, 'info', {}, { auth: 'none', headers: { authorization: `ApiKey ${API_KEY}` } });
    expect(mixedCase.status).toBe(200);
    expect(mixedCase.headers.get('content-type')).toBe('application/json');
    expect(mixedCase.body).toMatchObject({ result: { nodes: expect.any(Array) } });
  });

  it('answers 401 with an empty body to a missing, wrong or malformed key', async () => {
    const attempts = [
      await api(port, 'info', {}, { auth: 'none' }),
      await api(port, 'info', {}, { key: 'wrong' }),
      await api(port, 'info', {}, { auth: 'authorization', key: 'wrong' }),
      await api(port, 'info', {}, { auth: 'none', headers: { authorization: `Bearer ${API_KEY}` } }),
      await api(port, 'info', {}, { auth: 'none', headers: { authorization: `apikey ${API_KEY} extra` } }),
      await api(port, 'info', {}, { auth: 'none', headers: { authorization: `apikey ${API_KEY.slice(0, -1)}` } }),
      // X-API-Key, when present, is the only header looked at (as in Centrifugo).
      await api(port, 'info', {}, { key: 'wrong', headers: { authorization: `apikey ${API_KEY}` } }),
    ];
    for (const res of attempts) expect({ status: res.status, text: res.text }).toEqual({ status: 401, text: '' });
  });

  it('answers 401 to everything when TIDINGS_API_KEY is unset', async () => {
    for (const key of [API_KEY, '']) {
      const res = await api(closedPort, 'info', {}, { key });
      expect({ status: res.status, text: res.text }).toEqual({ status: 401, text: '' });
    }
    const legacy = await request(closedPort, '/api', {}, { raw: '{"method":"info"}' });
    expect({ status: legacy.status, text: legacy.text }).toEqual({ status: 401, text: '' });
  });

  it('answers 405 to methods other than POST, before checking the key', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await api(port, 'info', {}, { method, auth: 'none' });
      expect({ status: res.status, text: res.text }).toEqual({ status: 405, text: '' });
      expect(res.headers.get('allow')).toBe('POST');
    }
    expect((await request(port, '/api', {}, { method: 'GET' })).status).toBe(405);
  });

  it('answers 400 in plain text to a body that is not a JSON object', async () => {
    for (const raw of ['{not json', '[1,2]', '"text"', '42', '']) {
      const res = await api(port, 'publish', undefined, { raw });
      expect(res.status, `body ${JSON.stringify(raw)}`).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.text.trim()).toBe('Bad Request');
    }
  });

  it('answers 400 to a body nested deeper than 64 levels, at every endpoint, and keeps serving', async () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const channel = uniqueChannel('deep');
    for (const depth of [65, 1000, 400_000]) {
      const raw = `{"channel":"${channel}","data":${deep(depth)}}`;
      const res = await api(port, 'publish', undefined, { raw });
      expect(res.status, `depth ${depth}`).toBe(400);
      const legacy = await request(port, '/api', undefined, { auth: 'authorization', raw: `{"method":"publish","params":${raw}}` });
      expect(legacy.status, `legacy, depth ${depth}`).toBe(400);
    }
    // Data nested as deep as a client may send still goes through.
    const ok = await api(port, 'publish', undefined, { raw: `{"channel":"${channel}","data":${deep(60)}}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ result: { offset: 1 } });
  });

  it('answers 413 to a body over 1 MiB', async () => {
    const data = 'x'.repeat(1024 * 1024 + 1);
    const res = await api(port, 'publish', { channel: uniqueChannel('big'), data });
    expect(res.status).toBe(413);
    // The connection is still usable afterwards (the rest of the body was drained).
    expect((await api(port, 'info', {})).status).toBe(200);
  });

  it('answers 404 to an unknown method', async () => {
    expect((await api(port, 'no_such_method', {})).status).toBe(404);
  });

  it('answers errors as HTTP 200 with {"error"}, or as statuses in transport error mode', async () => {
    const cases: [string, unknown, number, number][] = [
      ['publish', { channel: '', data: 1 }, 107, 400],
      ['publish', { channel: 'unknownns:x', data: 1 }, 102, 404],
      ['history', { channel: uniqueChannel('h'), limit: 1, since: { offset: 0, epoch: 'otherepo' } }, 112, 416],
    ];
    for (const [method, params, code, status] of cases) {
      // history needs a stream with an epoch before a since.epoch can mismatch.
      if (method === 'history') {
        const channel = (params as { channel: string }).channel;
        expect((await api(port, 'publish', { channel, data: 1 })).status).toBe(200);
      }
      const plain = await api(port, method, params);
      expect(plain.status).toBe(200);
      expect(plain.body).toEqual({ error: { code, message: expect.any(String) } });

      const transport = await api(port, method, params, { headers: { 'x-centrifugo-error-mode': 'transport' } });
      expect(transport.status).toBe(status);
      expect(transport.body).toEqual({ code, message: (plain.body as { error: { message: string } }).error.message });
    }
    const ok = await api(port, 'info', {}, { headers: { 'x-centrifugo-error-mode': 'transport' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ result: { nodes: expect.any(Array) } });
  });
});
