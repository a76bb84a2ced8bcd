/** GET /metrics: the Prometheus text format of every metric in this process. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderMetrics } from '../observability/metrics.js';

export async function metricsRoute(_req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { contentType, body } = await renderMetrics();
  res.writeHead(200, { 'content-type': contentType });
  res.end(body);
}
