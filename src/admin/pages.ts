/**
 * The console's overview pages: login, nodes, queues and dead letters. Each renders what
 * an API method answered (./console.ts calls them), escaped through ./html.ts.
 */
import type { NodeInfo } from '../cluster/registry.js';
import type { WorkerInfo } from '../cluster/workers.js';
import type { PartitionStats } from '../ingest/client.js';
import type { FailedJob } from '../ingest/stats.js';
import type { DeadLetter } from '../webhooks/dead-letters.js';
import { html, type SafeHtml } from './html.js';
import { banner, cell, clip, duration, link, page, table } from './layout.js';

export function loginPage(error?: string): SafeHtml {
  return page(
    { title: 'Sign in' },
    html`${error === undefined ? '' : banner('error', error)}
<form method="post" action="/admin/login" class="login">
  <label for="password">Admin password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024" autofocus>
  <button type="submit">Sign in</button>
</form>`,
  );
}

export function errorPage(csrf: string | undefined, title: string, message: string): SafeHtml {
  return page(
    { title, csrf },
    html`${banner('error', message)}<p><a href="/admin/nodes">Back to the console</a></p>`,
  );
}

export function nodesPage(csrf: string, gateways: NodeInfo[], workers: WorkerInfo[]): SafeHtml {
  const gatewayRows = gateways.map((n) =>
    [
      n.name,
      n.uid,
      n.version,
      duration(n.uptime),
      n.num_clients,
      n.num_users,
      n.num_subs,
      n.num_channels,
    ].map(cell),
  );
  const workerRows = workers.map((w) =>
    [
      w.name,
      w.id,
      w.uptime === null ? '?' : duration(w.uptime),
      `${(w.last_seen_ms / 1000).toFixed(1)} s ago`,
      w.partitions.join(', ') || 'none',
    ].map(cell),
  );
  return page(
    { title: 'Nodes', section: 'nodes', csrf },
    html`<section>
<h2>Gateways <span class="count">${gateways.length}</span></h2>
${table(['Name', 'Uid', 'Version', 'Uptime', 'Connections', 'Users', 'Subscriptions', 'Channels'], gatewayRows, 'No gateway is alive.')}
</section>
<section>
<h2>Workers <span class="count">${workers.length}</span></h2>
${table(['Name', 'Id', 'Uptime', 'Last heartbeat', 'Partitions'], workerRows, 'No worker is alive: publications wait in the queues.')}
</section>`,
  );
}

export function queuesPage(csrf: string, partitions: PartitionStats[]): SafeHtml {
  const rows = partitions.map((p) => [
    cell(p.partition),
    cell(p.waiting),
    cell(p.active),
    cell(p.delayed),
    p.failed > 0 ? link('/admin/dead-letters', { partition: p.partition }, p.failed) : cell(0),
    cell(p.oldest_waiting_ms > 0 ? `${(p.oldest_waiting_ms / 1000).toFixed(1)} s` : '—'),
    cell(p.latency.samples > 0 ? `${p.latency.p50_ms} / ${p.latency.p99_ms} / ${p.latency.max_ms} ms` : '—'),
    cell(p.latency.samples),
  ]);
  return page(
    { title: 'Queues', section: 'queues', csrf },
    html`<p class="hint">One ingest queue per partition. Latency: publish to commit of this gateway's recent publications (p50 / p99 / max).</p>
${table(['Partition', 'Waiting', 'Active', 'Delayed', 'Failed', 'Oldest waiting', 'Latency', 'Samples'], rows, 'No partitions.')}`,
  );
}

export interface DeadLetterView {
  webhooks: { events: DeadLetter[]; total: number } | { error: string };
  partitions: PartitionStats[];
  /** The partition whose failed jobs are listed, with the page shown. */
  failed?: { partition: number; offset: number; jobs: FailedJob[]; total: number; pageSize: number };
}

export function deadLettersPage(csrf: string, view: DeadLetterView): SafeHtml {
  return page(
    { title: 'Dead letters', section: 'dead-letters', csrf },
    html`<section>
<h2>Failed ingest jobs</h2>
<p class="hint">Jobs a worker could never commit; their publishers got an error. Kept for inspection, never retried.</p>
${failedSummary(view.partitions)}
${view.failed ? failedJobsTable(view.failed) : ''}
</section>
<section>
<h2>Webhook dead letters</h2>
${webhookTable(view.webhooks)}
</section>`,
  );
}

function failedSummary(partitions: PartitionStats[]): SafeHtml {
  const failing = partitions.filter((p) => p.failed > 0);
  if (failing.length === 0) return html`<p class="empty">No failed ingest jobs.</p>`;
  return html`<ul class="inline">${failing.map((p) => html`<li>${link('/admin/dead-letters', { partition: p.partition }, `Partition ${p.partition}: ${p.failed}`)}</li>`)}</ul>`;
}

function failedJobsTable(view: NonNullable<DeadLetterView['failed']>): SafeHtml {
  const rows = view.jobs.map((j) =>
    [j.id, j.failed_at ?? '?', j.added_at, j.publications, j.channels.join(' '), clip(j.reason, 300)].map(
      cell,
    ),
  );
  const next =
    view.offset + view.pageSize < view.total
      ? link(
          '/admin/dead-letters',
          { partition: view.partition, offset: view.offset + view.pageSize },
          'Older →',
        )
      : '';
  return html`<h3>Partition ${view.partition} <span class="count">${view.total}</span></h3>
${table(['Job', 'Failed at', 'Added at', 'Publications', 'Channels', 'Reason'], rows, 'None on this page.')}
<p class="pager">${next}</p>`;
}

function webhookTable(webhooks: DeadLetterView['webhooks']): SafeHtml {
  if ('error' in webhooks) return banner('error', webhooks.error);
  const rows = webhooks.events.map((d) =>
    [d.dead_at, d.attempts, clip(d.error, 300)]
      .map(cell)
      .concat(html`<pre>${clip(JSON.stringify(d.event), 2000)}</pre>`),
  );
  return html`<p class="hint">${webhooks.total} in the list (newest first, up to 50 shown; API <code>webhook_dead_letters</code> for more).</p>
${table(['Given up at', 'Attempts', 'Last error', 'Event'], rows, 'No webhook dead letters.')}`;
}
