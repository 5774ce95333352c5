import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeApi } from '../test/fakeApi';
import { experiment, metrics, snapshot } from '../test/fixtures';
import ExperimentResults from './ExperimentResults';

// The page against a fake server that speaks the documented API (docs/experiments-api.md).
function fakeServer(overrides: Record<string, unknown> = {}) {
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
  return fakeApi(routes);
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
    expect(guardrail).toHaveTextContent('Breach if it gets worse by more than 2.0%');
  });

  it('does not call a guardrail healthy while its results show a clear harm', async () => {
    fakeServer();
    renderPage();
    const guardrail = await screen.findByTestId('guardrail');
    // Error rate (lower is better) +27.8%, interval +4.6% to +50.9%: the monitor has not breached
    // (its always-valid test is stricter), but the page must not paint it healthy.
    expect(guardrail).toHaveTextContent('One-page: +27.8% (+4.6% to +50.9%), clearly worse');
    expect(guardrail).toHaveTextContent('not breached yet');
    expect(guardrail).not.toHaveTextContent('healthy');
  });

  it('puts a harmed or breached guardrail next to a good-looking verdict', async () => {
    fakeServer();
    renderPage();
    const lead = await screen.findByRole('region', { name: 'Verdict on the primary metric' });
    expect(await within(lead).findByTestId('guardrail-warning')).toHaveTextContent('Guardrail Error rate is clearly worse: see Guardrails below before deciding.');
    cleanup();
    const fine = structuredClone(snapshot);
    fine.metrics[2].variants[1] = { ...fine.metrics[2].variants[1], effect: 0.01, ci: [-0.2, 0.22], p_value: 0.93 };
    fakeServer({
      'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': fine,
      'GET /api/v1/projects/demo/environments/production/guardrails': { items: [{ id: 'g1', project: 'demo', environment: 'production', flag: 'new-checkout', experiment: 'new-checkout-q4', metric: 'error-rate', tolerance: 0.02, action: 'rollback', status: 'breached', breach: { at: '2026-11-12T09:00:00Z', effect: 0.05, interval: [0.03, 0.07], p_value: 0.0004, action_taken: 'serve_control' } }] },
    });
    renderPage();
    const again = await screen.findByRole('region', { name: 'Verdict on the primary metric' });
    expect(await within(again).findByTestId('guardrail-warning')).toHaveTextContent('Guardrail Error rate was breached: see Guardrails below before deciding.');
  });

  it('says when the latest results are not up to date because a refresh failed', async () => {
    const stale = structuredClone(snapshot);
    stale.refresh_error = { at: new Date(Date.now() - 10 * 60_000).toISOString(), message: 'clickhouse: memory limit exceeded' };
    fakeServer({ 'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': stale });
    renderPage();
    const notice = await screen.findByText('These results are not up to date');
    expect(notice.closest('[role]') ?? notice.parentElement).toHaveTextContent('Refreshing them failed 10 min ago (clickhouse: memory limit exceeded)');
    cleanup();
    fakeServer();
    renderPage();
    await screen.findByRole('region', { name: 'Verdict on the primary metric' });
    expect(screen.queryByText('These results are not up to date')).toBeNull();
  });

  it('states a breach from a control mean of 0 per user, not as a percentage', async () => {
    // The monitor tested the difference of means: the control had no errors at all.
    fakeServer({
      'GET /api/v1/projects/demo/environments/production/guardrails': { items: [{ id: 'g1', project: 'demo', environment: 'production', flag: 'new-checkout', experiment: 'new-checkout-q4', metric: 'error-rate', tolerance: 0.02, action: 'rollback', status: 'breached', breach: { at: '2026-11-12T09:00:00Z', effect: 0.0204, interval: [0.0113, 0.0295], p_value: 0.0004, absolute: true, action_taken: 'serve_control' } }] },
    });
    renderPage();
    const guardrail = await screen.findByTestId('guardrail');
    await within(guardrail).findByText(/Breached/);
    expect(guardrail).toHaveTextContent('+0.0204 per user from a control mean of 0');
    expect(guardrail).not.toHaveTextContent('+2.04%');
  });

  it('calls a guardrail healthy when its results show no harm', async () => {
    const fine = structuredClone(snapshot);
    fine.metrics[2].variants[1] = { ...fine.metrics[2].variants[1], effect: 0.01, ci: [-0.2, 0.22], p_value: 0.93 };
    fakeServer({ 'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': fine });
    renderPage();
    const guardrail = await screen.findByTestId('guardrail');
    expect(guardrail).toHaveTextContent('One-page: +1.0% (−20.0% to +22.0%)');
    expect(guardrail).toHaveTextContent('healthy');
  });

  it('says when intervals are adjusted for multiple comparisons', async () => {
    fakeServer({
      'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': { ...snapshot, analysis: { ...snapshot.analysis, correction: 'holm' } },
    });
    renderPage();
    await screen.findByTestId('lead-verdict');
    // Primary and secondary metrics are corrected together; guardrails are analysed apart, uncorrected.
    expect(screen.getByText(/adjusted for testing 2 comparisons at once \(Holm–Bonferroni\)/)).toBeInTheDocument();
  });

  it('never tells a product manager a chance to win is 100%', async () => {
    const bayes = structuredClone(snapshot);
    bayes.analysis = { ...bayes.analysis!, engine: 'bayesian' };
    bayes.metrics[0].variants[1] = { ...bayes.metrics[0].variants[1], p_value: null, chance_to_win: 0.9996, risk: { control: 0.1, treatment: 0.00001 } };
    fakeServer({ 'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': bayes });
    renderPage();
    await screen.findByTestId('lead-verdict');
    const lead = screen.getByRole('region', { name: 'Verdict on the primary metric' });
    expect(lead).toHaveTextContent('there is a > 99.9% probability that on is really better');
    expect(lead).not.toHaveTextContent('100%');
  });

  it('says users exposed to several variations are left out, as the stats service does', async () => {
    fakeServer({
      'GET /stats/v1/projects/demo/experiments/new-checkout-q4/results': {
        ...snapshot, data_quality: { ...snapshot.data_quality, multiple_exposures: { contexts: 412, fraction: 0.0198, flagged: true } },
      },
    });
    renderPage();
    const notice = await screen.findByText(/were exposed to several variations/);
    expect(notice).toHaveTextContent('412 users (1.98%) were exposed to several variations');
    expect(notice).toHaveTextContent('They are left out of the results and of the user counts.');
    expect(notice).not.toHaveTextContent('counted in their first variation');
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
    // Nothing is decided for the product manager: no option starts selected.
    for (const radio of within(dialog).getAllByRole('radio')) expect(radio).not.toBeChecked();
    const submit = within(dialog).getByRole('button', { name: 'Conclude experiment' });
    expect(submit).toBeDisabled();
    await user.type(within(dialog).getByLabelText('Why (kept with the experiment)'), 'Clear win');
    expect(submit).toBeDisabled();
    await user.click(within(dialog).getByRole('radio', { name: /Ship One-page/ }));
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

  describe('a draft: how long will it take?', () => {
    const draft = { ...experiment, status: 'draft', started_at: null, version: 1 };
    const estimateURL = (effect: string) => `GET /stats/v1/projects/demo/experiments/new-checkout-q4/estimate?effect=${effect}`;
    // Shaped like the stats service's answer for checkout-conversion at an 11.2% baseline.
    const estimate5 = {
      metric: 'checkout-conversion', effect: 0.05, baseline_mean: 0.112, baseline_variance: 0.099456, units_per_day: 1786.4,
      per_variant_n: 49745, total_n: 99490, days: 55.69, planned_days: 14, mde_at_planned_days: 0.09981, power: 0.8, lookback_days: 14,
    };
    const estimate10 = { ...estimate5, effect: 0.1, per_variant_n: 12437, total_n: 24874, days: 13.92, power: 0.8001 };
    const draftServer = (overrides: Record<string, unknown> = {}) =>
      fakeServer({ 'GET /api/v1/projects/demo/experiments/new-checkout-q4': draft, [estimateURL('0.05')]: estimate5, [estimateURL('0.1')]: estimate10, ...overrides });
    const estimateCalls = (calls: { url: string }[]) => calls.filter((c) => c.url.includes('/estimate')).map((c) => c.url.split('?')[1]);

    it('shows the users and days needed for a 5% change, and whether that fits the plan', async () => {
      const calls = draftServer();
      renderPage();
      const card = (await screen.findByRole('heading', { name: 'How long will it take?' })).closest('section')!;
      expect(within(card).getByLabelText('Change to detect (relative, %)')).toHaveValue('5');
      const summary = await within(card).findByTestId('estimate-summary');
      expect(summary).toHaveTextContent(
        'To reliably detect a 5.0% change in Checkout conversion, the experiment needs about 49,745 users per variation (99,490 in total). ' +
          'At the flag’s recent traffic of 1,786 users a day, that takes about 56 days.',
      );
      expect(within(card).getByText('Users per variation').nextSibling).toHaveTextContent('49,745');
      expect(within(card).getByText('Users in total').nextSibling).toHaveTextContent('99,490');
      expect(within(card).getByText('Time at recent traffic').nextSibling).toHaveTextContent('about 56 days');
      expect(within(card).getByRole('status', { name: 'Longer than the planned 14 days' })).toBeInTheDocument();
      expect(within(card).getByTestId('estimate-mde')).toHaveTextContent('In the planned 14 days, the smallest change it can reliably detect in Checkout conversion is 10.0%');
      const baseline = within(card).getByTestId('estimate-baseline');
      expect(baseline).toHaveTextContent('Based on Checkout conversion over the last 14 days of traffic on flag new-checkout: a rate of 11.2%.');
      expect(baseline).toHaveTextContent('80% power at a 5% significance level');
      expect(estimateCalls(calls)).toEqual(['effect=0.05']);
    });

    it('asks again when the effect changes', async () => {
      const calls = draftServer();
      const user = userEvent.setup();
      renderPage();
      await screen.findByTestId('estimate-summary');
      const input = screen.getByLabelText('Change to detect (relative, %)');
      await user.clear(input);
      await user.type(input, '10');
      await waitFor(() => expect(screen.getByTestId('estimate-summary')).toHaveTextContent('To reliably detect a 10.0% change in Checkout conversion, the experiment needs about 12,437 users per variation (24,874 in total)'));
      expect(screen.getByTestId('estimate-summary')).toHaveTextContent('that takes about 14 days');
      expect(screen.getByRole('status', { name: 'Fits in the planned 14 days' })).toBeInTheDocument();
      expect(estimateCalls(calls).at(-1)).toBe('effect=0.1');
    });

    it('says what is wrong with an effect that is not a positive number, without asking the service', async () => {
      const calls = draftServer();
      const user = userEvent.setup();
      renderPage();
      await screen.findByTestId('estimate-summary');
      const input = screen.getByLabelText('Change to detect (relative, %)');
      await user.clear(input);
      await user.type(input, '0');
      await waitFor(() => expect(input).toHaveAccessibleDescription(/must be more than 0%/));
      expect(screen.queryByTestId('estimate-summary')).toBeNull();
      await user.clear(input);
      await user.type(input, 'lots');
      await waitFor(() => expect(input).toHaveAccessibleDescription(/must be a number of percent/));
      expect(input).toHaveAttribute('aria-invalid', 'true');
      expect(estimateCalls(calls)).toEqual(['effect=0.05']);
    });

    it('shows the service’s 400 about the effect at the field, other failures as a banner', async () => {
      const noBaseline = 'no baseline: the flag served no contexts in the last 14 days';
      draftServer({
        [estimateURL('0.05')]: () =>
          new Response(JSON.stringify({ error: { code: 'invalid_argument', message: noBaseline, field: 'effect' } }), { status: 400 }),
      });
      renderPage();
      const input = await screen.findByLabelText('Change to detect (relative, %)');
      await waitFor(() => expect(input).toHaveAccessibleDescription(new RegExp(noBaseline)));
      expect(input).toHaveAttribute('aria-invalid', 'true');
      expect(screen.queryByText('The estimate could not be computed')).toBeNull();
      cleanup();
      draftServer({
        [estimateURL('0.05')]: () => new Response(JSON.stringify({ error: { code: 'unavailable', message: 'clickhouse: connection refused' } }), { status: 503 }),
      });
      renderPage();
      const banner = (await screen.findByText('The estimate could not be computed')).closest('[role="alert"]')!;
      expect(banner).toHaveTextContent('clickhouse: connection refused');
      expect(screen.getByLabelText('Change to detect (relative, %)')).not.toHaveAttribute('aria-invalid');
    });

    it('starts after confirmation, then shows the running experiment', async () => {
      let current: unknown = draft;
      const running = { ...experiment, status: 'running', started_at: '2026-11-12T10:00:00Z', version: 2 };
      const calls = draftServer({
        'GET /api/v1/projects/demo/experiments/new-checkout-q4': () => new Response(JSON.stringify(current), { status: 200 }),
        'POST /api/v1/projects/demo/experiments/new-checkout-q4/start': () => {
          current = running;
          return new Response(JSON.stringify(running), { status: 200 });
        },
      });
      const user = userEvent.setup();
      renderPage();
      expect(await screen.findByText('This experiment has not started')).toBeInTheDocument();
      await user.click(screen.getByRole('button', { name: 'Start experiment…' }));
      const dialog = await screen.findByRole('dialog');
      expect(dialog).toHaveTextContent('Starting changes flag new-checkout in production: it is turned on and serves the experiment’s split (off 50.0%, on 50.0%)');
      expect(dialog).toHaveTextContent('In a critical environment, starting may need a project admin.');
      expect(calls.filter((c) => c.method === 'POST')).toEqual([]);
      await user.click(within(dialog).getByRole('button', { name: 'Start experiment' }));
      await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
      expect(calls.filter((c) => c.method === 'POST').map((c) => c.url)).toEqual(['/api/v1/projects/demo/experiments/new-checkout-q4/start']);
      expect(await screen.findByTestId('lead-verdict')).toBeInTheDocument();
      expect(screen.queryByText('This experiment has not started')).toBeNull();
      expect(screen.getByRole('button', { name: 'Stop collecting' })).toBeInTheDocument();
      expect(screen.queryByRole('button', { name: 'Start experiment…' })).toBeNull();
      expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent('running');
    });

    it('shows why the service refused to start', async () => {
      const message = 'flag "new-checkout" in production changed since the experiment was created: its fallthrough serves experiment "checkout-q1"';
      draftServer({
        'POST /api/v1/projects/demo/experiments/new-checkout-q4/start': () =>
          new Response(JSON.stringify({ error: { code: 'failed_precondition', message, field: 'flag' } }), { status: 412 }),
      });
      const user = userEvent.setup();
      renderPage();
      await user.click(await screen.findByRole('button', { name: 'Start experiment…' }));
      const dialog = await screen.findByRole('dialog');
      await user.click(within(dialog).getByRole('button', { name: 'Start experiment' }));
      const banner = (await within(dialog).findByText('The experiment could not be started')).closest('[role="alert"]')!;
      expect(banner).toHaveTextContent(message);
      expect(screen.getByText('This experiment has not started')).toBeInTheDocument();
    });

    it('is not shown once the experiment runs', async () => {
      const calls = fakeServer({ [estimateURL('0.05')]: estimate5 });
      renderPage();
      await screen.findByTestId('lead-verdict');
      expect(screen.queryByRole('heading', { name: 'How long will it take?' })).toBeNull();
      expect(estimateCalls(calls)).toEqual([]);
    });
  });
});
