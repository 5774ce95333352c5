import { useQuery } from '@tanstack/react-query';
import { scaleLinear } from '@visx/scale';
import { Line, LinePath } from '@visx/shape';
import { useMemo, useState } from 'react';
import { Link } from 'wouter';
import { Badge, Button, Empty, ErrorBanner, Field, FilterSelect, PageHeader, Spinner } from '../components/ui';
import { api } from '../lib/api';
import { date, signedPct } from '../lib/format';
import { useExperiments, useMemberNames, useProject, useResults, useTimeseries } from '../lib/queries';
import type { Experiment, Guardrail } from '../lib/types';
import { statusTone } from './ExperimentResults';
import { NewExperimentDialog } from './NewExperiment';

export default function ExperimentsList({ project }: { project: string }) {
  const experiments = useExperiments(project);
  const proj = useProject(project);
  const name = useMemberNames();
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [env, setEnv] = useState('');
  const [owner, setOwner] = useState('');
  const [creating, setCreating] = useState(false);
  const breached = useQuery({
    queryKey: ['guardrails', 'breached'],
    queryFn: ({ signal }) => api.get<{ items: Guardrail[] }>('/api/v1/guardrails?status=breached', signal).then((r) => r.items),
    retry: false,
  });
  const items = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (experiments.data ?? []).filter(
      (e) =>
        (!status || e.status === status) &&
        (!env || e.environment === env) &&
        (!owner || e.owner_id === owner) &&
        (!needle || `${e.key} ${e.name} ${e.flag} ${e.hypothesis ?? ''}`.toLowerCase().includes(needle)),
    );
  }, [experiments.data, q, status, env, owner]);
  const owners = [...new Set((experiments.data ?? []).map((e) => e.owner_id).filter(Boolean))] as string[];

  return (
    <div>
      <PageHeader title="Experiments" subtitle="Every A/B test of this project, newest first. Open one to read its results."
        actions={<Button variant="primary" onClick={() => setCreating(true)}>New experiment</Button>} />
      <div className="mb-3 grid grid-cols-1 gap-3 sm:grid-cols-4">
        <Field label="Search (press /)">
          {(p) => <input {...p} data-search type="search" placeholder="name, key, flag…" value={q} onChange={(e) => setQ(e.target.value)} />}
        </Field>
        <FilterSelect label="Status" value={status} onChange={setStatus} any="All" options={['running', 'draft', 'stopped', 'concluded']} />
        <FilterSelect label="Environment" value={env} onChange={setEnv} any="All" options={(proj.data?.environments ?? []).map((e) => ({ value: e.key, label: e.name }))} />
        <FilterSelect label="Owner" value={owner} onChange={setOwner} any="Anyone" options={owners.map((o) => ({ value: o, label: name(o) }))} />
      </div>
      {experiments.isPending ? <Spinner label="Loading experiments" /> : experiments.error ? (
        <ErrorBanner error={experiments.error} title="Experiments could not be loaded" />
      ) : items.length === 0 ? (
        <Empty>{experiments.data.length ? 'No experiment matches these filters.' : 'No experiments in this project yet.'}</Empty>
      ) : (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full min-w-[820px] text-sm">
            <caption className="sr-only">Experiments</caption>
            <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
              <tr>
                <th scope="col" className="px-3 py-2">Experiment</th>
                <th scope="col" className="px-3 py-2">Status</th>
                <th scope="col" className="px-3 py-2">Owner</th>
                <th scope="col" className="px-3 py-2">Started</th>
                <th scope="col" className="px-3 py-2">Primary metric trend</th>
                <th scope="col" className="px-3 py-2">Alerts</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {items.map((e) => (
                <ExperimentRow key={e.key} e={e} project={project} owner={name(e.owner_id)}
                  breached={(breached.data ?? []).filter((g) => g.project === project && g.experiment === e.key)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && <NewExperimentDialog project={project} onClose={() => setCreating(false)} />}
    </div>
  );
}

function ExperimentRow({ e, project, owner, breached }: { e: Experiment; project: string; owner: string; breached: Guardrail[] }) {
  const live = e.status !== 'draft';
  const results = useResults(project, e.key, live);
  const alerts: { tone: 'red' | 'amber'; text: string }[] = [];
  if (results.data?.data_quality?.srm?.flagged) alerts.push({ tone: 'red', text: 'SRM' });
  if (results.data?.data_quality?.multiple_exposures?.flagged) alerts.push({ tone: 'amber', text: 'multiple exposures' });
  if (results.data?.data_quality?.too_few_units?.length) alerts.push({ tone: 'amber', text: 'too few units' });
  for (const g of breached) alerts.push({ tone: 'red', text: `guardrail ${g.metric} breached` });
  return (
    <tr>
      <th scope="row" className="px-3 py-2 text-left font-normal">
        <Link href={`/p/${project}/experiments/${e.key}`} className="font-medium text-blue-800 underline-offset-2 hover:underline">
          {e.name || e.key}
        </Link>
        <div className="text-xs text-slate-600">{e.flag} · {e.environment}</div>
      </th>
      <td className="px-3 py-2"><Badge tone={statusTone[e.status]}>{e.status}</Badge></td>
      <td className="px-3 py-2">{owner}</td>
      <td className="px-3 py-2">{date(e.started_at)}</td>
      <td className="px-3 py-2">{live && e.metrics.primary[0] ? <Sparkline project={project} e={e} metric={e.metrics.primary[0]} /> : <span className="text-slate-500">—</span>}</td>
      <td className="px-3 py-2">
        {alerts.length ? (
          <span className="flex flex-wrap gap-1">{alerts.map((a) => <Badge key={a.text} tone={a.tone}>{a.text}</Badge>)}</span>
        ) : (
          <span className="text-slate-500">none</span>
        )}
      </td>
    </tr>
  );
}

export function Sparkline({ project, e, metric }: { project: string; e: Experiment; metric: string }) {
  const ts = useTimeseries(project, e.key, metric);
  const treatment = e.variations.find((v) => v.variation !== e.control)?.variation;
  const pts = (ts.data ?? []).filter((p) => p.variation === treatment && p.effect !== null)
    .sort((a, b) => Date.parse(a.computed_at) - Date.parse(b.computed_at));
  if (!pts.length) return <span className="text-xs text-slate-500">{metric}: no data yet</span>;
  const w = 110, h = 28;
  const vals = pts.map((p) => p.effect as number);
  const lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
  // By time, not by index: the history is thinned to hourly, then daily snapshots after 7 days.
  const times = pts.map((p) => Date.parse(p.computed_at));
  const t0 = times[0], t1 = Math.max(times[times.length - 1], t0 + 1);
  const x = scaleLinear<number>({ domain: [t0, t1], range: [2, w - 2] });
  const y = scaleLinear<number>({ domain: [lo === hi ? lo - 0.01 : lo, lo === hi ? hi + 0.01 : hi], range: [h - 3, 3] });
  const last = vals[vals.length - 1];
  return (
    <span className="inline-flex items-center gap-2">
      <svg width={w} height={h} role="img" aria-label={`${metric} lift trend, latest ${signedPct(last)}`}>
        <Line from={{ x: 0, y: y(0) }} to={{ x: w, y: y(0) }} stroke="#94a3b8" strokeDasharray="2,2" />
        <LinePath data={vals} x={(_, i) => x(times[i])} y={(v) => y(v)} stroke="#1d4ed8" strokeWidth={1.5} />
      </svg>
      <span className="tabular text-xs text-slate-700">{signedPct(last)}</span>
    </span>
  );
}
