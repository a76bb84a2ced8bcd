/**
 * A browser-less client of the admin console for tests: form posts, the session cookie, and
 * the CSRF token read from the pages, with redirects left unfollowed so tests see each 303.
 */

// 16+ characters: the config refuses shorter admin passwords.
export const ADMIN_PASSWORD = 'admin-password-0123456789';

export interface AdminResponse {
  status: number;
  headers: Headers;
  text: string;
}

export interface AdminRequest {
  method?: 'GET' | 'POST';
  cookie?: string;
  form?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
}

export async function adminFetch(
  port: number,
  path: string,
  opts: AdminRequest = {},
): Promise<AdminResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.cookie) headers.cookie = opts.cookie;
  let body = opts.body;
  if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    redirect: 'manual',
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** `name=value` of the session cookie a response set, or undefined. */
export function sessionOf(res: AdminResponse): string | undefined {
  const set = res.headers.get('set-cookie');
  return set?.split(';')[0];
}

/** Signs in; answers the `Cookie` header value to send afterwards. */
export async function signIn(port: number, password = ADMIN_PASSWORD): Promise<string> {
  const res = await adminFetch(port, '/admin/login', { form: { password } });
  const cookie = sessionOf(res);
  if (res.status !== 303 || !cookie)
    throw new Error(`sign-in failed: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  return cookie;
}

/** The CSRF token of a page (the hidden field every form carries). */
export function csrfOf(pageHtml: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(pageHtml);
  if (!match) throw new Error('no CSRF field in the page');
  return match[1]!;
}
