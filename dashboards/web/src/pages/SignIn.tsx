import { useState } from 'react';
import { Button, Field } from '../components/ui';
import { isApiError, request } from '../lib/api';
import { setToken } from '../lib/session';
import type { Me } from '../lib/types';

// Sign-in with an API token (the full login flow comes with accounts). The token is checked
// against the flag service and then kept in this tab's sessionStorage only.
export default function SignIn() {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <div className="w-full max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h1 className="text-xl font-semibold text-slate-900">Sign in to Switchyard</h1>
        <p className="mt-1 text-sm text-slate-600">
          Paste an API token. After <code className="rounded bg-slate-100 px-1">make up</code>, the owner’s token is in{' '}
          <code className="rounded bg-slate-100 px-1">.data/admin-token</code>.
        </p>
        <form
          className="mt-4 space-y-3"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            setError(undefined);
            try {
              await request<Me>('/api/v1/me', { token: token.trim() });
              setToken(token.trim());
            } catch (err) {
              setError(isApiError(err) && err.status === 401 ? 'This token is not valid (revoked, expired or mistyped).' : (err as Error).message);
            } finally {
              setBusy(false);
            }
          }}
        >
          <Field label="API token" error={error} hint="Kept only for this browser tab; closing the tab signs you out.">
            {(p) => (
              <input {...p} type="password" autoComplete="off" spellCheck={false} required autoFocus value={token} onChange={(e) => setTokenText(e.target.value)} />
            )}
          </Field>
          <Button type="submit" variant="primary" disabled={busy || !token.trim()} className="w-full justify-center">
            {busy ? 'Checking…' : 'Sign in'}
          </Button>
        </form>
      </div>
    </main>
  );
}
