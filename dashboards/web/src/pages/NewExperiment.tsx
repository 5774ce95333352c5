// Creating an experiment without SQL or hand-written API calls: a draft on a flag in an
// environment, with its arms, metrics and planned duration. The flag service validates; its
// messages land next to the field they name (as on the metrics catalog).

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useLocation } from 'wouter';
import { Button, ErrorBanner, Field, Modal } from '../components/ui';
import { api, enc, fieldErrors, unplacedError } from '../lib/api';
import { keys, useAllFlags, useMetrics, useProject } from '../lib/queries';
import type { Experiment, Flag, GuardrailSpec } from '../lib/types';

/** The flag service's weight scale: arms' weights are integers summing to this. */
export const WEIGHT_SCALE = 100_000;

export interface Arm { variation: string; included: boolean; pct: string }
type Role = '' | 'primary' | 'secondary' | 'guardrail';
interface MetricChoice { role: Role; tolerance: string; action: GuardrailSpec['action'] }

/** An even split over the included arms in weight units, the remainder to the first arms so it sums exactly. */
export function evenSplit(arms: Arm[]): Arm[] {
  const n = arms.filter((a) => a.included).length;
  let i = 0;
  return arms.map((a) => {
    if (!a.included) return { ...a, pct: '' };
    const units = Math.floor(WEIGHT_SCALE / n) + (i++ < WEIGHT_SCALE % n ? 1 : 0);
    return { ...a, pct: String(units / 1000) };
  });
}

/** A percentage as weight units (1% = 1000); null unless it is a number. */
export function toUnits(pct: string): number | null {
  if (!pct.trim()) return null;
  const x = Number(pct);
  return Number.isFinite(x) ? Math.round(x * 1000) : null;
}

function defaultControl(flag: Flag | undefined): string {
  const vs = flag?.variations.map((v) => v.key) ?? [];
  return vs.find((v) => v === 'off' || v === 'control') ?? vs[0] ?? '';
}

export function NewExperimentDialog({ project, onClose }: { project: string; onClose: () => void }) {
  const proj = useProject(project);
  const flags = useAllFlags(project);
  const catalog = useMetrics(project);
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [hypothesis, setHypothesis] = useState('');
  const [environment, setEnvironment] = useState('');
  const [flagKey, setFlagKey] = useState('');
  const [control, setControl] = useState('');
  const [arms, setArms] = useState<Arm[]>([]);
  const [choices, setChoices] = useState<Record<string, MetricChoice>>({});
  const [days, setDays] = useState('14');
  const [touched, setTouched] = useState(false);

  const flagList = (flags.data ?? []).filter((f) => f.lifecycle !== 'archived');
  const metricList = (catalog.data ?? []).filter((m) => !m.archived);
  const included = arms.filter((a) => a.included);
  const choice = (k: string): MetricChoice => choices[k] ?? { role: '', tolerance: '2', action: 'alert' };
  const setChoice = (k: string, patch: Partial<MetricChoice>) => setChoices({ ...choices, [k]: { ...choice(k), ...patch } });
  const withRole = (r: Role) => metricList.filter((m) => choice(m.key).role === r);

  const chooseFlag = (k: string) => {
    const f = flagList.find((x) => x.key === k);
    setFlagKey(k);
    setControl(defaultControl(f));
    setArms(evenSplit((f?.variations ?? []).map((v) => ({ variation: v.key, included: true, pct: '' }))));
  };

  // Client-side checks only where cheap and certain; the flag service has the last word.
  const local: Record<string, string> = {};
  if (!key.trim()) local.key = 'give the experiment a key (letters, digits, “.”, “_” and “-”)';
  if (!environment) local.environment = 'choose the environment it runs in';
  if (!flagKey) local.flag = 'choose the flag whose variations it compares';
  if (flagKey && included.length < 2) local.variations = 'include at least 2 variations';
  included.forEach((a) => {
    const u = toUnits(a.pct);
    if (u === null || u < 1 || u > WEIGHT_SCALE) local[`arm:${a.variation}`] = 'a percentage above 0 and at most 100';
  });
  const totalUnits = included.reduce((s, a) => s + (toUnits(a.pct) ?? 0), 0);
  if (included.length >= 2 && totalUnits !== WEIGHT_SCALE) local.variations = `weights must add up to 100% (now ${totalUnits / 1000}%)`;
  if (flagKey && !included.some((a) => a.variation === control)) local.control = 'the control must be one of the included variations';
  if (!withRole('primary').length) local['metrics.primary'] = 'choose at least one primary metric';
  withRole('guardrail').forEach((m, i) => {
    const t = Number(choice(m.key).tolerance);
    if (!(t > 0 && t <= 100)) local[`metrics.guardrails[${i}].tolerance`] = 'a percentage above 0 and at most 100';
  });
  const d = Number(days);
  if (!(d > 0 && d <= 365)) local.planned_duration = 'a number of days between 1 and 365';

  const create = useMutation({
    mutationFn: () =>
      api.post<Experiment>(`/api/v1/projects/${enc(project)}/experiments`, {
        key: key.trim(),
        name: name.trim(),
        hypothesis: hypothesis.trim(),
        environment,
        flag: flagKey,
        control,
        variations: included.map((a) => ({ variation: a.variation, weight: toUnits(a.pct) })),
        metrics: {
          primary: withRole('primary').map((m) => m.key),
          secondary: withRole('secondary').map((m) => m.key),
          guardrails: withRole('guardrail').map((m) => ({
            metric: m.key,
            // Percent in the form, a fraction on the wire; rounded so 2.3% is 0.023, not 0.022999….
            tolerance: Math.round(Number(choice(m.key).tolerance) * 1e6) / 1e8,
            action: choice(m.key).action,
          })),
        },
        // The service's durations are Go durations; whole days in hours (14 days = "336h").
        planned_duration: `${Math.round(d * 24)}h`,
      }),
    onSuccess: (x) => {
      qc.invalidateQueries({ queryKey: keys.experiments(project) });
      qc.setQueryData(keys.experiment(project, x.key), x);
      onClose();
      navigate(`/p/${project}/experiments/${x.key}`);
    },
  });

  const server = fieldErrors(create.error);
  const shown = touched ? local : {};
  const err = (f: string) => server[f] ?? shown[f];
  const armPath = (variation: string) => {
    const i = included.findIndex((a) => a.variation === variation);
    return `variations[${i}]`;
  };
  const metricPath = (k: string): string | null => {
    const r = choice(k).role;
    if (!r) return null;
    const i = withRole(r).findIndex((m) => m.key === k);
    return r === 'guardrail' ? `metrics.guardrails[${i}]` : `metrics.${r}[${i}]`;
  };
  const unplaced = unplacedError(create.error);

  return (
    <Modal open onClose={onClose} title="New experiment" wide>
      <form
        className="grid grid-cols-1 gap-3 sm:grid-cols-2"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (Object.keys(local).length === 0) create.mutate();
        }}
      >
        <div data-field="key"><Field label="Key" error={err('key')} hint="Stable id, e.g. new-checkout-q4">
          {(p) => <input {...p} value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" />}
        </Field></div>
        <div data-field="name"><Field label="Name" error={err('name')} hint="Defaults to the key">
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field></div>
        <div className="sm:col-span-2" data-field="hypothesis"><Field label="Hypothesis" error={err('hypothesis')} hint="What you expect to change, and why">
          {(p) => <textarea {...p} rows={2} value={hypothesis} onChange={(e) => setHypothesis(e.target.value)} />}
        </Field></div>
        <div data-field="environment"><Field label="Environment" error={err('environment')}>
          {(p) => <select {...p} value={environment} onChange={(e) => setEnvironment(e.target.value)}>
            <option value="">Choose…</option>
            {(proj.data?.environments ?? []).map((en) => <option key={en.key} value={en.key}>{en.name}{en.critical ? ' (critical)' : ''}</option>)}
          </select>}
        </Field></div>
        <div data-field="flag"><Field label="Flag" error={err('flag')}>
          {(p) => <select {...p} value={flagKey} onChange={(e) => chooseFlag(e.target.value)}>
            <option value="">Choose…</option>
            {flagList.map((f) => <option key={f.key} value={f.key}>{f.key}</option>)}
          </select>}
        </Field></div>
        {arms.length > 0 && (
          <fieldset className="space-y-2 sm:col-span-2" data-field="variations">
            <legend className="text-sm font-medium text-slate-800">Variations and their share of users</legend>
            {arms.map((a, i) => {
              const path = a.included ? armPath(a.variation) : '';
              return (
                <div key={a.variation} className="grid grid-cols-[10rem_1fr] items-start gap-3" data-field={path ? `${path}.weight` : undefined}>
                  <label className="mt-6 inline-flex items-center gap-2 text-sm" data-field={path ? `${path}.variation` : undefined}>
                    <input type="checkbox" className="h-4 w-4" checked={a.included}
                      onChange={(e) => {
                        const next = evenSplit(arms.map((x, k) => (k === i ? { ...x, included: e.target.checked } : x)));
                        setArms(next);
                        // The control must be an arm: follow it to the first one left when it is dropped.
                        if (!next.some((x) => x.included && x.variation === control)) setControl(next.find((x) => x.included)?.variation ?? '');
                      }} />
                    Include {a.variation}
                  </label>
                  {a.included && (
                    <Field label={`Weight of ${a.variation} (%)`} error={err(`${path}.weight`) ?? err(`${path}.variation`) ?? shown[`arm:${a.variation}`]}>
                      {(p) => <input {...p} inputMode="decimal" value={a.pct} onChange={(e) => setArms(arms.map((x, k) => (k === i ? { ...x, pct: e.target.value } : x)))} />}
                    </Field>
                  )}
                </div>
              );
            })}
            {err('variations') && <p className="text-sm text-red-800" role="alert">{err('variations')}</p>}
          </fieldset>
        )}
        {arms.length > 0 && (
          <div data-field="control"><Field label="Control variation" error={err('control')} hint="The baseline the others are compared with">
            {(p) => <select {...p} value={control} onChange={(e) => setControl(e.target.value)}>
              {included.map((a) => <option key={a.variation} value={a.variation}>{a.variation}</option>)}
            </select>}
          </Field></div>
        )}
        <div data-field="planned_duration"><Field label="Planned duration (days)" error={err('planned_duration')}>
          {(p) => <input {...p} inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value)} />}
        </Field></div>
        <fieldset className="space-y-2 sm:col-span-2" data-field="metrics.primary">
          <legend className="text-sm font-medium text-slate-800">Metrics</legend>
          <p className="text-xs text-slate-600">Primary metrics decide the experiment; secondary ones add context; a guardrail must not get worse by more than its tolerance.</p>
          {metricList.length === 0 && <p className="text-sm text-slate-600">{catalog.isPending ? 'Loading metrics…' : 'No metrics yet: define one on the Metrics page first.'}</p>}
          {metricList.map((m) => {
            const c = choice(m.key);
            const path = metricPath(m.key);
            const roleErr = path ? (c.role === 'guardrail' ? err(`${path}.metric`) ?? err(path) : err(path)) : undefined;
            return (
              <div key={m.key} className="grid grid-cols-1 items-start gap-2 sm:grid-cols-3" data-field={path ? (c.role === 'guardrail' ? `${path}.metric` : path) : undefined}>
                <Field label={`Role of ${m.name}`} error={roleErr}>
                  {(p) => <select {...p} value={c.role} onChange={(e) => setChoice(m.key, { role: e.target.value as Role })}>
                    <option value="">not measured</option><option value="primary">primary</option>
                    <option value="secondary">secondary</option><option value="guardrail">guardrail</option>
                  </select>}
                </Field>
                {c.role === 'guardrail' && path && <>
                  <div data-field={`${path}.tolerance`}><Field label={`Tolerance of ${m.name} (%)`} error={err(`${path}.tolerance`)}>
                    {(p) => <input {...p} inputMode="decimal" value={c.tolerance} onChange={(e) => setChoice(m.key, { tolerance: e.target.value })} />}
                  </Field></div>
                  <div data-field={`${path}.action`}><Field label={`On a breach of ${m.name}`} error={err(`${path}.action`)}>
                    {(p) => <select {...p} value={c.action} onChange={(e) => setChoice(m.key, { action: e.target.value as GuardrailSpec['action'] })}>
                      <option value="alert">alert the team</option><option value="rollback">roll back and alert</option>
                    </select>}
                  </Field></div>
                </>}
              </div>
            );
          })}
          {err('metrics.primary') && <p className="text-sm text-red-800" role="alert">{err('metrics.primary')}</p>}
        </fieldset>
        <div className="sm:col-span-2"><ErrorBanner error={unplaced} /></div>
        <div className="flex justify-end gap-2 sm:col-span-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={create.isPending}>{create.isPending ? 'Creating…' : 'Create draft'}</Button>
        </div>
      </form>
    </Modal>
  );
}
