// Environments and SDK keys: create environments, and create, copy, rotate and revoke the
// keys SDKs use to fetch rulesets and send events.

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Badge, Button, Card, ConfirmDialog, CopyButton, ErrorBanner, Field, Modal, Notice, PageHeader, Spinner } from '../components/ui';
import { api, enc, isApiError, qs } from '../lib/api';
import { dateTime } from '../lib/format';
import { keys, useProject } from '../lib/queries';
import type { Environment, SDKKey } from '../lib/types';

export default function Environments({ project }: { project: string }) {
  const proj = useProject(project);
  const [creating, setCreating] = useState(false);
  if (proj.isPending) return <Spinner label="Loading environments" />;
  if (proj.error) return <ErrorBanner error={proj.error} />;
  if (!proj.data) return <ErrorBanner error={new Error(`No project “${project}”.`)} />;
  return (
    <div className="space-y-4">
      <PageHeader title="Environments & SDK keys" subtitle="Each environment has its own flag configuration and its own keys."
        actions={<Button variant="primary" onClick={() => setCreating(true)}>New environment</Button>} />
      {[...proj.data.environments].sort((a, b) => a.position - b.position).map((e) => <EnvironmentCard key={e.key} project={project} env={e} />)}
      {creating && <CreateEnvironment project={project} onClose={() => setCreating(false)} />}
    </div>
  );
}

function EnvironmentCard({ project, env }: { project: string; env: Environment }) {
  const qc = useQueryClient();
  const [showRevoked, setShowRevoked] = useState(false);
  const [newKey, setNewKey] = useState<SDKKey | null>(null);
  const [creating, setCreating] = useState(false);
  const [rotating, setRotating] = useState<SDKKey | null>(null);
  const [revoking, setRevoking] = useState<SDKKey | null>(null);
  const listKey = ['sdk-keys', project, env.key, showRevoked];
  const sdkKeys = useQuery({
    queryKey: listKey,
    queryFn: ({ signal }) => api.get<{ items: SDKKey[] }>(`/api/v1/projects/${enc(project)}/environments/${enc(env.key)}/sdk-keys${qs({ include_revoked: showRevoked || undefined })}`, signal).then((r) => r.items),
  });
  const refresh = () => qc.invalidateQueries({ queryKey: ['sdk-keys', project, env.key] });
  const rotate = useMutation({
    mutationFn: ({ k, grace }: { k: SDKKey; grace: string }) => api.post<SDKKey>(`/api/v1/projects/${enc(project)}/environments/${enc(env.key)}/sdk-keys/${enc(k.id)}/rotate`, { grace }),
    onSuccess: (k) => { setRotating(null); setNewKey(k); refresh(); },
  });
  const revoke = useMutation({
    mutationFn: ({ k, comment }: { k: SDKKey; comment: string }) => api.del(`/api/v1/projects/${enc(project)}/environments/${enc(env.key)}/sdk-keys/${enc(k.id)}`, comment),
    onSuccess: () => { setRevoking(null); refresh(); },
  });
  return (
    <Card
      title={<span className="flex items-center gap-2"><span className="inline-block h-3 w-3 rounded-full" style={{ background: env.color }} aria-hidden="true" />{env.name} <code className="text-xs font-normal text-slate-600">{env.key}</code>
        {env.critical && <Badge tone="red">critical</Badge>}{env.locked && <Badge tone="amber">locked</Badge>}</span>}
      actions={<Button size="sm" onClick={() => setCreating(true)}>New SDK key</Button>}
    >
      <p className="mb-2 text-xs text-slate-600">Ruleset version {env.ruleset_version}{env.critical ? ' · changes here need a project admin and a confirmation' : ''}</p>
      {newKey?.key && (
        <Notice tone="green" title={`Key “${newKey.name}” created`}>
          <p>{newKey.kind === 'server' ? 'Copy it now: server keys are shown only once.' : 'Client keys can be shown again later.'}</p>
          <div className="mt-1 flex items-center gap-2"><code className="break-all rounded bg-white px-1" data-testid="new-sdk-key">{newKey.key}</code><CopyButton text={newKey.key} /></div>
        </Notice>
      )}
      {sdkKeys.isPending ? <Spinner label="Loading keys" /> : sdkKeys.error ? <ErrorBanner error={sdkKeys.error} /> : (
        <table className="mt-2 w-full text-sm">
          <caption className="sr-only">SDK keys of {env.name}</caption>
          <thead className="text-left text-xs uppercase text-slate-600"><tr><th scope="col" className="py-1">Name</th><th scope="col">Kind</th><th scope="col">Key</th><th scope="col">Created</th><th scope="col">Status</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody className="divide-y divide-slate-100">
            {sdkKeys.data.map((k) => (
              <tr key={k.id}>
                <th scope="row" className="py-1.5 text-left font-medium">{k.name}</th>
                <td>{k.kind}</td>
                <td className="font-mono text-xs">{k.key ? <span className="inline-flex items-center gap-1">{k.key} <CopyButton text={k.key} /></span> : `${k.prefix}…`}</td>
                <td>{dateTime(k.created_at)}</td>
                <td>{k.revoked_at ? <Badge tone="slate">revoked</Badge> : k.expires_at ? <Badge tone="amber" title="The old key of a rotation">expires {dateTime(k.expires_at)}</Badge> : <Badge tone="green">active</Badge>}</td>
                <td className="text-right">
                  {!k.revoked_at && (
                    <>
                      <Button size="sm" variant="ghost" onClick={() => setRotating(k)} aria-label={`Rotate ${k.name}`}>Rotate</Button>
                      <Button size="sm" variant="ghost" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.name}`}>Revoke</Button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <label className="mt-2 inline-flex items-center gap-2 text-xs text-slate-700"><input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} /> Show revoked and expired keys</label>
      {creating && <CreateKey project={project} env={env} onClose={() => setCreating(false)} onCreated={(k) => { setNewKey(k); refresh(); }} />}
      {rotating && <RotateKey k={rotating} busy={rotate.isPending} error={rotate.error} onClose={() => { setRotating(null); rotate.reset(); }} onRotate={(grace) => rotate.mutate({ k: rotating, grace })} />}
      {revoking && (
        <ConfirmDialog open onClose={() => { setRevoking(null); revoke.reset(); }} onConfirm={(comment) => revoke.mutate({ k: revoking, comment })} title={`Revoke “${revoking.name}” now?`}
          confirmLabel="Revoke" danger typeToConfirm={env.critical ? env.key : undefined} busy={revoke.isPending} error={revoke.error}>
          SDKs using this key stop receiving flags and sending events as soon as the relays get the next ruleset.
        </ConfirmDialog>
      )}
    </Card>
  );
}

function CreateKey({ project, env, onClose, onCreated }: { project: string; env: Environment; onClose: () => void; onCreated: (k: SDKKey) => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'server' | 'client'>('server');
  const create = useMutation({
    mutationFn: () => api.post<SDKKey>(`/api/v1/projects/${enc(project)}/environments/${enc(env.key)}/sdk-keys`, { name, kind }),
    onSuccess: (k) => { onCreated(k); onClose(); },
  });
  const fe = (f: string) => (isApiError(create.error) && create.error.field === f ? create.error.message : undefined);
  return (
    <Modal open onClose={onClose} title={`New SDK key in ${env.name}`}>
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); create.mutate(); }}>
        <Field label="Name" error={fe('name')}>{(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} placeholder="checkout service" />}</Field>
        <Field label="Kind" error={fe('kind')} hint="Server keys stay on your servers; client keys are public and only see client-side flags.">
          {(p) => <select {...p} value={kind} onChange={(e) => setKind(e.target.value as 'server' | 'client')}><option value="server">server</option><option value="client">client (browser, mobile)</option></select>}
        </Field>
        <ErrorBanner error={create.error && !fe(isApiError(create.error) ? (create.error.field ?? '') : '') ? create.error : null} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={create.isPending || !name.trim()}>Create key</Button></div>
      </form>
    </Modal>
  );
}

function RotateKey({ k, onClose, onRotate, busy, error }: { k: SDKKey; onClose: () => void; onRotate: (grace: string) => void; busy: boolean; error: unknown }) {
  const [grace, setGrace] = useState('24h');
  return (
    <Modal open onClose={onClose} title={`Rotate “${k.name}”`}>
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); onRotate(grace); }}>
        <p className="text-sm text-slate-700">A new key is created now. The old one keeps working for the grace period, so you can deploy the new one first.</p>
        <Field label="Grace period" hint="e.g. 24h, 1h, 0s to stop the old key now">{(p) => <input {...p} value={grace} onChange={(e) => setGrace(e.target.value)} />}</Field>
        <ErrorBanner error={error} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={busy}>Rotate</Button></div>
      </form>
    </Modal>
  );
}

function CreateEnvironment({ project, onClose }: { project: string; onClose: () => void }) {
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [color, setColor] = useState('#10b981');
  const [critical, setCritical] = useState(false);
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: () => api.post<Environment>(`/api/v1/projects/${enc(project)}/environments`, { key, name: name || key, color, critical }),
    onSuccess: () => { qc.invalidateQueries({ queryKey: keys.projects }); onClose(); },
  });
  const fe = (f: string) => (isApiError(create.error) && create.error.field === f ? create.error.message : undefined);
  return (
    <Modal open onClose={onClose} title="New environment">
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); create.mutate(); }}>
        <Field label="Key" error={fe('key')}>{(p) => <input {...p} required value={key} onChange={(e) => setKey(e.target.value)} placeholder="qa" />}</Field>
        <Field label="Name" error={fe('name')}>{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} placeholder="QA" />}</Field>
        <Field label="Colour" error={fe('color')}>{(p) => <input {...p} type="color" value={color} onChange={(e) => setColor(e.target.value)} className={`${p.className} h-9`} />}</Field>
        <label className="inline-flex items-center gap-2 text-sm"><input type="checkbox" checked={critical} onChange={(e) => setCritical(e.target.checked)} /> Critical (changes need a project admin and a confirmation)</label>
        <ErrorBanner error={create.error && !fe(isApiError(create.error) ? (create.error.field ?? '') : '') ? create.error : null} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={create.isPending || !key.trim()}>Create environment</Button></div>
      </form>
    </Modal>
  );
}
