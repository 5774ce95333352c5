// The metrics catalog: growth teams define what experiments measure, without SQL. The flag
// service validates; its messages land next to the field they name.

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Badge, Button, ConfirmDialog, Empty, ErrorBanner, Field, Modal, PageHeader, Spinner } from '../components/ui';
import { api, enc, fieldErrors, unplacedError } from '../lib/api';
import { humanDuration, parseDuration, relativeTime } from '../lib/format';
import { keys, useMetrics } from '../lib/queries';
import type { Metric, MetricFilter, MetricKind } from '../lib/types';

const kindHelp: Record<MetricKind, string> = {
  proportion: 'Share of users who sent the event at least once (conversion rate).',
  count: 'Number of matching events per user.',
  sum: 'Sum of the events’ values per user (e.g. revenue per user).',
  mean: 'Average value per event, over the users who sent one (e.g. order value).',
  ratio: 'One metric’s total divided by another’s (e.g. revenue per session).',
};

const filterOps = ['eq', 'neq', 'in', 'not_in', 'gt', 'gte', 'lt', 'lte', 'contains'];

export const emptyMetric: Metric = {
  key: '', name: '', description: '', kind: 'proportion', event_key: '', window: { start: '0s', end: '168h' }, filters: [],
  winsorize: { type: 'none' }, direction: 'increase', min_sample_size: 100, cuped_preperiod: '168h',
};

/** Client-side checks; the flag service has the last word. */
export function validateMetric(m: Metric, isNew: boolean): Record<string, string> {
  const e: Record<string, string> = {};
  if (isNew && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m.key)) e.key = 'letters, digits, “.”, “_” and “-”, starting with a letter or digit';
  if (!m.name.trim()) e.name = 'give the metric a name people will recognise';
  if (m.kind === 'ratio') {
    if (!m.numerator) e.numerator = 'choose the numerator metric';
    if (!m.denominator) e.denominator = 'choose the denominator metric';
    if (m.numerator && m.numerator === m.denominator) e.denominator = 'must differ from the numerator';
  } else if (!m.event_key?.trim()) {
    e.event_key = 'the event key your code sends with track()';
  }
  // A ratio has no window, filters or CUPED of its own: its numerator's and denominator's apply.
  if (m.kind !== 'ratio') {
    for (const [f, v] of [['window.start', m.window.start], ['window.end', m.window.end], ['cuped_preperiod', m.cuped_preperiod]] as const) {
      if (parseDuration(v) === null) e[f] = 'a duration such as 0s, 24h or 168h';
    }
    const s = parseDuration(m.window.start), en = parseDuration(m.window.end);
    if (s !== null && en !== null && en <= s) e['window.end'] = 'must be after the window start';
  }
  if (!Number.isInteger(m.min_sample_size) || m.min_sample_size < 0) e.min_sample_size = 'a whole number of users, 0 or more';
  if (m.kind !== 'ratio' && m.winsorize.type === 'percentile' && !(m.winsorize.upper! > 0 && m.winsorize.upper! < 1)) e['winsorize.upper'] = 'a percentile between 0 and 1, e.g. 0.99';
  if (m.kind !== 'ratio' && m.winsorize.type === 'absolute' && !(Number.isFinite(m.winsorize.upper))) e['winsorize.upper'] = 'the largest value a user counts with';
  if (m.kind !== 'ratio') m.filters.forEach((f, i) => {
    if (!f.property.trim()) e[`filters[${i}].property`] = 'name the event property';
    if (!f.values.length) e[`filters[${i}].values`] = 'give at least one value';
  });
  return e;
}

export default function Metrics({ project }: { project: string }) {
  const [showArchived, setShowArchived] = useState(false);
  const metrics = useMetrics(project, showArchived);
  const [editing, setEditing] = useState<Metric | null>(null);
  const [archiving, setArchiving] = useState<Metric | null>(null);
  const [q, setQ] = useState('');
  const qc = useQueryClient();
  const archive = useMutation({
    mutationFn: ({ m, comment }: { m: Metric; comment: string }) => api.del(`/api/v1/projects/${enc(project)}/metrics/${enc(m.key)}`, comment),
    onSuccess: () => { setArchiving(null); qc.invalidateQueries({ queryKey: keys.metrics(project) }); },
  });
  const items = (metrics.data ?? []).filter((m) => !q.trim() || `${m.key} ${m.name} ${m.event_key ?? ''}`.toLowerCase().includes(q.trim().toLowerCase()));
  return (
    <div>
      <PageHeader title="Metrics" subtitle="What experiments measure. Defined once, reused by every experiment and guardrail."
        actions={<Button variant="primary" onClick={() => setEditing({ ...emptyMetric })}>New metric</Button>} />
      <div className="mb-3 flex flex-wrap items-end gap-4">
        <Field label="Search (press /)" className="w-72">{(p) => <input {...p} data-search type="search" value={q} onChange={(e) => setQ(e.target.value)} />}</Field>
        <label className="inline-flex items-center gap-2 pb-1.5 text-sm">
          <input type="checkbox" className="h-4 w-4" checked={showArchived} onChange={(e) => setShowArchived(e.target.checked)} /> Show archived
        </label>
      </div>
      {metrics.isPending ? <Spinner label="Loading metrics" /> : metrics.error ? <ErrorBanner error={metrics.error} title="Metrics could not be loaded" /> : items.length === 0 ? (
        <Empty>No metrics yet. Create one: a conversion (“placed an order”) is a good start.</Empty>
      ) : (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full min-w-[760px] text-sm">
            <caption className="sr-only">Metrics</caption>
            <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
              <tr><th scope="col" className="px-3 py-2">Metric</th><th scope="col" className="px-3 py-2">Kind</th><th scope="col" className="px-3 py-2">Event</th>
                <th scope="col" className="px-3 py-2">Better when</th><th scope="col" className="px-3 py-2">Window</th><th scope="col" className="px-3 py-2">Changed</th><th className="px-3 py-2"><span className="sr-only">Actions</span></th></tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {items.map((m) => (
                <tr key={m.key}>
                  <th scope="row" className="px-3 py-2 text-left font-normal">
                    <span className="font-medium">{m.name}</span> {m.archived && <Badge>archived</Badge>}
                    <div className="text-xs text-slate-600"><code>{m.key}</code> · v{m.version}</div>
                  </th>
                  <td className="px-3 py-2">{m.kind}</td>
                  <td className="px-3 py-2">{m.kind === 'ratio' ? `${m.numerator} / ${m.denominator}` : <code>{m.event_key}</code>}</td>
                  <td className="px-3 py-2">{m.direction === 'increase' ? 'higher' : 'lower'}</td>
                  <td className="px-3 py-2">{m.kind === 'ratio' ? 'its parts’ windows' : `${humanDuration(m.window.start)} → ${humanDuration(m.window.end)} after exposure`}</td>
                  <td className="px-3 py-2">{relativeTime(m.updated_at)}</td>
                  <td className="px-3 py-2 text-right">
                    <Button size="sm" onClick={() => setEditing(m)} aria-label={`Edit ${m.name}`}>Edit</Button>{' '}
                    {!m.archived && <Button size="sm" variant="ghost" onClick={() => setArchiving(m)} aria-label={`Archive ${m.name}`}>Archive</Button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && <MetricEditor project={project} metric={editing} all={metrics.data ?? []} onClose={() => setEditing(null)} />}
      {archiving && (
        <ConfirmDialog open onClose={() => setArchiving(null)} onConfirm={(comment) => archive.mutate({ m: archiving, comment })} title={`Archive “${archiving.name}”?`}
          confirmLabel="Archive" danger busy={archive.isPending} error={archive.error}>
          New experiments can no longer use it; running experiments keep the version they started with.
        </ConfirmDialog>
      )}
    </div>
  );
}

function MetricEditor({ project, metric, all, onClose }: { project: string; metric: Metric; all: Metric[]; onClose: () => void }) {
  const isNew = !metric.version;
  const [m, setM] = useState<Metric>(metric);
  const [touched, setTouched] = useState(false);
  const qc = useQueryClient();
  const save = useMutation({
    mutationFn: () => {
      const body: Record<string, unknown> = { ...m };
      for (const k of ['version', 'archived', 'created_at', 'updated_at']) delete body[k];
      if (m.kind === 'ratio') for (const k of ['event_key', 'window', 'filters', 'cuped_preperiod', 'winsorize']) delete body[k];
      else { delete body.numerator; delete body.denominator; }
      return isNew
        ? api.post<Metric>(`/api/v1/projects/${enc(project)}/metrics`, body)
        : api.put<Metric>(`/api/v1/projects/${enc(project)}/metrics/${enc(m.key)}`, { ...body, version: metric.version }, metric.version);
    },
    onSuccess: () => { qc.invalidateQueries({ queryKey: keys.metrics(project) }); onClose(); },
  });
  const local = touched ? validateMetric(m, isNew) : {};
  const server = fieldErrors(save.error);
  const err = (f: string) => server[f] ?? local[f];
  const set = (patch: Partial<Metric>) => setM({ ...m, ...patch });
  const setFilter = (i: number, patch: Partial<MetricFilter>) => set({ filters: m.filters.map((f, k) => (k === i ? { ...f, ...patch } : f)) });
  const others = all.filter((x) => x.key !== m.key && x.kind !== 'ratio');
  const unplaced = unplacedError(save.error);
  return (
    <Modal open onClose={onClose} title={isNew ? 'New metric' : `Edit “${metric.name}”`} wide>
      <form
        className="grid grid-cols-1 gap-3 sm:grid-cols-2"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (Object.keys(validateMetric(m, isNew)).length === 0) save.mutate();
        }}
      >
        <div data-field="key"><Field label="Key" error={err('key')} hint="Stable id used by experiments">
          {(p) => <input {...p} disabled={!isNew} value={m.key} onChange={(e) => set({ key: e.target.value })} />}
        </Field></div>
        <div data-field="name"><Field label="Name" error={err('name')}>{(p) => <input {...p} value={m.name} onChange={(e) => set({ name: e.target.value })} />}</Field></div>
        <div className="sm:col-span-2" data-field="description"><Field label="Description" error={err('description')}>
          {(p) => <input {...p} value={m.description} onChange={(e) => set({ description: e.target.value })} />}
        </Field></div>
        <div data-field="kind"><Field label="Kind" error={err('kind')} hint={kindHelp[m.kind]}>
          {(p) => <select {...p} value={m.kind} onChange={(e) => set({ kind: e.target.value as MetricKind })}>
            {(Object.keys(kindHelp) as MetricKind[]).map((k) => <option key={k}>{k}</option>)}
          </select>}
        </Field></div>
        <div data-field="direction"><Field label="Better when it goes" error={err('direction')}>
          {(p) => <select {...p} value={m.direction} onChange={(e) => set({ direction: e.target.value as Metric['direction'] })}>
            <option value="increase">up (e.g. conversions)</option><option value="decrease">down (e.g. errors, latency)</option>
          </select>}
        </Field></div>
        {m.kind === 'ratio' ? (
          <>
            <div data-field="numerator"><Field label="Numerator metric" error={err('numerator')}>
              {(p) => <select {...p} value={m.numerator ?? ''} onChange={(e) => set({ numerator: e.target.value })}>
                <option value="">Choose…</option>{others.map((o) => <option key={o.key} value={o.key}>{o.name}</option>)}</select>}
            </Field></div>
            <div data-field="denominator"><Field label="Denominator metric" error={err('denominator')}>
              {(p) => <select {...p} value={m.denominator ?? ''} onChange={(e) => set({ denominator: e.target.value })}>
                <option value="">Choose…</option>{others.map((o) => <option key={o.key} value={o.key}>{o.name}</option>)}</select>}
            </Field></div>
          </>
        ) : (
          <div className="sm:col-span-2" data-field="event_key"><Field label="Event key" error={err('event_key')} hint="The name your code sends: client.track('order-placed')">
            {(p) => <input {...p} value={m.event_key ?? ''} onChange={(e) => set({ event_key: e.target.value })} />}
          </Field></div>
        )}
        {m.kind !== 'ratio' && <>
        <div data-field="window.start"><Field label="Counts events from (after first exposure)" error={err('window.start')} hint="e.g. 0s">
          {(p) => <input {...p} value={m.window.start} onChange={(e) => set({ window: { ...m.window, start: e.target.value } })} />}
        </Field></div>
        <div data-field="window.end"><Field label="until" error={err('window.end')} hint="e.g. 168h = 7 days">
          {(p) => <input {...p} value={m.window.end} onChange={(e) => set({ window: { ...m.window, end: e.target.value } })} />}
        </Field></div>
        </>}
        <div data-field="min_sample_size"><Field label="Minimum users per variation" error={err('min_sample_size')} hint="Below it, results carry a warning">
          {(p) => <input {...p} type="number" min={0} value={m.min_sample_size} onChange={(e) => set({ min_sample_size: Number(e.target.value) })} />}
        </Field></div>
        {m.kind !== 'ratio' && <div data-field="cuped_preperiod"><Field label="Variance reduction (CUPED) look-back" error={err('cuped_preperiod')} hint="0s turns it off">
          {(p) => <input {...p} value={m.cuped_preperiod} onChange={(e) => set({ cuped_preperiod: e.target.value })} />}
        </Field></div>}
        {m.kind !== 'ratio' && <div data-field="winsorize.type"><Field label="Cap outliers" error={err('winsorize.type')}>
          {(p) => <select {...p} value={m.winsorize.type} onChange={(e) => set({ winsorize: { type: e.target.value as Metric['winsorize']['type'], upper: e.target.value === 'percentile' ? 0.99 : undefined } })}>
            <option value="none">no</option><option value="percentile">at a percentile</option><option value="absolute">at a value</option>
          </select>}
        </Field></div>}
        {m.kind !== 'ratio' && m.winsorize.type !== 'none' && (
          <div data-field="winsorize.upper"><Field label={m.winsorize.type === 'percentile' ? 'Upper percentile (0–1)' : 'Upper value'} error={err('winsorize.upper')}>
            {(p) => <input {...p} type="number" step="any" value={m.winsorize.upper ?? ''} onChange={(e) => set({ winsorize: { ...m.winsorize, upper: e.target.value === '' ? undefined : Number(e.target.value) } })} />}
          </Field></div>
        )}
        {m.kind !== 'ratio' && <fieldset className="space-y-2 sm:col-span-2">
          <legend className="text-sm font-medium text-slate-800">Only events where</legend>
          {m.filters.map((f, i) => (
            <div key={i} className="grid grid-cols-[1fr_8rem_1fr_auto] items-start gap-2">
              <div data-field={`filters[${i}].property`}><Field label="Property" error={err(`filters[${i}].property`)}>{(p) => <input {...p} value={f.property} onChange={(e) => setFilter(i, { property: e.target.value })} />}</Field></div>
              <div data-field={`filters[${i}].op`}><Field label="Operator" error={err(`filters[${i}].op`)}>{(p) => <select {...p} value={f.op} onChange={(e) => setFilter(i, { op: e.target.value })}>{filterOps.map((o) => <option key={o}>{o}</option>)}</select>}</Field></div>
              <div data-field={`filters[${i}].values`}><Field label="Values (comma-separated)" error={err(`filters[${i}].values`)}>
                {(p) => <input {...p} defaultValue={f.values.join(', ')} onChange={(e) => setFilter(i, { values: e.target.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (['gt', 'gte', 'lt', 'lte'].includes(f.op) && Number.isFinite(Number(s)) ? Number(s) : s)) })} />}
              </Field></div>
              <Button size="sm" variant="ghost" className="mt-6" onClick={() => set({ filters: m.filters.filter((_, k) => k !== i) })}>Remove</Button>
            </div>
          ))}
          <Button size="sm" onClick={() => set({ filters: [...m.filters, { property: '', op: 'eq', values: [] }] })}>Add filter</Button>
        </fieldset>}
        <div className="sm:col-span-2"><ErrorBanner error={unplaced} /></div>
        <div className="flex justify-end gap-2 sm:col-span-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={save.isPending}>{save.isPending ? 'Saving…' : isNew ? 'Create metric' : 'Save (new version)'}</Button>
        </div>
      </form>
    </Modal>
  );
}
