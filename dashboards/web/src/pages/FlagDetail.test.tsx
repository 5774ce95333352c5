import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeApi } from '../test/fakeApi';
import { experiment } from '../test/fixtures';
import type { FlagEnvironment } from '../lib/types';
import FlagDetail from './FlagDetail';

// A flag serving a running experiment's split in its default rule, with a rule of its own that
// buckets organizations by an attribute under its own salt. The flag service now refuses (409)
// a configuration whose experiment rollout differs in any way from the stored one, and knows
// a rule's rollout by the rule's id: the page must send both back exactly as read.
const read: FlagEnvironment = {
  flag_key: 'new-checkout', environment_key: 'production', version: 7, updated_at: '2026-11-12T09:00:00Z',
  on: true, off_variation: 'off', prerequisites: [], targets: [], salt: 'new-checkout-salt',
  rules: [{
    id: 'r7k2m9x4qa', description: 'Enterprise pilots',
    clauses: [{ context_kind: 'org', attribute: 'plan', op: 'in', values: ['enterprise'] }],
    serve: { rollout: { context_kind: 'org', bucket_by: 'org_id', salt: 'pilot-2026', variations: [{ variation: 'off', weight: 25000 }, { variation: 'on', weight: 75000 }] } },
  }],
  // Variations in the experiment's order (control first), not the flag's (on, off).
  fallthrough: { rollout: { context_kind: 'user', salt: 'new-checkout-q4-8f3a', experiment_key: 'new-checkout-q4', variations: [{ variation: 'off', weight: 50000 }, { variation: 'on', weight: 50000 }] } },
};

function fakeServer(put: () => Response) {
  const routes: Record<string, unknown> = {
    'GET /api/v1/projects': { items: [{ id: 'p1', key: 'demo', name: 'Demo', description: '', environments: [{ id: 'e1', project_id: 'p1', project_key: 'demo', key: 'production', name: 'Production', color: '#b91c1c', critical: false, locked: false, position: 0, ruleset_version: 3 }] }] },
    'GET /api/v1/projects/demo/flags/new-checkout': {
      id: 'f1', project_id: 'p1', key: 'new-checkout', name: 'New checkout', description: '', tags: [], kind: 'boolean',
      variations: [{ key: 'on', value: true }, { key: 'off', value: false }], temporary: false, lifecycle: 'active', client_side: false, version: 2,
      created_at: '', updated_at: '', environments: { production: { on: true, version: 7 } }, configs: { production: read },
    },
    'GET /api/v1/projects/demo/flags?limit=500&lifecycle=all': { items: [] },
    'GET /api/v1/projects/demo/environments/production/segments': { items: [] },
    'GET /api/v1/projects/demo/experiments': { items: [experiment] },
    'GET /api/v1/members': { items: [] },
    'GET /api/v1/projects/demo/flags/new-checkout/environments/production/history?limit=20': { items: [] },
  };
  return fakeApi(routes, (method) => (method === 'PUT' ? put() : undefined));
}

function renderPage() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <FlagDetail project="demo" flagKey="new-checkout" />
    </QueryClientProvider>,
  );
}

describe('FlagDetail targeting with a running experiment', () => {
  beforeEach(() => sessionStorage.setItem('switchyard.token', 'sy_test'));
  afterEach(() => vi.unstubAllGlobals());

  it('saves an unrelated edit with every rollout and rule id exactly as read', async () => {
    const calls = fakeServer(() => new Response(JSON.stringify({ ...read, version: 8 }), { status: 200 }));
    const user = userEvent.setup();
    renderPage();
    const defaultRule = await screen.findByRole('group', { name: 'Everyone else gets' });
    // The experiment's split cannot be edited here (the service would refuse it), and says why.
    await waitFor(() => expect(within(defaultRule).getByTestId('experiment-rollout')).toHaveTextContent('The split of experiment “new-checkout-q4”: fixed until the experiment is concluded'));
    for (const v of ['on', 'off']) expect(within(defaultRule).getByLabelText(`${v} (%)`)).toBeDisabled();
    expect(within(defaultRule).getByRole('radio', { name: 'A variation' })).toBeDisabled();
    // The rule's own rollout (no experiment) stays editable.
    const pilot = screen.getByRole('listitem', { name: 'Rule 1' });
    expect(within(pilot).getByLabelText('on (%)')).toBeEnabled();

    // Unrelated edits: a value of the existing rule's condition, then a new rule.
    const values = within(pilot).getByLabelText('Values (comma-separated)');
    await user.clear(values);
    await user.type(values, 'enterprise, scale');
    await user.click(screen.getByRole('button', { name: 'Add rule' }));
    const added = screen.getByRole('listitem', { name: 'Rule 2' });
    await user.type(within(added).getByLabelText('Attribute'), 'email');
    await user.type(within(added).getByLabelText('Values (comma-separated)'), '@example.com');
    await user.click(screen.getByRole('button', { name: 'Save targeting' }));

    await waitFor(() => expect(calls.some((c) => c.method === 'PUT')).toBe(true));
    const put = calls.find((c) => c.method === 'PUT')!;
    expect(put.url).toBe('/api/v1/projects/demo/flags/new-checkout/environments/production');
    const body = put.body as unknown as FlagEnvironment;
    expect(body.version).toBe(7);
    expect(body.salt).toBe(read.salt);
    // toStrictEqual: a dropped or added key (salt, context_kind, bucket_by, experiment_key,
    // id) or a changed order of variations fails, as it fails in the flag service.
    expect(body.fallthrough).toStrictEqual(read.fallthrough);
    expect(body.rules).toHaveLength(2);
    expect(body.rules[0].id).toBe('r7k2m9x4qa');
    expect(body.rules[0].serve).toStrictEqual(read.rules[0].serve);
    expect(body.rules[0].clauses).toStrictEqual([{ context_kind: 'org', attribute: 'plan', op: 'in', values: ['enterprise', 'scale'] }]);
    expect(body.rules[1]).toStrictEqual({ clauses: [{ attribute: 'email', op: 'in', values: ['@example.com'] }], serve: { variation: 'on' } });
  });

  it('shows the flag service’s 409 for an experiment’s rollout, not as a version conflict', async () => {
    const message = 'this rollout is running experiment "new-checkout-q4"\'s split and cannot be changed while the experiment is not concluded';
    fakeServer(() => new Response(JSON.stringify({ error: { code: 'conflict', message, field: 'fallthrough.rollout' } }), { status: 409 }));
    const user = userEvent.setup();
    renderPage();
    const defaultRule = await screen.findByRole('group', { name: 'Everyone else gets' });
    await user.type(within(screen.getByRole('listitem', { name: 'Rule 1' })).getByLabelText('Description'), ' (EU)');
    await user.click(screen.getByRole('button', { name: 'Save targeting' }));
    // At the field it names, and for the page.
    expect(await within(defaultRule).findByText(message)).toBeInTheDocument();
    const banners = screen.getAllByRole('alert').filter((a) => a.textContent?.includes('Not saved'));
    expect(banners).toHaveLength(1);
    expect(banners[0]).toHaveTextContent(`Not saved: this change touches an experiment’s split, which is fixed until the experiment is concluded${message}`);
    expect(screen.queryByText(/Someone changed this flag meanwhile/)).not.toBeInTheDocument();
  });
});
