import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeApi } from '../test/fakeApi';
import type { Me } from '../lib/types';
import Members from './Members';

// The flag service refuses (422 naming expires_in) a token that would outlive the expiring token
// creating it, and the dashboards sign in with an API token: the "New token" form must not offer
// what will be refused, and must still show the service's refusal at the field.

const H = 3_600_000;

function me(expiresAt: string | null): Me {
  return {
    organization: { id: 'o1', key: 'acme', name: 'Acme' },
    actor: { type: 'user', id: 'u1', name: 'ana@acme.test' },
    role: 'admin',
    token: { expires_at: expiresAt },
  };
}

function fakeServer(who: Me, post: (body?: Record<string, unknown>) => Response = (body) =>
  new Response(JSON.stringify({ id: 't9', token_id: 'x', kind: 'personal', name: body?.name, created_at: '', token: 'sy_pat_x_secret' }), { status: 201 })) {
  return fakeApi(
    { 'GET /api/v1/me': who, 'GET /api/v1/members': { items: [] }, 'GET /api/v1/tokens': { items: [] } },
    (method, url, body) => (method === 'POST' && url === '/api/v1/tokens' ? post(body) : undefined),
  );
}

async function openForm() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(<QueryClientProvider client={qc}><Members /></QueryClientProvider>);
  const user = userEvent.setup();
  await screen.findByText(/you are admin/);
  await user.click(screen.getByRole('button', { name: 'New token' }));
  const dialog = await screen.findByRole('dialog');
  await user.type(within(dialog).getByLabelText('Name'), 'laptop');
  return { user, dialog, expires: within(dialog).getByLabelText('Expires in') as HTMLInputElement, submit: within(dialog).getByRole('button', { name: 'Create token' }) };
}

const posted = (calls: ReturnType<typeof fakeApi>) => calls.filter((c) => c.method === 'POST' && c.url === '/api/v1/tokens').map((c) => c.body);

describe('New token form and the signed-in token’s expiry', () => {
  beforeEach(() => sessionStorage.setItem('switchyard.token', 'sy_test'));
  afterEach(() => vi.unstubAllGlobals());

  it('signed in with an expiring token: no “never”, the hint names the longest allowed, the default is capped to it', async () => {
    const expiresAt = new Date(Date.now() + 41.5 * H).toISOString();
    const calls = fakeServer(me(expiresAt));
    const { user, dialog, expires, submit } = await openForm();
    expect(expires).toHaveValue('41h');
    expect(expires).toBeRequired();
    expect(expires).toHaveAccessibleDescription(/^At most 41h: your sign-in token expires at .+, and a token it creates may not outlive it$/);
    expect(within(dialog).queryByText(/never/)).toBeNull();
    // Emptying the field would ask for a token that never expires: not offered.
    await user.clear(expires);
    expect(submit).toBeDisabled();
    await user.type(expires, '8h');
    await user.click(submit);
    await waitFor(() => expect(posted(calls)).toEqual([{ name: 'laptop', kind: 'personal', expires_in: '8h' }]));
  });

  it('sends the capped default as it is', async () => {
    const calls = fakeServer(me(new Date(Date.now() + 41.5 * H).toISOString()));
    const { user, submit } = await openForm();
    await user.click(submit);
    await waitFor(() => expect(posted(calls)).toEqual([{ name: 'laptop', kind: 'personal', expires_in: '41h' }]));
  });

  it('keeps the usual suggestion when the signed-in token outlives it', async () => {
    fakeServer(me(new Date(Date.now() + 2000.5 * H).toISOString()));
    const { expires } = await openForm();
    expect(expires).toHaveValue('720h');
    expect(expires).toHaveAccessibleDescription(/^At most 2000h: /);
  });

  it('under an hour left: whole minutes', async () => {
    fakeServer(me(new Date(Date.now() + 30 * 60_000 + 30_000).toISOString()));
    const { expires } = await openForm();
    expect(expires).toHaveValue('30m');
    expect(expires).toHaveAccessibleDescription(/^At most 30m: /);
  });

  it('under a minute left: says to sign in with a longer-lived token and cannot submit', async () => {
    fakeServer(me(new Date(Date.now() + 20_000).toISOString()));
    const { expires, submit } = await openForm();
    expect(expires).toHaveValue('');
    expect(expires).toHaveAccessibleDescription(/sign in with a longer-lived token/);
    expect(submit).toBeDisabled();
  });

  it('signed in with a token that never expires: 720h suggested, empty for never', async () => {
    const calls = fakeServer(me(null));
    const { user, expires, submit } = await openForm();
    expect(expires).toHaveValue('720h');
    expect(expires).not.toBeRequired();
    expect(expires).toHaveAccessibleDescription('e.g. 720h (30 days); empty for never');
    await user.clear(expires);
    await user.click(submit);
    await waitFor(() => expect(posted(calls)).toEqual([{ name: 'laptop', kind: 'personal' }]));
  });

  it('shows the service’s 422 at the expires in field', async () => {
    const message = 'must be at most 41h29m58s: the token making this request expires at 2026-11-28T05:30:00Z, and a token it creates may not outlive it';
    fakeServer(me(new Date(Date.now() + 41.5 * H).toISOString()),
      () => new Response(JSON.stringify({ error: { code: 'invalid_argument', message, field: 'expires_in' } }), { status: 422 }));
    const { user, dialog, expires, submit } = await openForm();
    await user.clear(expires);
    await user.type(expires, '100h');
    await user.click(submit);
    await waitFor(() => expect(expires).toHaveAttribute('aria-invalid', 'true'));
    expect(expires).toHaveAccessibleDescription(expect.stringContaining(message));
    expect(within(dialog).getByRole('alert')).toHaveTextContent(message);
  });
});

describe('Revoking a token', () => {
  beforeEach(() => sessionStorage.setItem('switchyard.token', 'sy_test'));
  afterEach(() => vi.unstubAllGlobals());

  it('offers to revoke the tokens created with it too, as the service names them, off by default', async () => {
    const t = (id: string, name: string, by?: string) => ({ id, token_id: id, kind: 'service', name, created_at: '', created_by_token: by });
    const calls = fakeApi(
      {
        'GET /api/v1/me': me(null), 'GET /api/v1/members': { items: [] },
        'GET /api/v1/tokens': { items: [t('t1', 'deploy bot'), t('t2', 'ci', 't1'), t('t3', 'nightly', 't2'), t('t4', 'other')] },
        // The service's answer, not the list's: "made while admin" is one this user cannot list.
        'GET /api/v1/tokens/t1/descendants': { items: [t('t2', 'ci', 't1'), t('t3', 'nightly', 't2'), t('t5', 'made while admin', 't1')] },
        'GET /api/v1/tokens/t2/descendants': { items: [t('t3', 'nightly', 't2')] },
        'GET /api/v1/tokens/t4/descendants': { items: [] },
      },
      (method) => (method === 'DELETE' ? new Response(null, { status: 204 }) : undefined),
    );
    const deleted = () => calls.filter((c) => c.method === 'DELETE').map((c) => c.url);
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(<QueryClientProvider client={qc}><Members /></QueryClientProvider>);
    const user = userEvent.setup();

    // The table says what each token was made with.
    const createdWith = (name: string) => within(screen.getByRole('rowheader', { name }).closest('tr')!).getAllByRole('cell')[4];
    expect(await waitFor(() => createdWith('nightly'))).toHaveTextContent(/^ci$/);
    expect(createdWith('ci')).toHaveTextContent(/^deploy bot$/);
    expect(createdWith('deploy bot')).toHaveTextContent(/^—$/);

    await user.click(await screen.findByRole('button', { name: 'Revoke token deploy bot' }));
    let dialog = await screen.findByRole('dialog');
    const also = await within(dialog).findByRole('checkbox', { name: 'Also revoke the 3 tokens created with it: “ci”, “nightly”, “made while admin”' });
    expect(also).not.toBeChecked();
    await user.click(also);
    await user.type(within(dialog).getByLabelText('Comment (recorded in the audit log)'), 'leaked in CI logs: 100% rotated');
    await user.click(within(dialog).getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(deleted()).toEqual(['/api/v1/tokens/t1?cascade=true']));
    // The comment goes with the revocation, percent-encoded for the header, not dropped.
    const sent = calls.find((c) => c.method === 'DELETE')!.comment!;
    expect(sent).toBe('leaked%20in%20CI%20logs%3A%20100%25%20rotated');
    expect(decodeURIComponent(sent)).toBe('leaked in CI logs: 100% rotated');

    await user.click(await screen.findByRole('button', { name: 'Revoke token ci' }));
    dialog = await screen.findByRole('dialog');
    expect(await within(dialog).findByRole('checkbox', { name: 'Also revoke the token created with it: “nightly”' })).not.toBeChecked(); // not carried over
    await user.click(within(dialog).getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(deleted()).toEqual(['/api/v1/tokens/t1?cascade=true', '/api/v1/tokens/t2']));
    expect(calls.filter((c) => c.method === 'DELETE')[1].comment).toBeUndefined(); // none typed: no header

    await user.click(await screen.findByRole('button', { name: 'Revoke token other' }));
    dialog = await screen.findByRole('dialog');
    await waitFor(() => expect(within(dialog).queryByText(/Looking for tokens/)).toBeNull());
    expect(within(dialog).queryByRole('checkbox')).toBeNull();
  });
});
