/**
 * The load generator's client of the server HTTP API (`POST /api/<method>`, X-API-Key):
 * `node:http` over a keep-alive Agent with one socket per request in flight, so no request
 * pays a TCP handshake once the sockets are open.
 *
 * Not `fetch`: Node 20's fetch (undici's, bundled) cost 380–575 µs of CPU per request on this
 * machine against 112–134 µs for `http.request` with a keep-alive Agent (client and a trivial
 * server in one process, 64 in flight, 20,000 POSTs of a publish body, two runs each). At the
 * 10,000/s T2 aims for, fetch alone would need more than the two cores, and T2 would measure
 * the load generator. `undici`'s own Pool is not a dependency.
 */
import http from 'node:http';
import { API_KEY } from './stack.js';

export class ApiClient {
  private readonly agent: http.Agent;

  /** `baseUrl`: http://host:port of one gateway; `sockets`: requests that may be in flight at once. */
  constructor(
    private readonly baseUrl: string,
    sockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** POSTs a JSON body to /api/<method>; resolves with the status and the body (never on a socket error). */
  post(method: string, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${this.baseUrl}/api/${method}`,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'x-api-key': API_KEY,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
