import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { metrics } from '../test/fixtures';
import Metrics, { emptyMetric, validateMetric } from './Metrics';

// The catalog against a fake flag service that records what it is sent.
function fakeServer() {
  const calls: { method: string; url: string; body?: Record<string, unknown> }[] = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, url, body });
    const answer = method === 'GET' ? { items: metrics } : { ...body, version: 1 };
    return new Response(JSON.stringify(answer), { status: method === 'POST' ? 201 : 200, headers: { 'Content-Type': 'application/json' } });
  });
  return calls;
}

describe('Metrics catalog', () => {
  beforeEach(() => sessionStorage.setItem('switchyard.token', 'sy_test'));
  afterEach(() => vi.unstubAllGlobals());

  it('creates a ratio metric without a window, filters or CUPED of its own (the flag service refuses them)', async () => {
    const calls = fakeServer();
    const user = userEvent.setup();
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(<QueryClientProvider client={qc}><Metrics project="demo" /></QueryClientProvider>);
    await user.click(await screen.findByRole('button', { name: 'New metric' }));
    await user.type(screen.getByLabelText('Key'), 'revenue-per-conversion');
    await user.type(screen.getByLabelText('Name'), 'Revenue per conversion');
    await user.selectOptions(screen.getByLabelText('Kind'), 'ratio');
    expect(screen.queryByLabelText(/Counts events from/)).toBeNull();
    expect(screen.queryByLabelText(/CUPED/)).toBeNull();
    expect(screen.queryByRole('button', { name: 'Add filter' })).toBeNull();
    expect(screen.queryByLabelText('Cap outliers')).toBeNull();
    await user.selectOptions(screen.getByLabelText('Numerator metric'), 'revenue-per-user');
    await user.selectOptions(screen.getByLabelText('Denominator metric'), 'checkout-conversion');
    await user.click(screen.getByRole('button', { name: 'Create metric' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST')).toBe(true));
    const sent = calls.find((c) => c.method === 'POST')!.body!;
    expect(sent).toMatchObject({ kind: 'ratio', numerator: 'revenue-per-user', denominator: 'checkout-conversion' });
    for (const k of ['window', 'filters', 'cuped_preperiod', 'winsorize', 'event_key']) expect(sent).not.toHaveProperty(k);
  });

  it('does not check a ratio’s (absent) window, and checks everyone else’s', () => {
    const ratio = { ...emptyMetric, key: 'r', name: 'R', kind: 'ratio' as const, numerator: 'a', denominator: 'b', window: { start: '0s', end: '0s' }, cuped_preperiod: '0s' };
    expect(validateMetric(ratio, true)).toEqual({});
    expect(validateMetric({ ...ratio, kind: 'sum', event_key: 'e' }, true)).toHaveProperty(['window.end']);
  });
});
