import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { experiment, metrics, snapshot } from '../test/fixtures';
import ExperimentResults from './ExperimentResults';

// The page against a fake server that speaks the documented API (docs/experiments-api.md).
function fakeServer(overrides: Record<string, unknown> = {}) {
  const calls: { method: string; url: string; body?: unknown; auth?: string }[] = [];
  const routes: Record<string, unknown> = {
    'GET /api/v1/projects/demo/experiments/new-checkout-q4': experiment,
    'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': snapshot,
    'GET /api/v1/projects/demo/metrics?include_archived=true': { items: metrics },
    'GET /api/v1/projects/demo/flags/new-checkout': { key: 'new-checkout', variations: [{ key: 'on', value: true, name: 'One-page' }, { key: 'off', value: false, name: 'Classic' }], configs: {} },
    'GET /api/v1/projects/demo/environments/production/guardrails': { items: [{ id: 'g1', project: 'demo', environment: 'production', flag: 'new-checkout', experiment: 'new-checkout-q4', metric: 'error-rate', tolerance: 0.02, action: 'rollback', status: 'active' }] },
    'GET /stats/v1/projects/demo/experiments/new-checkout-q4/timeseries?metric=checkout-conversion': {
      points: [
        { computed_at: '2026-11-10T00:00:00Z', variation: 'on', effect: 0.12, ci_lower: -0.02, ci_upper: 0.26 },
        { computed_at: '2026-11-11T00:00:00Z', variation: 'on', effect: 0.11, ci_lower: 0.01, ci_upper: 0.21 },
      ],
    },
    'GET /api/v1/members': { items: [{ id: 'u1', email: 'pm@example.com', name: 'Pat PM', role: 'developer', created_at: '' }] },
    'POST /api/v1/projects/demo/experiments/new-checkout-q4/conclude': { ...experiment, status: 'concluded', decision: { outcome: 'ship', variation: 'on', rationale: 'Clear win', decided_by: 'u1', decided_at: '2026-11-12T10:00:00Z' } },
    ...overrides,
  };
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    calls.push({ method, url, body: init.body ? JSON.parse(String(init.body)) : undefined, auth: (init.headers as Record<string, string>)?.Authorization });
    const body = routes[`${method} ${url}`];
    if (body === undefined) return new Response(JSON.stringify({ error: { code: 'not_found', message: `no route ${method} ${url}` } }), { status: 404 });
    return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
  });
  return calls;
}

function renderPage() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <ExperimentResults project="demo" experimentKey="new-checkout-q4" />
    </QueryClientProvider>,
  );
}

describe('ExperimentResults page', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-12T10:00:00Z'));
    sessionStorage.setItem('switchyard.token', 'sy_test');
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('leads with a verdict a product manager can read', async () => {
    const calls = fakeServer();
    renderPage();
    expect(await screen.findByTestId('lead-verdict')).toHaveTextContent('One-page is better: +10.6% Checkout conversion, 95% CI +2.3% to +18.9%');
    const lead = screen.getByRole('region', { name: 'Verdict on the primary metric' });
    expect(lead).toHaveTextContent('Keep running 3 more days for the planned power');
    expect(lead).toHaveTextContent('can reliably detect a change of 8.2% or more in Checkout conversion');
    expect(within(lead).getByRole('group')).toHaveTextContent('How sure are we?');
    expect(screen.getByText(/Data quality checks passed/)).toBeInTheDocument();
    expect(calls.every((c) => c.auth === 'Bearer sy_test')).toBe(true);
  });

  it('switches engine view and shows secondary metrics and guardrails', async () => {
    fakeServer();
    const user = userEvent.setup();
    renderPage();
    await screen.findByTestId('lead-verdict');
    expect(screen.queryByText('Revenue per user')).not.toBeInTheDocument();
    await user.click(screen.getByRole('radio', { name: 'Bayesian' }));
    expect(screen.getByTestId('lead-verdict')).toHaveTextContent('One-page is likely better: +10.6% Checkout conversion, 99.4% chance to win');
    await user.click(screen.getByRole('checkbox', { name: 'Show secondary metrics' }));
    expect(screen.getByRole('table', { name: 'Secondary metrics' })).toHaveTextContent('Revenue per user');
    const guardrail = await screen.findByTestId('guardrail');
    expect(guardrail).toHaveTextContent('Error rate');
    expect(guardrail).toHaveTextContent('healthy');
    expect(guardrail).toHaveTextContent('Breach if it gets worse by more than 2.0%');
  });

  it('says when intervals are adjusted for multiple comparisons', async () => {
    fakeServer({
      'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': { ...snapshot, analysis: { ...snapshot.analysis, correction: 'holm' } },
    });
    renderPage();
    await screen.findByTestId('lead-verdict');
    expect(screen.getByText(/adjusted for testing 3 comparisons at once \(Holm–Bonferroni\)/)).toBeInTheDocument();
  });

  it('shows an SRM banner instead of trusting the numbers', async () => {
    fakeServer({
      'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': {
        ...snapshot,
        exposures: { off: 11000, on: 9400 },
        data_quality: { ...snapshot.data_quality, srm: { p_value: 0.00001, flagged: true, expected: { off: 0.5, on: 0.5 } } },
      },
    });
    renderPage();
    const banner = await screen.findByRole('alert', { name: /Sample ratio mismatch/ });
    expect(banner).toHaveTextContent('Classic got 53.9% (expected 50.0%)');
    expect(screen.getByTestId('lead-verdict')).toHaveTextContent('Results can’t be trusted');
  });

  it('concludes the experiment with a decision', async () => {
    const calls = fakeServer();
    const user = userEvent.setup();
    renderPage();
    await screen.findByTestId('lead-verdict');
    await user.click(screen.getByRole('button', { name: 'Conclude…' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('radio', { name: /Ship One-page/ })).toBeChecked();
    const submit = within(dialog).getByRole('button', { name: 'Conclude experiment' });
    expect(submit).toBeDisabled();
    await user.type(within(dialog).getByLabelText('Why (kept with the experiment)'), 'Clear win');
    await user.click(submit);
    await waitFor(() => expect(screen.getByText(/Decision: Shipped One-page to everyone/)).toBeInTheDocument());
    const post = calls.find((c) => c.method === 'POST');
    expect(post?.body).toEqual({ outcome: 'ship', variation: 'on', rationale: 'Clear win' });
  });

  it('says when a decision left the flag as it was, and why', async () => {
    const why = 'flag "new-checkout" in production was left as it is: its fallthrough serves experiment "checkout-q1"’s rollout now';
    fakeServer({ 'GET /api/v1/projects/demo/experiments/new-checkout-q4': { ...experiment, status: 'concluded',
      decision: { outcome: 'ship', variation: 'on', rationale: 'Clear win', decided_by: 'u1', decided_at: '2026-11-12T10:00:00Z', flag_unchanged: why } } });
    renderPage();
    expect(await screen.findByText(/Decision: Ship One-page \(the flag was not changed\)/)).toBeInTheDocument();
    expect(screen.getByTestId('flag-unchanged')).toHaveTextContent(why);
    expect(screen.queryByText(/Shipped One-page to everyone/)).toBeNull();
  });
});
