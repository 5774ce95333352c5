// Guardrails: metrics that must not get worse while a flag rolls out. The jobs service watches
// them and alerts or rolls the flag back on a breach (an audited change).

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'wouter';
import { Badge, Button, ConfirmDialog, Empty, ErrorBanner, Field, Modal, PageHeader, Spinner } from '../components/ui';
import { api, enc, isApiError } from '../lib/api';
import { breachChange, dateTime, pct, pValue } from '../lib/format';
import { keys, useAllFlags, useGuardrails, useMetrics, useProject } from '../lib/queries';
import type { Guardrail } from '../lib/types';

export default function Guardrails({ project }: { project: string }) {
  const proj = useProject(project);
  const envs = proj.data?.environments ?? [];
  const [envKey, setEnvKey] = useState('');
  const env = envKey || envs.find((e) => e.critical)?.key || envs[0]?.key || '';
  const guardrails = useGuardrails(project, env);
  const [creating, setCreating] = useState(false);
  const [removing, setRemoving] = useState<Guardrail | null>(null);
  const qc = useQueryClient();
  const remove = useMutation({
    mutationFn: ({ g, comment }: { g: Guardrail; comment: string }) => api.del(`/api/v1/projects/${enc(project)}/environments/${enc(env)}/guardrails/${enc(g.id)}`, comment),
    onSuccess: () => { setRemoving(null); qc.invalidateQueries({ queryKey: keys.guardrails(project, env) }); },
  });
  return (
    <div>
      <PageHeader title="Guardrails" subtitle="Metrics that must not get worse. A breach alerts the team or rolls the flag back automatically."
        actions={<Button variant="primary" onClick={() => setCreating(true)} disabled={!env}>New guardrail</Button>} />
      <Field label="Environment" className="mb-3 w-60">
        {(p) => <select {...p} value={env} onChange={(e) => setEnvKey(e.target.value)}>{envs.map((e) => <option key={e.key} value={e.key}>{e.name}</option>)}</select>}
      </Field>
      {guardrails.isPending ? <Spinner label="Loading guardrails" /> : guardrails.error ? <ErrorBanner error={guardrails.error} title="Guardrails could not be loaded" /> :
        guardrails.data.length === 0 ? <Empty>No guardrails in this environment. Experiments create theirs when they start.</Empty> : (
          <ul className="space-y-2">
            {guardrails.data.map((g) => (
              <li key={g.id} className="rounded-lg border border-slate-200 bg-white p-3 text-sm" data-testid="guardrail">
                <div className="flex flex-wrap items-center justify-between gap-2">
                  <div>
                    <span className="font-medium">{g.metric}</span> on flag <Link className="text-blue-800 underline" href={`/p/${project}/flags/${g.flag}`}>{g.flag}</Link>
                    {g.experiment && <> (experiment <Link className="text-blue-800 underline" href={`/p/${project}/experiments/${g.experiment}`}>{g.experiment}</Link>)</>}
                    <p className="text-xs text-slate-600">Breach if worse by more than {pct(g.tolerance, 1)} · then {g.action === 'rollback' ? 'roll back automatically' : 'alert'}</p>
                  </div>
                  <div className="flex items-center gap-2">
                    <Badge tone={g.status === 'breached' ? 'red' : g.status === 'active' ? 'green' : 'slate'}>{g.status}</Badge>
                    <Button size="sm" variant="ghost" onClick={() => setRemoving(g)} aria-label={`Delete guardrail ${g.metric} on ${g.flag}`}>Delete</Button>
                  </div>
                </div>
                {g.breach && (
                  <p className="mt-1 text-red-900">Breached {dateTime(g.breach.at)}: {breachChange(g.breach.effect, g.breach.absolute)}{g.breach.absolute ? ' from a control mean of 0' : ''} (interval {breachChange(g.breach.interval[0], g.breach.absolute)} to {breachChange(g.breach.interval[1], g.breach.absolute)}, p = {pValue(g.breach.p_value)}){g.breach.action_taken ? `; ${g.breach.action_taken.replace(/_/g, ' ')}` : ''}.</p>
                )}
              </li>
            ))}
          </ul>
        )}
      {creating && <CreateGuardrail project={project} env={env} onClose={() => setCreating(false)} />}
      {removing && (
        <ConfirmDialog open onClose={() => setRemoving(null)} onConfirm={(comment) => remove.mutate({ g: removing, comment })} title={`Delete the ${removing.metric} guardrail?`}
          confirmLabel="Delete" danger busy={remove.isPending} error={remove.error}>
          Nobody will be alerted, and nothing rolled back, if {removing.metric} gets worse on {removing.flag}.
        </ConfirmDialog>
      )}
    </div>
  );
}

function CreateGuardrail({ project, env, onClose }: { project: string; env: string; onClose: () => void }) {
  const flags = useAllFlags(project);
  const metrics = useMetrics(project);
  const [flag, setFlag] = useState('');
  const [metric, setMetric] = useState('');
  const [tolerance, setTolerance] = useState('2');
  const [action, setAction] = useState<'alert' | 'rollback'>('alert');
  const [control, setControl] = useState('');
  const variations = (flags.data ?? []).find((f) => f.key === flag)?.variations.map((v) => v.key) ?? [];
  const controlKey = variations.includes(control) ? control : (variations.find((v) => v === 'off' || v === 'control') ?? variations[0] ?? '');
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: () => api.post<Guardrail>(`/api/v1/projects/${enc(project)}/environments/${enc(env)}/guardrails`, {
      flag, metric, tolerance: Number(tolerance) / 100, action, control: controlKey, treatments: variations.filter((v) => v !== controlKey),
    }),
    onSuccess: () => { qc.invalidateQueries({ queryKey: keys.guardrails(project, env) }); onClose(); },
  });
  const fe = (f: string) => (isApiError(create.error) && create.error.field === f ? create.error.message : undefined);
  const tolErr = !(Number(tolerance) > 0 && Number(tolerance) < 100) ? 'a percentage between 0 and 100' : fe('tolerance');
  return (
    <Modal open onClose={onClose} title={`New guardrail in ${env}`}>
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); if (!tolErr) create.mutate(); }}>
        <Field label="Flag" error={fe('flag')}>{(p) => <select {...p} required value={flag} onChange={(e) => setFlag(e.target.value)}><option value="">Choose…</option>{(flags.data ?? []).map((f) => <option key={f.key}>{f.key}</option>)}</select>}</Field>
        {variations.length > 0 && (
          <Field label="Baseline variation" error={fe('control') ?? fe('treatments')} hint="The metric is compared between this variation and the others">
            {(p) => <select {...p} value={controlKey} onChange={(e) => setControl(e.target.value)}>{variations.map((v) => <option key={v}>{v}</option>)}</select>}
          </Field>
        )}
        <Field label="Metric" error={fe('metric')}>{(p) => <select {...p} required value={metric} onChange={(e) => setMetric(e.target.value)}><option value="">Choose…</option>{(metrics.data ?? []).map((m) => <option key={m.key} value={m.key}>{m.name}</option>)}</select>}</Field>
        <Field label="Tolerance (%)" error={tolErr} hint="How much worse the metric may get before it counts as a breach">{(p) => <input {...p} inputMode="decimal" value={tolerance} onChange={(e) => setTolerance(e.target.value)} />}</Field>
        <Field label="On a breach" error={fe('action')}>{(p) => <select {...p} value={action} onChange={(e) => setAction(e.target.value as 'alert' | 'rollback')}><option value="alert">alert the team</option><option value="rollback">roll the flag back and alert</option></select>}</Field>
        <ErrorBanner error={create.error && !fe(isApiError(create.error) ? (create.error.field ?? '') : '') ? create.error : null} />
        <div className="flex justify-end gap-2"><Button onClick={onClose}>Cancel</Button><Button type="submit" variant="primary" disabled={create.isPending || !flag || !metric}>Create guardrail</Button></div>
      </form>
    </Modal>
  );
}
