/**
 * A minimal client of the server HTTP API for tests: the raw response (status, headers, text)
 * so tests can check the wire, and `call` for the common "expect a result" case.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NamespaceFile } from '../../src/config/namespaces.js';

// 32+ characters: the config refuses shorter API keys (issue 9).
export const API_KEY = 'test-api-key-0123456789abcdef-0123456789';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, when it is JSON. */
  body: unknown;
}

export interface RequestOptions {
  /** Header style; 'none' sends no key. */
  auth?: 'x-api-key' | 'authorization' | 'none';
  key?: string;
  method?: string;
  headers?: Record<string, string>;
  /** Sent as is instead of JSON-encoding `params`. */
  raw?: string | Buffer;
}

export async function request(port: number, path: string, params: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
  const key = opts.key ?? API_KEY;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if ((opts.auth ?? 'x-api-key') === 'x-api-key') headers['x-api-key'] = key;
  else if (opts.auth === 'authorization') headers.authorization = `apikey ${key}`;
  const method = opts.method ?? 'POST';
  const body = method === 'GET' || method === 'HEAD' ? undefined : (opts.raw ?? JSON.stringify(params));
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** `POST /api/<method>`; the raw response. */
export function api(port: number, method: string, params: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
  return request(port, `/api/${method}`, params, opts);
}

/** Calls a method and returns its `result`; fails with the body when it is not a 200 result. */
export async function call<T = Record<string, unknown>>(port: number, method: string, params: unknown): Promise<T> {
  const res = await api(port, method, params);
  const body = res.body as { result?: T } | undefined;
  if (res.status !== 200 || body?.result === undefined) {
    throw new Error(`${method} did not return a result: HTTP ${res.status} ${res.text}`);
  }
  return body.result;
}

/** Calls a method that must fail; returns its `error`. */
export async function callError(port: number, method: string, params: unknown): Promise<{ code: number; message: string }> {
  const res = await api(port, method, params);
  const body = res.body as { error?: { code: number; message: string } } | undefined;
  if (res.status !== 200 || !body?.error) throw new Error(`${method} did not return an error: HTTP ${res.status} ${res.text}`);
  return body.error;
}

/** Writes a TIDINGS_CONFIG file and returns its path. */
export async function namespacesFile(file: NamespaceFile): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-api-config-'));
  const path = join(dir, 'tidings.json');
  await writeFile(path, JSON.stringify(file));
  return path;
}
