/**
 * HTML built so that escaping cannot be forgotten: `html` is a tagged template whose every
 * interpolated value is escaped, unless it is itself the result of `html` (already safe).
 * Channel names, publication data, failure reasons and presence info are all chosen by
 * whoever can publish or connect, so every one of them goes through here; the only
 * unescaped text is the templates' own.
 *
 * Values go in element content or in double-quoted attributes (escaping `"` and `'` covers
 * both), never in a script, a style, or an unquoted attribute. Links are built by `href`,
 * which encodes each query value.
 */

const BRAND = Symbol('safe html');

export interface SafeHtml {
  readonly [BRAND]: true;
  readonly text: string;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function isSafe(value: unknown): value is SafeHtml {
  return typeof value === 'object' && value !== null && BRAND in value;
}

function render(value: unknown): string {
  if (value === undefined || value === null || value === false) return '';
  if (isSafe(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let text = strings[0]!;
  values.forEach((value, i) => (text += render(value) + strings[i + 1]!));
  return { [BRAND]: true, text };
}

/** A path under /admin with its query, every value URL-encoded (the result is escaped where it is used). */
export function href(path: string, query: Record<string, string | number | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query))
    if (value !== undefined && value !== '') params.set(name, String(value));
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}
