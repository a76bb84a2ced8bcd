/**
 * The gateway's HTTP server against clients that never finish a request (slowloris): a request
 * that has not fully arrived within its time is answered 408 and its socket closed, while a
 * socket past its request (upgraded to a WebSocket) stays open however long it lives.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';

const TIMEOUT_MS = 400;
let server: HttpServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(): Promise<number> {
  server = new HttpServer({
    ready: async () => true,
    upgrade: (_req, socket) => {
      socket.on('end', () => socket.destroy()); // as ws does when the client goes
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      return true;
    },
    log: createLogger('silent'),
    requestTimeoutMs: TIMEOUT_MS,
  });
  // Reads the whole body before answering, as the API does.
  server.route('POST /body', (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  return server.listen(0, '127.0.0.1');
}

/** A raw socket that has sent `text`; resolves with everything it received once closed. */
async function rawClient(port: number, text: string): Promise<{ socket: Socket; closed: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const closed = once(socket, 'close').then(() => received);
  socket.write(text);
  return { socket, closed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('HTTP server request timeout', () => {
  it('answers 408 and closes a request whose body never finishes', async () => {
    const port = await start();
    const { closed } = await rawClient(port, 'POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    expect(await closed).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a request whose headers never finish', async () => {
    const port = await start();
    const { closed } = await rawClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    await closed;
  });

  it('still answers complete requests, and leaves an upgraded socket open past the timeout', async () => {
    const port = await start();
    const health = await rawClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await health.closed).toMatch(/^HTTP\/1\.1 200/);

    const upgraded = await rawClient(
      port,
      'GET /connection/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
    let open = true;
    void upgraded.closed.then(() => (open = false));
    try {
      await sleep(TIMEOUT_MS * 5);
      expect(open).toBe(true);
    } finally {
      upgraded.socket.destroy();
    }
  });
});
