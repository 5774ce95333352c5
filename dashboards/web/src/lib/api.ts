import { clearToken, getToken } from './session';

// ApiError is the uniform error body of every Switchyard service,
// {"error":{"code","message","field"}}, plus the HTTP status.
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** The field an API error names, with its message, for a form to show at that field. */
export function fieldErrors(e: unknown): Record<string, string> {
  return isApiError(e) && e.field ? { [e.field]: e.message } : {};
}

/**
 * The form error to show above the buttons: an API error that names no field, or a field the
 * form does not show (fields mark themselves with data-field), so that no refusal goes unseen.
 */
export function unplacedError(e: unknown): ApiError | null {
  return isApiError(e) && (!e.field || !document.querySelector(`[data-field="${e.field}"]`)) ? e : null;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  ifMatch?: number;
  signal?: AbortSignal;
  token?: string; // sign-in checks a token before keeping it
  comment?: string; // why, for the audit log (X-Switchyard-Comment)
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = opts.token ?? getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.ifMatch !== undefined) headers['If-Match'] = `"${opts.ifMatch}"`;
  // A header carries Latin-1 only: the flag service takes the comment percent-encoded.
  if (opts.comment?.trim()) headers['X-Switchyard-Comment'] = encodeURIComponent(opts.comment.trim());
  let resp: Response;
  try {
    resp = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      credentials: 'omit',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'unavailable', 'Cannot reach the Switchyard server. Check your connection and try again.');
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!resp.ok) {
    const err = (data as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    if (resp.status === 401 && !opts.token) clearToken();
    throw new ApiError(resp.status, err?.code ?? `http_${resp.status}`, err?.message ?? `${resp.status} ${resp.statusText}`, err?.field);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, signal?: AbortSignal) => request<T>(path, { signal }),
  post: <T>(path: string, body?: unknown, ifMatch?: number) => request<T>(path, { method: 'POST', body: body ?? {}, ifMatch }),
  put: <T>(path: string, body: unknown, ifMatch?: number) => request<T>(path, { method: 'PUT', body, ifMatch }),
  patch: <T>(path: string, body: unknown, ifMatch?: number) => request<T>(path, { method: 'PATCH', body, ifMatch }),
  del: (path: string, comment?: string) => request<void>(path, { method: 'DELETE', comment }),
};

// Download fetches a file with the Authorization header and hands it to the browser as a
// download (a plain link could not carry the token).
export async function download(path: string, filename: string): Promise<void> {
  const token = getToken();
  const resp = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {}, credentials: 'omit' });
  if (!resp.ok) throw new ApiError(resp.status, `http_${resp.status}`, `Export failed: ${resp.status}`);
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const enc = encodeURIComponent;

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
