/**
 * Calls to the daemon's /api/v1, same origin, with the session cookie. Every state-changing
 * request carries the session's CSRF token; a reason, where the caller's role needs one,
 * goes in the X-Tallenne-Reason header (or the `reason` parameter). Errors arrive as
 * `{ error: { code, message } }`.
 */
export const API = '/api/v1';

export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiFailure';
  }
}

const LATIN1 = /^[\x20-\x7e\xa0-\xff]*$/;

let csrfToken: string | undefined;
let onUnauthenticated: () => void = () => {};

export function setCsrfToken(t: string | undefined): void {
  csrfToken = t;
}

/** Called when a request finds the session gone (401): the page shows the login again. */
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  reason?: string;
  /** Do not treat a 401 as the end of the session (the login call itself). */
  quiet401?: boolean;
}

export function url(path: string, query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return `${API}${path}${s ? `?${s}` : ''}`;
}

export async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const query = { ...opts.query };
  // A header carries Latin-1 only; a reason in any other script goes as the `reason` parameter.
  if (opts.reason && LATIN1.test(opts.reason)) headers['x-tallenne-reason'] = opts.reason;
  else if (opts.reason) query.reason = opts.reason;
  const res = await fetch(url(path, query), {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const failure = new ApiFailure(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText);
    if (res.status === 401 && !opts.quiet401) onUnauthenticated();
    throw failure;
  }
  return parsed as T;
}

/** The same-origin audio URL; the session cookie authenticates it, so it holds no secret. */
export function audioUrl(id: string, extra: { reason?: string; format?: 'wav' | 'mp3' } = {}): string {
  return url(`/recordings/${encodeURIComponent(id)}/audio`, { format: extra.format, reason: extra.reason });
}
