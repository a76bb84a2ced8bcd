/** Tokens and API keys never reach the logs, whatever a caller passes in. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../../src/observability/logger.js';

describe('logger redaction', () => {
  it('censors tokens, API keys and authorization headers', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    log.info({ token: 'eyJhbGciOi.secret', req: { token: 'x.y.z' }, apiKey: 'k1', headers: { authorization: 'apikey k2', 'x-api-key': 'k3' } }, 'hello');
    const line = lines.join('');
    for (const secret of ['eyJhbGciOi.secret', 'x.y.z', 'k1', 'apikey k2', 'k3']) expect(line).not.toContain(secret);
    expect(line).toContain('[redacted]');
  });
});
