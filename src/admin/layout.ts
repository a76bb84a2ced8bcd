/**
 * The frame of every console page, and the small pieces pages share. Server-rendered: the
 * pages work without script; ./assets.ts only adds the live view and confirmations.
 */
import { href, html, type SafeHtml } from './html.js';

export const SCRIPT_PATH = '/admin/static/admin.js';
export const STYLE_PATH = '/admin/static/admin.css';

export type Section = 'nodes' | 'queues' | 'dead-letters' | 'channels';

const NAV: [Section, string, string][] = [
  ['nodes', 'Nodes', '/admin/nodes'],
  ['queues', 'Queues', '/admin/queues'],
  ['dead-letters', 'Dead letters', '/admin/dead-letters'],
  ['channels', 'Channels', '/admin/channels'],
];

export interface Frame {
  title: string;
  section?: Section;
  /** The session's CSRF token; absent on the login page (no session yet). */
  csrf?: string;
}

export function page(frame: Frame, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${frame.title} — Tidings admin</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STYLE_PATH}">
<script src="${SCRIPT_PATH}" defer></script>
</head>
<body>
<header class="top">
  <strong class="brand">Tidings admin</strong>
  ${frame.csrf === undefined ? '' : nav(frame.section, frame.csrf)}
</header>
<main>
<h1>${frame.title}</h1>
${body}
</main>
</body>
</html>
`;
}

function nav(active: Section | undefined, csrf: string): SafeHtml {
  const links = NAV.map(
    ([section, label, path]) =>
      html`<a href="${path}"${section === active ? html` aria-current="page"` : ''}>${label}</a>`,
  );
  return html`<nav>${links}</nav>
  <form method="post" action="/admin/logout" class="logout">${csrfField(csrf)}<button type="submit">Sign out</button></form>`;
}

export function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

/** A table; `rows` already rendered cells. An empty table says so instead. */
export function table(headings: string[], rows: SafeHtml[][], empty: string): SafeHtml {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  const head = headings.map((h) => html`<th scope="col">${h}</th>`);
  const body = rows.map((cells) => html`<tr>${cells.map((c) => html`<td>${c}</td>`)}</tr>`);
  return html`<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function cell(value: unknown): SafeHtml {
  return html`${value}`;
}

export function link(
  path: string,
  query: Record<string, string | number | undefined>,
  text: unknown,
): SafeHtml {
  return html`<a href="${href(path, query)}">${text}</a>`;
}

/** 93784 → "1d 2h 3m". */
export function duration(seconds: number): string {
  const units: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'm'],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [size, unit] of units) {
    if (rest >= size || parts.length > 0) parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
  }
  return parts.length === 0 ? `${rest}s` : parts.slice(0, 3).join(' ');
}

/** An error or notice box; `kind` picks its colour and role. */
export function banner(kind: 'error' | 'notice', text: unknown): SafeHtml {
  return html`<p class="banner ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`;
}

/** Text cut to `max` characters, with how much was left out. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
