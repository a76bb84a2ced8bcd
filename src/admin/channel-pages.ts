/**
 * Channel pages: search by prefix, and one channel's position, presence, publications (newest
 * first, paged back), publish and history-removal forms, and the live view. Everything shown
 * here was written by clients or backends; ./html.ts escapes it.
 */
import { html, type SafeHtml } from './html.js';
import { banner, cell, clip, csrfField, link, page, table } from './layout.js';

/** Characters of one publication's data shown; the rest is summarised. */
const DATA_CHARS = 4000;

export interface ChannelHit {
  channel: string;
  epoch: string;
  offset: number;
  created_at: string;
}

export function channelsPage(
  csrf: string,
  prefix: string,
  hits: ChannelHit[] | undefined,
  next: string,
): SafeHtml {
  const rows = (hits ?? []).map((h) => [
    link('/admin/channel', { name: h.channel }, h.channel),
    cell(h.offset),
    cell(h.epoch),
    cell(h.created_at),
  ]);
  const results =
    hits === undefined
      ? ''
      : table(['Channel', 'Top offset', 'Epoch', 'Created'], rows, 'No channel starts with this.');
  const more = next
    ? html`<p class="pager">${link('/admin/channels', { prefix, after: next }, 'Next page →')}</p>`
    : '';
  return page(
    { title: 'Channels', section: 'channels', csrf },
    html`<form method="get" action="/admin/channels" class="search" role="search">
  <label for="prefix">Name starts with</label>
  <input id="prefix" name="prefix" value="${prefix}" maxlength="255" placeholder="chat:">
  <button type="submit">Search</button>
</form>
<p class="hint">Channels that ever had a publication, from PostgreSQL, in byte order.</p>
${results}${more}`,
  );
}

export interface Publication {
  offset: number;
  data?: unknown;
  info?: { user?: string; client?: string };
  tags?: Record<string, string>;
}

export interface ChannelView {
  channel: string;
  epoch: string;
  top: number;
  publications: Publication[];
  /** The `before` of the next (older) page, when there is one. */
  older: number | undefined;
  presence: { clients: { client: string; user: string }[]; users: number } | { error: string };
  notice?: string | undefined;
  historyError?: string | undefined;
}

export function channelPage(csrf: string, view: ChannelView): SafeHtml {
  return page(
    { title: `Channel ${view.channel}`, section: 'channels', csrf },
    html`${view.notice ? banner('notice', view.notice) : ''}
<dl class="facts">
  <dt>Top offset</dt><dd id="top-offset">${view.top}</dd>
  <dt>Epoch</dt><dd id="epoch">${view.epoch || '—'}</dd>
</dl>
<div class="columns">
<section>
<h2>Live</h2>
<p id="live-state" class="hint" data-state="idle">Starting…</p>
<ol id="live" class="pubs" data-channel="${view.channel}" aria-live="polite"></ol>
</section>
<section>
<h2>Publish</h2>
${publishForm(csrf, view.channel)}
</section>
</div>
<section>
<h2>Presence</h2>
${presenceBlock(view.presence)}
</section>
<section>
<h2>Publications</h2>
${view.historyError ? banner('error', view.historyError) : publicationsBlock(view)}
${removeForm(csrf, view.channel)}
</section>`,
  );
}

function publishForm(csrf: string, channel: string): SafeHtml {
  return html`<form method="post" action="/admin/publish" class="publish">${csrfField(csrf)}
  <input type="hidden" name="channel" value="${channel}">
  <label for="data">Data (JSON)</label>
  <textarea id="data" name="data" rows="4" required maxlength="65536">{"text": "hello"}</textarea>
  <button type="submit" id="publish">Publish</button>
</form>`;
}

function removeForm(csrf: string, channel: string): SafeHtml {
  return html`<form method="post" action="/admin/history-remove" class="danger" data-confirm="Remove every stored publication of this channel? Offsets and epoch stay.">${csrfField(csrf)}
  <input type="hidden" name="channel" value="${channel}">
  <button type="submit">Remove history</button>
</form>`;
}

function presenceBlock(presence: ChannelView['presence']): SafeHtml {
  if ('error' in presence) return html`<p class="empty">${presence.error}</p>`;
  const rows = presence.clients.map((c) => [cell(c.user), cell(c.client)]);
  return html`<p class="hint">${presence.clients.length} connections, ${presence.users} users.</p>
${table(['User', 'Client'], rows, 'Nobody is subscribed.')}`;
}

function publicationsBlock(view: ChannelView): SafeHtml {
  const rows = view.publications.map((p) => [
    cell(p.offset),
    cell(p.info ? `${p.info.user ?? ''} (${p.info.client ?? ''})` : 'API'),
    cell(p.tags ? JSON.stringify(p.tags) : ''),
    html`<pre>${clip(JSON.stringify(p.data, null, 2) ?? '', DATA_CHARS)}</pre>`,
  ]);
  const older =
    view.older === undefined
      ? ''
      : link('/admin/channel', { name: view.channel, before: view.older }, 'Older →');
  return html`${table(['Offset', 'Publisher', 'Tags', 'Data'], rows, 'No stored publication.')}
<p class="pager">${link('/admin/channel', { name: view.channel }, 'Newest')} ${older}</p>`;
}
