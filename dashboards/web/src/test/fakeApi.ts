import { vi } from 'vitest';

/** A request the page sent to the fake API. */
export interface Call {
  method: string;
  url: string;
  body?: Record<string, unknown>;
  auth?: string;
  comment?: string; // the X-Switchyard-Comment header, as sent (percent-encoded)
}

/**
 * Stubs fetch with a fake of the documented APIs: `routes` maps "METHOD url" to a JSON body
 * (200) or to a function answering the request; `handle`, when it returns a Response, answers
 * first. Anything else is a 404 in the services' error shape. Returns the calls, in order.
 */
export function fakeApi(
  routes: Record<string, unknown>,
  handle?: (method: string, url: string, body?: Record<string, unknown>) => Response | undefined,
): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    const headers = init.headers as Record<string, string> | undefined;
    calls.push({ method, url, body, auth: headers?.Authorization, comment: headers?.['X-Switchyard-Comment'] });
    const handled = handle?.(method, url, body);
    if (handled) return handled;
    const answer = routes[`${method} ${url}`];
    if (typeof answer === 'function') return answer();
    if (answer === undefined) return new Response(JSON.stringify({ error: { code: 'not_found', message: `no route ${method} ${url}` } }), { status: 404 });
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'Content-Type': 'application/json' } });
  });
  return calls;
}
