import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeApi } from '../test/fakeApi';
import { metrics } from '../test/fixtures';
import ExperimentsList from './ExperimentsList';
import { evenSplit, toUnits } from './NewExperiment';

// The experiments list against a fake flag service that speaks docs/experiments-api.md and
// records what it is sent; `create` answers the POST.
function fakeServer(create: (body: Record<string, unknown>) => Response) {
  const routes: Record<string, unknown> = {
    'GET /api/v1/projects': { items: [{ id: 'p1', key: 'demo', name: 'Demo', description: '', environments: [
      { id: 'e1', key: 'staging', name: 'Staging', critical: false },
      { id: 'e2', key: 'production', name: 'Production', critical: true },
    ] }] },
    'GET /api/v1/projects/demo/flags?limit=500&lifecycle=all': { items: [
      { key: 'new-checkout', lifecycle: 'active', variations: [{ key: 'on', value: true }, { key: 'off', value: false }] },
      { key: 'old-banner', lifecycle: 'archived', variations: [{ key: 'a', value: 'a' }, { key: 'b', value: 'b' }] },
    ] },
    'GET /api/v1/projects/demo/metrics': { items: metrics },
    'GET /api/v1/projects/demo/experiments': { items: [] },
    'GET /api/v1/guardrails?status=breached': { items: [] },
    'GET /api/v1/members': { items: [] },
  };
  return fakeApi(routes, (method, url, body) => (method === 'POST' && url === '/api/v1/projects/demo/experiments' ? create(body ?? {}) : undefined));
}

const created = (body: Record<string, unknown>) =>
  new Response(JSON.stringify({ ...body, status: 'draft', analysis: { engine: 'frequentist', alpha: 0.05 }, version: 1 }), { status: 201 });

async function fillForm(user: ReturnType<typeof userEvent.setup>) {
  render(<QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}><ExperimentsList project="demo" /></QueryClientProvider>);
  await user.click(await screen.findByRole('button', { name: 'New experiment' }));
  const dialog = await screen.findByRole('dialog');
  const $ = within(dialog);
  await user.type($.getByLabelText('Key'), 'new-checkout-q4');
  await user.type($.getByLabelText('Name'), 'One-page checkout');
  await user.type($.getByLabelText('Hypothesis'), 'A shorter checkout converts better.');
  await waitFor(() => expect($.getByRole('option', { name: 'Production (critical)' })).toBeInTheDocument());
  await user.selectOptions($.getByLabelText('Environment'), 'production');
  await waitFor(() => expect($.getByRole('option', { name: 'new-checkout' })).toBeInTheDocument());
  expect($.queryByRole('option', { name: 'old-banner' })).toBeNull();
  await user.selectOptions($.getByLabelText('Flag'), 'new-checkout');
  await user.selectOptions($.getByLabelText('Role of Checkout conversion'), 'primary');
  await user.selectOptions($.getByLabelText('Role of Revenue per user'), 'secondary');
  await user.selectOptions($.getByLabelText('Role of Error rate'), 'guardrail');
  return $;
}

describe('New experiment dialog', () => {
  beforeEach(() => {
    sessionStorage.setItem('switchyard.token', 'sy_test');
    window.history.replaceState(null, '', '/p/demo/experiments');
  });
  afterEach(() => vi.unstubAllGlobals());

  it('creates a draft with an even split, the guardrail tolerance as a fraction and the duration in hours, then opens it', async () => {
    const calls = fakeServer(created);
    const user = userEvent.setup();
    const $ = await fillForm(user);
    // An even split over the flag's variations by default; the control is "off".
    expect($.getByLabelText('Weight of on (%)')).toHaveValue('50');
    expect($.getByLabelText('Weight of off (%)')).toHaveValue('50');
    expect($.getByLabelText('Control variation')).toHaveValue('off');
    expect($.getByLabelText('Tolerance of Error rate (%)')).toHaveValue('2');
    await user.selectOptions($.getByLabelText('On a breach of Error rate'), 'rollback');
    expect($.getByLabelText('Planned duration (days)')).toHaveValue('14');
    await user.click($.getByRole('button', { name: 'Create draft' }));
    await waitFor(() => expect(window.location.pathname).toBe('/p/demo/experiments/new-checkout-q4'));
    const posts = calls.filter((c) => c.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0].body).toEqual({
      key: 'new-checkout-q4', name: 'One-page checkout', hypothesis: 'A shorter checkout converts better.',
      environment: 'production', flag: 'new-checkout', control: 'off',
      variations: [{ variation: 'on', weight: 50000 }, { variation: 'off', weight: 50000 }],
      metrics: { primary: ['checkout-conversion'], secondary: ['revenue-per-user'], guardrails: [{ metric: 'error-rate', tolerance: 0.02, action: 'rollback' }] },
      planned_duration: '336h',
    });
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('refuses weights that do not add up to 100% without asking the service', async () => {
    const calls = fakeServer(created);
    const user = userEvent.setup();
    const $ = await fillForm(user);
    const on = $.getByLabelText('Weight of on (%)');
    await user.clear(on);
    await user.type(on, '60');
    await user.click($.getByRole('button', { name: 'Create draft' }));
    expect(await $.findByText('weights must add up to 100% (now 110%)')).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST')).toEqual([]);
    await user.clear($.getByLabelText('Weight of off (%)'));
    await user.type($.getByLabelText('Weight of off (%)'), '40');
    await user.click($.getByRole('button', { name: 'Create draft' }));
    await waitFor(() => expect(calls.filter((c) => c.method === 'POST')).toHaveLength(1));
    expect(calls.find((c) => c.method === 'POST')!.body!.variations).toEqual([{ variation: 'on', weight: 60000 }, { variation: 'off', weight: 40000 }]);
  });

  it('shows the service’s 422 at the field it names', async () => {
    const problems = [
      { field: 'metrics.guardrails[0].metric', label: 'Role of Error rate', message: 'metric "error-rate" is archived' },
      { field: 'key', label: 'Key', message: 'an experiment "new-checkout-q4" already exists' },
      { field: 'variations[1].weight', label: 'Weight of off (%)', message: 'must be between 1 and 100000' },
    ];
    for (const { field, label, message } of problems) {
      fakeServer(() => new Response(JSON.stringify({ error: { code: 'invalid_argument', message, field } }), { status: 422 }));
      const user = userEvent.setup();
      const $ = await fillForm(user);
      await user.click($.getByRole('button', { name: 'Create draft' }));
      const input = $.getByLabelText(label);
      await waitFor(() => expect(input).toHaveAccessibleDescription(new RegExp(message.replace(/[()[\]]/g, '\\$&'))));
      expect(input).toHaveAttribute('aria-invalid', 'true');
      // Placed at its field, so not repeated in a banner.
      expect($.getAllByText(message)).toHaveLength(1);
      expect(window.location.pathname).toBe('/p/demo/experiments');
      cleanup();
      vi.unstubAllGlobals();
    }
  });

  it('splits evenly in integer weights that sum to 100000', () => {
    const arms = ['a', 'b', 'c'].map((v) => ({ variation: v, included: true, pct: '' }));
    const split = evenSplit(arms);
    expect(split.map((a) => toUnits(a.pct))).toEqual([33334, 33333, 33333]);
    expect(evenSplit([...arms, { variation: 'd', included: false, pct: '10' }]).map((a) => a.pct)).toEqual(['33.334', '33.333', '33.333', '']);
  });
});
