// Members & roles, and API tokens — as far as the flag service's API offers them.

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Badge, Button, Card, ConfirmDialog, CopyButton, ErrorBanner, Field, Modal, Notice, PageHeader, Spinner } from '../components/ui';
import { api, enc, isApiError } from '../lib/api';
import { dateTime, relativeTime } from '../lib/format';
import { keys, useMe, useMembers } from '../lib/queries';
import { cappedExpiresIn, expiryLimit } from '../lib/tokenExpiry';
import type { APIToken, Member, Role } from '../lib/types';

// The suggested lifetime of a new token, capped to the signed-in token's own expiry.
const SUGGESTED_EXPIRES_IN = '720h';
const SUGGESTED_MS = 720 * 3_600_000;

const roles: { role: Role; help: string }[] = [
  { role: 'owner', help: 'everything, including billing and owners' },
  { role: 'admin', help: 'members, service tokens, projects' },
  { role: 'project_admin', help: 'environments, SDK keys, critical environments' },
  { role: 'developer', help: 'flags, and changes in non-critical environments' },
  { role: 'viewer', help: 'read only' },
];

export default function Members() {
  const me = useMe();
  const members = useMembers();
  const qc = useQueryClient();
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<Member | null>(null);
  const canManage = me.data?.role === 'owner' || me.data?.role === 'admin';
  const changeRole = useMutation({
    mutationFn: ({ m, role }: { m: Member; role: Role }) => api.patch<Member>(`/api/v1/members/${enc(m.id)}`, { role }),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.members }),
  });
  const remove = useMutation({
    mutationFn: ({ m, comment }: { m: Member; comment: string }) => api.del(`/api/v1/members/${enc(m.id)}`, comment),
    onSuccess: () => { setRemoving(null); qc.invalidateQueries({ queryKey: keys.members }); },
  });
  return (
    <div className="space-y-4">
      <PageHeader title="Members & roles" subtitle={me.data ? `${me.data.organization.name} · you are ${me.data.role.replace('_', ' ')}` : undefined}
        actions={canManage && <Button variant="primary" onClick={() => setAdding(true)}>Add member</Button>} />
      <Card title="Members">
        {members.isPending ? <Spinner label="Loading members" /> : members.error ? <ErrorBanner error={members.error} /> : (
          <table className="w-full text-sm">
            <caption className="sr-only">Members</caption>
            <thead className="text-left text-xs uppercase text-slate-600"><tr><th scope="col" className="py-1">Member</th><th scope="col">Role</th><th scope="col">Since</th><th><span className="sr-only">Actions</span></th></tr></thead>
            <tbody className="divide-y divide-slate-100">
              {members.data.map((m) => (
                <tr key={m.id}>
                  <th scope="row" className="py-2 text-left font-medium">{m.name || m.email}<div className="text-xs font-normal text-slate-600">{m.email}</div></th>
                  <td>
                    {canManage ? (
                      <select aria-label={`Role of ${m.email}`} className="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm" value={m.role}
                        onChange={(e) => changeRole.mutate({ m, role: e.target.value as Role })}>
                        {roles.map((r) => <option key={r.role} value={r.role}>{r.role.replace('_', ' ')}</option>)}
                      </select>
                    ) : <Badge>{m.role.replace('_', ' ')}</Badge>}
                  </td>
                  <td>{dateTime(m.created_at)}</td>
                  <td className="text-right">{canManage && m.id !== me.data?.actor.id && <Button size="sm" variant="ghost" onClick={() => setRemoving(m)} aria-label={`Remove ${m.email}`}>Remove</Button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <ErrorBanner error={changeRole.error} />
        <dl className="mt-3 grid grid-cols-[auto_1fr] gap-x-3 text-xs text-slate-600">
          {roles.map((r) => <div key={r.role} className="contents"><dt className="font-medium">{r.role.replace('_', ' ')}</dt><dd>{r.help}</dd></div>)}
        </dl>
      </Card>
      <Tokens canManage={canManage} />
      {adding && <AddMember onClose={() => setAdding(false)} />}
      {removing && (
        <ConfirmDialog open onClose={() => setRemoving(null)} onConfirm={(comment) => remove.mutate({ m: removing, comment })} title={`Remove ${removing.email}?`} confirmLabel="Remove" danger busy={remove.isPending} error={remove.error}>
          They lose access at once; their personal tokens stop working.
        </ConfirmDialog>
      )}
    </div>
  );
}

function AddMember({ onClose }: { onClose: () => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('developer');
  const qc = useQueryClient();
  const add = useMutation({
    mutationFn: () => api.post<Member>('/api/v1/members', { email, name: name || undefined, role }),
    onSuccess: () => { qc.invalidateQueries({ queryKey: keys.members }); onClose(); },
  });
  const fe = (f: string) => (isApiError(add.error) && add.error.field === f ? add.error.message : undefined);
  return (
    <Modal open onClose={onClose} title="Add a member">
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); add.mutate(); }}>
        <Field label="Email" error={fe('email')}>{(p) => <input {...p} type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />}</Field>
        <Field label="Name" error={fe('name')}>{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} />}</Field>
        <Field label="Role" error={fe('role')}>{(p) => <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>{roles.map((r) => <option key={r.role} value={r.role}>{r.role.replace('_', ' ')} — {r.help}</option>)}</select>}</Field>
        <ErrorBanner error={add.error && !fe(isApiError(add.error) ? (add.error.field ?? '') : '') ? add.error : null} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={add.isPending}>Add member</Button></div>
      </form>
    </Modal>
  );
}

function Tokens({ canManage }: { canManage: boolean }) {
  const qc = useQueryClient();
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: ({ signal }) => api.get<{ items: APIToken[] }>('/api/v1/tokens', signal).then((r) => r.items) });
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<APIToken | null>(null);
  const [revoking, setRevoking] = useState<APIToken | null>(null);
  const [cascade, setCascade] = useState(false);
  const startRevoking = (t: APIToken | null) => { setRevoking(t); setCascade(false); };
  const revoke = useMutation({
    mutationFn: ({ t, cascade, comment }: { t: APIToken; cascade: boolean; comment: string }) =>
      api.del(`/api/v1/tokens/${enc(t.id)}${cascade ? '?cascade=true' : ''}`, comment),
    onSuccess: () => { startRevoking(null); qc.invalidateQueries({ queryKey: ['tokens'] }); },
  });
  return (
    <Card title="API tokens" actions={<Button size="sm" onClick={() => setCreating(true)}>New token</Button>}>
      {created?.token && (
        <Notice tone="green" title={`Token “${created.name}” created: copy it now, it is shown only once`}>
          <div className="flex items-center gap-2"><code className="break-all rounded bg-white px-1">{created.token}</code><CopyButton text={created.token} /></div>
        </Notice>
      )}
      {tokens.isPending ? <Spinner label="Loading tokens" /> : tokens.error ? <ErrorBanner error={tokens.error} /> : (
        <table className="mt-2 w-full text-sm">
          <caption className="sr-only">API tokens</caption>
          <thead className="text-left text-xs uppercase text-slate-600"><tr><th scope="col" className="py-1">Name</th><th scope="col">Kind</th><th scope="col">Role</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Created with</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody className="divide-y divide-slate-100">
            {tokens.data.map((t) => (
              <tr key={t.id}>
                <th scope="row" className="py-1.5 text-left font-medium">{t.name}</th>
                <td>{t.kind}</td><td>{t.role?.replace('_', ' ') ?? '—'}</td><td>{relativeTime(t.last_used_at)}</td><td>{t.expires_at ? dateTime(t.expires_at) : 'never'}</td>
                <td>{maker(tokens.data, t)}</td>
                <td className="text-right">{t.revoked_at ? <Badge>revoked</Badge> : <Button size="sm" variant="ghost" onClick={() => startRevoking(t)} aria-label={`Revoke token ${t.name}`}>Revoke</Button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {creating && <CreateToken canManage={canManage} onClose={() => setCreating(false)} onCreated={(t) => { setCreated(t); qc.invalidateQueries({ queryKey: ['tokens'] }); }} />}
      {revoking && (
        <ConfirmDialog open onClose={() => startRevoking(null)} onConfirm={(comment) => revoke.mutate({ t: revoking, cascade, comment })} title={`Revoke “${revoking.name}”?`} confirmLabel="Revoke" danger busy={revoke.isPending} error={revoke.error}>
          Anything using this token (a script, a service, this browser tab) loses access at once.
          <MadeWith id={revoking.id} checked={cascade} onChange={setCascade} />
        </ConfirmDialog>
      )}
    </Card>
  );
}

// maker names the token t was created with: its name when listed, else "another token" (one the
// caller may not see), "—" when none was recorded.
function maker(tokens: APIToken[], t: APIToken): string {
  if (!t.created_by_token) return '—';
  return tokens.find((m) => m.id === t.created_by_token)?.name ?? 'another token';
}

// MadeWith offers to revoke, with the token, the live tokens created with it (a leaked token's
// line); off by default, so rotating a token out does not take what was made with it. The
// service names them (GET /tokens/{id}/descendants), including those the signed-in user may no
// longer list — service tokens they made while an admin — which a cascade revokes all the same.
function MadeWith({ id, checked, onChange }: { id: string; checked: boolean; onChange: (v: boolean) => void }) {
  const line = useQuery({
    queryKey: ['tokens', id, 'descendants'],
    queryFn: ({ signal }) => api.get<{ items: APIToken[] }>(`/api/v1/tokens/${enc(id)}/descendants`, signal).then((r) => r.items),
  });
  if (line.isPending) return <p className="mt-3 text-slate-600">Looking for tokens created with it…</p>;
  if (line.error) return <p className="mt-3 text-slate-600">Could not list the tokens created with it, so revoking them too is not offered.</p>;
  const tokens = line.data;
  if (tokens.length === 0) return null;
  return (
    <label className="mt-3 flex items-start gap-2">
      <input type="checkbox" className="mt-1 h-4 w-4" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <span>
        Also revoke {tokens.length === 1 ? 'the token' : `the ${tokens.length} tokens`} created with it:{' '}
        {tokens.map((t) => `“${t.name}”`).join(', ')}
      </span>
    </label>
  );
}

function CreateToken({ canManage, onClose, onCreated }: { canManage: boolean; onClose: () => void; onCreated: (t: APIToken) => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'personal' | 'service'>('personal');
  const [role, setRole] = useState<Role>('developer');
  // A token expiring at T may only create tokens expiring by T (the service answers 422
  // otherwise): offer no "never", suggest at most what is left. Until the field is edited it
  // follows /me, which may arrive after the form opens.
  const me = useMe();
  const limit = expiryLimit(me.data?.token?.expires_at);
  const [edited, setEdited] = useState<string | null>(null);
  const expires = edited ?? cappedExpiresIn(SUGGESTED_EXPIRES_IN, SUGGESTED_MS, limit);
  const create = useMutation({
    mutationFn: () => api.post<APIToken>('/api/v1/tokens', { name, kind, ...(kind === 'service' ? { role } : {}), expires_in: expires.trim() || undefined }),
    onSuccess: (t) => { onCreated(t); onClose(); },
  });
  const fe = (f: string) => (isApiError(create.error) && create.error.field === f ? create.error.message : undefined);
  const expiresHint = !limit
    ? 'e.g. 720h (30 days); empty for never'
    : limit.longest
      ? `At most ${limit.longest}: your sign-in token expires at ${dateTime(limit.expiresAt)}, and a token it creates may not outlive it`
      : `Your sign-in token expires at ${dateTime(limit.expiresAt)}: sign in with a longer-lived token to create one`;
  const expiresMissing = limit !== null && !expires.trim();
  return (
    <Modal open onClose={onClose} title="New API token">
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); create.mutate(); }}>
        <Field label="Name" error={fe('name')}>{(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
        <Field label="Kind" error={fe('kind')} hint="Personal tokens act as you; service tokens have their own role (admins)">
          {(p) => <select {...p} value={kind} onChange={(e) => setKind(e.target.value as 'personal' | 'service')}><option value="personal">personal</option>{canManage && <option value="service">service</option>}</select>}
        </Field>
        {kind === 'service' && <Field label="Role" error={fe('role')}>{(p) => <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>{roles.map((r) => <option key={r.role} value={r.role}>{r.role}</option>)}</select>}</Field>}
        <Field label="Expires in" error={fe('expires_in')} hint={expiresHint}>{(p) => <input {...p} required={limit !== null} value={expires} onChange={(e) => setEdited(e.target.value)} />}</Field>
        <ErrorBanner error={create.error && !fe(isApiError(create.error) ? (create.error.field ?? '') : '') ? create.error : null} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={create.isPending || !name.trim() || expiresMissing}>Create token</Button></div>
      </form>
    </Modal>
  );
}
