/**
 * TCP ports for private servers. We pick ports *below* the kernel's ephemeral range: a port
 * from that range can be taken, between a kill and a restart, as the local port of some
 * client's outgoing connection (reconnect loops make thousands), and the restart would then
 * fail with EADDRINUSE.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { waitUntil } from './wait.js';

const LOWEST_PORT = 10_000;
const ATTEMPTS = 50;

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const [low, high] = candidateRange();
  if (high - low >= 1000) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = low + Math.floor(Math.random() * (high - low));
      if (await isPortFree(port)) return port;
    }
  }
  return osPickedPort();
}

/** True when we could listen on 127.0.0.1:port ourselves (TIME_WAIT does not count: SO_REUSEADDR). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export function waitPortFree(port: number, timeoutMs = 30_000): Promise<void> {
  return waitUntil(() => isPortFree(port), { what: `port ${port} to be free`, timeoutMs });
}

/** [from, to): the ports below the ephemeral range (Linux default 32768–60999). */
function candidateRange(): [number, number] {
  try {
    const text = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = Number.parseInt(text.trim().split(/\s+/)[0] ?? '', 10);
    if (Number.isFinite(low)) return [LOWEST_PORT, low];
  } catch {
    // Not Linux: fall through to the common default.
  }
  return [LOWEST_PORT, 32_768];
}

function osPickedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
