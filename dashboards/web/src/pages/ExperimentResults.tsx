// Experiment results: the page a product manager opens to learn which variation wins, by how
// much, and how sure we are — and where the experiment is concluded.

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link } from 'wouter';
import { EstimateCard } from '../components/EstimateCard';
import { LiftChart } from '../components/LiftChart';
import { ResultsTable } from '../components/ResultsTable';
import { Badge, Button, Card, ErrorBanner, Field, Modal, Notice, PageHeader, Segmented, Spinner } from '../components/ui';
import { api, enc } from '../lib/api';
import { breachChange, chance, count, date, dateTime, parseDuration, pct, pValue, relativeTime, signedPct } from '../lib/format';
import { keys, useExperiment, useFlag, useGuardrails, useMemberNames, useMetrics, useResults, useTimeseries } from '../lib/queries';
import { buildRows, type Engine, type ResultRow, type Scale } from '../lib/results';
import type { Experiment, Guardrail, Snapshot } from '../lib/types';
import { formatEffect, formatInterval, formatLoss, leadRow, verdict, type VerdictContext } from '../lib/verdict';

export const statusTone = { draft: 'slate', running: 'blue', stopped: 'amber', concluded: 'green' } as const;

export default function ExperimentResults({ project, experimentKey }: { project: string; experimentKey: string }) {
  const exp = useExperiment(project, experimentKey);
  const results = useResults(project, experimentKey, exp.data?.status !== 'draft');
  const metrics = useMetrics(project, true);
  const flag = useFlag(project, exp.data?.flag ?? '');
  const [engine, setEngine] = useState<Engine | null>(null);
  const [scale, setScale] = useState<Scale>('relative');
  const [showSecondary, setShowSecondary] = useState(false);
  const [concluding, setConcluding] = useState(false);
  const [starting, setStarting] = useState(false);
  const qc = useQueryClient();
  const name = useMemberNames();

  // The stats service recomputes synchronously and answers the new snapshot.
  const refresh = useMutation({
    mutationFn: () => api.post<Snapshot | undefined>(`/stats/v1/projects/${enc(project)}/experiments/${enc(experimentKey)}/refresh`),
    onSuccess: (snap) => {
      if (snap && snap.metrics) qc.setQueryData(keys.results(project, experimentKey), snap);
      else qc.invalidateQueries({ queryKey: keys.results(project, experimentKey) });
      qc.invalidateQueries({ queryKey: ['timeseries', project, experimentKey] });
    },
  });
  const stop = useMutation({
    mutationFn: () => api.post<Experiment>(`/api/v1/projects/${enc(project)}/experiments/${enc(experimentKey)}/stop`),
    onSuccess: (e) => qc.setQueryData(keys.experiment(project, experimentKey), e),
  });

  if (exp.isPending) return <Spinner label="Loading experiment" />;
  if (exp.error) return <ErrorBanner error={exp.error} title="The experiment could not be loaded" />;
  const e = exp.data;
  const alpha = e.analysis?.alpha ?? 0.05;
  const view: Engine = engine ?? results.data?.analysis?.engine ?? e.analysis?.engine ?? 'frequentist';
  const variationName = (key: string) => {
    const v = flag.data?.variations.find((x) => x.key === key);
    return v?.name || key;
  };
  const started = e.started_at ? new Date(e.started_at) : null;
  const plannedMs = parseDuration(e.planned_duration);
  const plannedEnd = started && plannedMs ? new Date(started.getTime() + plannedMs) : null;

  return (
    <div className="space-y-4">
      <PageHeader
        title={
          <span className="flex flex-wrap items-center gap-2">
            {e.name || e.key} <Badge tone={statusTone[e.status]}>{e.status}</Badge>
          </span>
        }
        subtitle={
          <span>
            Flag <Link className="text-blue-800 underline" href={`/p/${project}/flags/${e.flag}`}>{e.flag}</Link> in {e.environment}
            {' · '}owner {name(e.owner_id)}
            {' · '}started {date(e.started_at)}
            {plannedEnd && ` · planned until ${date(plannedEnd.toISOString())}`}
          </span>
        }
        actions={
          <>
            <Link className="text-sm text-blue-800 underline" href={`/p/${project}/experiments`}>All experiments</Link>
            {e.status === 'draft' && (
              <Button variant="primary" onClick={() => setStarting(true)}>Start experiment…</Button>
            )}
            {e.status === 'running' && (
              <Button onClick={() => refresh.mutate()} disabled={refresh.isPending}>
                {refresh.isPending ? 'Refreshing…' : 'Refresh results'}
              </Button>
            )}
            {e.status === 'running' && (
              <Button onClick={() => stop.mutate()} disabled={stop.isPending}>Stop collecting</Button>
            )}
            {(e.status === 'running' || e.status === 'stopped') && (
              <Button variant="primary" onClick={() => setConcluding(true)}>Conclude…</Button>
            )}
          </>
        }
      />
      <ErrorBanner error={refresh.error ?? stop.error} />
      {e.hypothesis && <p className="text-sm text-slate-700"><span className="font-semibold">Hypothesis:</span> {e.hypothesis}</p>}
      {e.decision && <DecisionNotice e={e} label={variationName} who={name(e.decision.decided_by)} />}
      {e.status === 'draft' ? (
        <>
          <Notice tone="blue" title="This experiment has not started">Results appear here once it runs and users are exposed.</Notice>
          <EstimateCard e={e} project={project} metrics={metrics.data ?? []} />
        </>
      ) : results.isPending ? (
        <Spinner label="Loading results" />
      ) : results.error ? (
        <ErrorBanner error={results.error} title="Results could not be loaded" />
      ) : !results.data ? (
        <Notice tone="blue" title="No results yet">
          The stats service has not computed results for this experiment yet. They appear after the first users are exposed
          {e.status === 'running' ? '; use “Refresh results” to compute now.' : '.'}
        </Notice>
      ) : (
        <ResultsBody
          e={e}
          snapshot={results.data}
          project={project}
          engine={view}
          scale={scale}
          alpha={alpha}
          plannedEnd={plannedEnd}
          showSecondary={showSecondary}
          controls={
            <div className="flex flex-wrap items-center gap-4">
              <Segmented label="Engine" value={view} onChange={setEngine} options={[{ value: 'frequentist', label: 'Frequentist' }, { value: 'bayesian', label: 'Bayesian' }]} />
              <Segmented label="Lift" value={scale} onChange={setScale} options={[{ value: 'relative', label: 'Relative' }, { value: 'absolute', label: 'Absolute' }]} />
              <label className="inline-flex items-center gap-2 text-sm text-slate-800">
                <input type="checkbox" className="h-4 w-4" checked={showSecondary} onChange={(ev) => setShowSecondary(ev.target.checked)} />
                Show secondary metrics
              </label>
            </div>
          }
          metricsCatalog={metrics.data ?? []}
          label={variationName}
        />
      )}
      {starting && <StartDialog e={e} project={project} onClose={() => setStarting(false)} />}
      {concluding && <ConcludeDialog e={e} project={project} onClose={() => setConcluding(false)} label={variationName} />}
    </div>
  );
}

function DecisionNotice({ e, label, who }: { e: Experiment; label: (v: string) => string; who: string }) {
  const d = e.decision!;
  // A ship or rollback leaves the flag alone when it no longer serves this experiment's rollout.
  const what = d.flag_unchanged
    ? (d.outcome === 'ship' ? `Ship ${label(d.variation ?? '')}` : `Roll back to ${label(e.control)}`) + ' (the flag was not changed)'
    : d.outcome === 'ship' ? `Shipped ${label(d.variation ?? '')} to everyone` : d.outcome === 'rollback' ? `Rolled back to ${label(e.control)}` : 'Concluded as inconclusive';
  return (
    <Notice tone="green" title={`Decision: ${what}`}>
      {d.rationale && <p>“{d.rationale}”</p>}
      {d.flag_unchanged && <p data-testid="flag-unchanged"><strong>The flag was not changed:</strong> {d.flag_unchanged}</p>}
      <p className="text-xs">by {who} on {dateTime(d.decided_at)}</p>
    </Notice>
  );
}

function ResultsBody({
  e, snapshot, project, engine, scale, alpha, plannedEnd, showSecondary, controls, metricsCatalog, label,
}: {
  e: Experiment;
  snapshot: Snapshot;
  project: string;
  engine: Engine;
  scale: Scale;
  alpha: number;
  plannedEnd: Date | null;
  showSecondary: boolean;
  controls: React.ReactNode;
  metricsCatalog: import('../lib/types').Metric[];
  label: (v: string) => string;
}) {
  const rows = useMemo(() => buildRows(e, snapshot, { engine, scale, alpha, metrics: metricsCatalog }), [e, snapshot, engine, scale, alpha, metricsCatalog]);
  const dq = snapshot.data_quality ?? {};
  // The stats service knows how far along the plan the data is; fall back to start + duration.
  const progress = snapshot.progress;
  const end = progress && progress.planned_days > 0 ? new Date(Date.parse(snapshot.computed_at) + progress.remaining_days * 86_400_000) : plannedEnd;
  const ctx: VerdictContext = {
    alpha,
    sequential: !!(snapshot.analysis?.sequential ?? e.analysis?.sequential) && engine === 'frequentist',
    status: e.status,
    plannedEnd: end,
    now: new Date(),
    srmFlagged: !!dq.srm?.flagged,
    label,
  };
  const primary = rows.filter((r) => r.role === 'primary');
  const secondary = rows.filter((r) => r.role === 'secondary');
  const guardrailRows = rows.filter((r) => r.role === 'guardrail');
  const lead = leadRow(rows);
  const leadVerdict = lead ? verdict(lead, ctx) : null;
  const totalExposed = Object.values(snapshot.exposures ?? {}).reduce((a, b) => a + b, 0);
  const leadMDE = lead ? (snapshot.metrics.find((m) => m.metric === lead.metric)?.mde_at_planned_size ?? null) : null;
  const correction = snapshot.analysis?.correction ?? e.analysis?.correction;
  const corrected = !!correction && correction !== 'none' && engine === 'frequentist';
  // A guardrail's harm belongs next to the verdict, not only in its card further down.
  const specs = e.metrics?.guardrails ?? [];
  const guardrails = useGuardrails(project, e.environment, specs.length > 0 && e.status !== 'draft');
  const guardName = (metric: string) => guardrailRows.find((r) => r.metric === metric)?.metricName ?? metric;
  const breached = (guardrails.data ?? []).filter((g) => g.experiment === e.key && g.status === 'breached').map((g) => g.metric);
  const harmed = [...new Set(guardrailRows.filter((r) => verdict(r, ctx).tone === 'worse').map((r) => r.metric))].filter((m) => !breached.includes(m));
  const guardWarnings = [
    ...breached.map((m) => `Guardrail ${guardName(m)} was breached: see Guardrails below before deciding.`),
    ...harmed.map((m) => `Guardrail ${guardName(m)} is clearly worse: see Guardrails below before deciding.`),
  ];
  return (
    <div className="space-y-4">
      <StaleResults snapshot={snapshot} />
      <DataQuality snapshot={snapshot} e={e} label={label} />
      {leadVerdict && lead && (
        <section aria-labelledby="verdict-heading" className={`rounded-lg border-l-4 bg-white p-4 shadow-sm ${
          leadVerdict.tone === 'better' ? 'border-green-700' : leadVerdict.tone === 'worse' ? 'border-red-700' : 'border-slate-400'
        }`}>
          <h2 id="verdict-heading" className="text-xs font-semibold uppercase tracking-wide text-slate-600">Verdict on the primary metric</h2>
          <p className="mt-1 text-lg font-semibold text-slate-900" data-testid="lead-verdict">
            {leadVerdict.headline}: {leadVerdict.detail}
          </p>
          {leadVerdict.advice && <p className="mt-1 text-slate-800">{leadVerdict.advice.charAt(0).toUpperCase() + leadVerdict.advice.slice(1)}.</p>}
          {leadMDE !== null && (
            <p className="mt-1 text-sm text-slate-700">
              At its planned size this experiment can reliably detect a change of {pct(leadMDE, 1)} or more in {lead.metricName}; smaller real effects may go unnoticed.
            </p>
          )}
          {guardWarnings.map((w) => (
            <p key={w} className="mt-1 font-medium text-red-900" data-testid="guardrail-warning">{w}</p>
          ))}
          <HowSure row={lead} alpha={alpha} sequential={ctx.sequential} />
        </section>
      )}
      <Card title="Results" actions={<span className="text-xs text-slate-600">computed {relativeTime(snapshot.computed_at)} · {count(totalExposed)} users exposed</span>}>
        <div className="mb-3">{controls}</div>
        {(scale === 'absolute' || engine !== (snapshot.analysis?.engine ?? e.analysis?.engine ?? 'frequentist')) && (
          <p className="mb-2 text-xs text-slate-600">
            Values marked “derived” are computed in the browser from the service’s effect and standard error
            {engine === 'bayesian' ? ' with a flat prior' : ' with a normal approximation'}
            {scale === 'absolute' ? '; absolute intervals scale the relative ones by the baseline' : ''}.
          </p>
        )}
        {corrected && (
          <p className="mb-2 text-xs text-slate-600">
            Intervals and p-values are adjusted for testing {rows.filter((r) => r.role !== 'guardrail' && r.pValue !== null).length} comparisons at once
            ({correction === 'holm' ? 'Holm–Bonferroni' : 'Benjamini–Hochberg'}), so they are wider than each metric alone; the chart below shows unadjusted intervals.
          </p>
        )}
        <ResultsTable rows={primary} ctx={ctx} caption="Primary metrics" />
        {showSecondary && secondary.length > 0 && (
          <>
            <h3 className="mb-1 mt-4 text-sm font-semibold text-slate-800">Secondary metrics</h3>
            <ResultsTable rows={secondary} ctx={ctx} caption="Secondary metrics" />
          </>
        )}
        {showSecondary && secondary.length === 0 && <p className="mt-3 text-sm text-slate-600">This experiment has no secondary metrics.</p>}
      </Card>
      <GuardrailsCard e={e} project={project} rows={guardrailRows} label={label} ctx={ctx} />
      <TrendCard e={e} project={project} rows={primary.concat(showSecondary ? secondary : [])} />
      <Exposures snapshot={snapshot} e={e} label={label} />
    </div>
  );
}

function HowSure({ row, alpha, sequential }: { row: ResultRow; alpha: number; sequential: boolean }) {
  if (row.effect === null || row.error) return null;
  const level = Math.round((1 - alpha) * 100);
  return (
    <details className="mt-2 text-sm text-slate-700">
      <summary className="cursor-pointer text-blue-800">How sure are we?</summary>
      {row.engine === 'bayesian' ? (
        <p className="mt-1">
          Given the data, there is a {chance(row.chanceToWin, alpha)} probability that {row.treatment.variation} is really better than{' '}
          {row.control.variation} on {row.metricName}. The true lift is most likely between the two ends of the {level}% credible interval.
          {row.risk && ` If we ship and are wrong, we expect ${row.metricName} to move by ${formatLoss(row, row.risk.treatment)}.`}
        </p>
      ) : (
        <p className="mt-1">
          The {level}% interval is the range of lifts compatible with the data; if it does not include 0, the data can tell the two
          variations apart. The p-value ({pValue(row.pValue, alpha)}) is how surprising this data would be if there were no difference at all.
          {sequential && ' These are sequential (always-valid) results: looking often does not inflate false positives, so they are wider early on.'}
        </p>
      )}
    </details>
  );
}

/** Says so when a refresh after this snapshot failed, so old results are not read as current. */
function StaleResults({ snapshot }: { snapshot: Snapshot }) {
  if (!snapshot.refresh_error) return null;
  return (
    <Notice tone="amber" title="These results are not up to date">
      Refreshing them failed {relativeTime(snapshot.refresh_error.at)} ({snapshot.refresh_error.message}); what you see was computed{' '}
      {relativeTime(snapshot.computed_at)}. The service retries every few minutes; if this stays, tell whoever runs Switchyard.
    </Notice>
  );
}

function DataQuality({ snapshot, e, label }: { snapshot: Snapshot; e: Experiment; label: (v: string) => string }) {
  const dq = snapshot.data_quality ?? {};
  const notices = [];
  if (dq.srm?.flagged) {
    const expected = dq.srm.expected ?? {};
    const observed = snapshot.exposures ?? {};
    const total = Object.values(observed).reduce((a, b) => a + b, 0) || 1;
    notices.push(
      <Notice key="srm" tone="red" title={`Sample ratio mismatch (p = ${pValue(dq.srm.p_value)}): don’t trust these results`}>
        <p>
          The split of users does not match the configuration:{' '}
          {Object.keys(observed).map((v, i) => (
            <span key={v}>
              {i > 0 && ', '}
              {label(v)} got {pct(observed[v] / total)} (expected {pct(expected[v] ?? 0)})
            </span>
          ))}
          . Something is losing or misassigning users (an assignment bug, bots, a redirect). Find the cause and restart the experiment.
        </p>
      </Notice>,
    );
  }
  if (dq.multiple_exposures?.flagged) {
    notices.push(
      <Notice key="multi" tone="amber" title="Users saw more than one variation">
        {count(dq.multiple_exposures.contexts)} users ({pct(dq.multiple_exposures.fraction, 2)}) were exposed to several variations, for example
        because targeting changed mid-experiment. They are left out of the results and of the user counts.
      </Notice>,
    );
  }
  const tooFew = dq.too_few_units ?? [];
  if (tooFew.length) {
    const names = tooFew.map((t) => (typeof t === 'string' ? t : [t.metric, t.variation].filter(Boolean).join(' / ')));
    notices.push(
      <Notice key="few" tone="amber" title="Too few users for some metrics">
        Not enough users yet for: {names.join(', ')}. Their numbers will move a lot; keep running before reading them.
      </Notice>,
    );
  }
  if (!notices.length) {
    return (
      <p className="text-sm text-green-900" role="status">
        <span aria-hidden="true">✓ </span>Data quality checks passed: traffic split as configured
        {dq.srm ? ` (SRM p = ${pValue(dq.srm.p_value)})` : ''}
        {e.status === 'running' ? '.' : '.'}
      </p>
    );
  }
  return <div className="space-y-2">{notices}</div>;
}

function GuardrailsCard({ e, project, rows, label, ctx }: { e: Experiment; project: string; rows: ResultRow[]; label: (v: string) => string; ctx: VerdictContext }) {
  const specs = e.metrics?.guardrails ?? [];
  const guardrails = useGuardrails(project, e.environment, specs.length > 0 && e.status !== 'draft');
  if (!specs.length) return null;
  const mine = (guardrails.data ?? []).filter((g) => g.experiment === e.key);
  return (
    <Card title="Guardrails">
      <p className="mb-2 text-sm text-slate-600">Metrics that must not get worse. A breach alerts the team or rolls the flag back automatically.</p>
      <ErrorBanner error={guardrails.error} />
      <ul className="divide-y divide-slate-100">
        {specs.map((s) => {
          const g: Guardrail | undefined = mine.find((x) => x.metric === s.metric);
          const status = g?.status ?? (e.status === 'running' ? 'active' : 'inactive');
          const metricRows = rows.filter((r) => r.metric === s.metric);
          // The monitor breaches only on its always-valid test beyond the tolerance; until then
          // these results may already show a clear harm, which must not read as "healthy".
          const harmed = metricRows.some((r) => verdict(r, ctx).tone === 'worse');
          return (
            <li key={s.metric} className="flex flex-wrap items-center justify-between gap-2 py-2" data-testid="guardrail">
              <div>
                <p className="font-medium text-slate-900">{metricRows[0]?.metricName ?? s.metric}</p>
                <p className="text-xs text-slate-600">
                  Breach if it gets worse by more than {pct(s.tolerance, 1)} · then {s.action === 'rollback' ? 'roll back automatically' : 'alert'}
                </p>
              </div>
              <div className="flex items-center gap-3 text-sm">
                {metricRows.map((r) => {
                  const worse = verdict(r, ctx).tone === 'worse';
                  return (
                    <span key={r.treatment.variation} className={`tabular ${worse ? 'text-red-800' : 'text-slate-800'}`}>
                      {label(r.treatment.variation)}: {r.effect === null ? 'no data' : `${formatEffect(r, r.effect)} (${formatInterval(r, r.ci)})`}
                      {worse && ', clearly worse'}
                    </span>
                  );
                })}
                <Badge tone={status === 'breached' ? 'red' : status === 'active' ? (harmed ? 'amber' : 'green') : 'slate'}>
                  {status === 'breached' ? 'breached' : status === 'active' ? (harmed ? 'not breached yet' : 'healthy') : status}
                </Badge>
              </div>
              {g?.breach && (
                <p className="w-full text-sm text-red-900">
                  Breached {dateTime(g.breach.at)}: {breachChange(g.breach.effect, g.breach.absolute)}{g.breach.absolute ? ' from a control mean of 0' : ''} (p = {pValue(g.breach.p_value)})
                  {g.breach.action_taken ? `; action taken: ${g.breach.action_taken.replace(/_/g, ' ')}` : ''}.
                </p>
              )}
            </li>
          );
        })}
      </ul>
    </Card>
  );
}

function TrendCard({ e, project, rows }: { e: Experiment; project: string; rows: ResultRow[] }) {
  const metricKeys = [...new Set(rows.map((r) => r.metric))];
  const [metric, setMetric] = useState(metricKeys[0] ?? '');
  const current = metricKeys.includes(metric) ? metric : (metricKeys[0] ?? '');
  const ts = useTimeseries(project, e.key, current);
  if (!metricKeys.length) return null;
  const names = new Map(rows.map((r) => [r.metric, r.metricName]));
  return (
    <Card
      title="Lift over time"
      actions={
        <Field label={<span className="sr-only">Metric</span>} className="w-56">
          {(p) => (
            <select {...p} value={current} onChange={(ev) => setMetric(ev.target.value)}>
              {metricKeys.map((k) => <option key={k} value={k}>{names.get(k)}</option>)}
            </select>
          )}
        </Field>
      }
    >
      <p className="mb-2 text-sm text-slate-600">Cumulative relative lift with its interval, one point per results snapshot. Intervals narrow as users accumulate.</p>
      {ts.isPending ? <Spinner label="Loading history" /> : ts.error ? <ErrorBanner error={ts.error} /> : (
        <LiftChart points={ts.data ?? []} format={(x) => signedPct(x)} title={`Lift of ${names.get(current)} over time`} />
      )}
    </Card>
  );
}

function Exposures({ snapshot, e, label }: { snapshot: Snapshot; e: Experiment; label: (v: string) => string }) {
  const total = e.variations.reduce((a, v) => a + v.weight, 0) || 1;
  return (
    <Card title="Traffic">
      <table className="text-sm">
        <caption className="sr-only">Users exposed per variation</caption>
        <thead>
          <tr className="text-left text-xs uppercase text-slate-600">
            <th scope="col" className="pr-6">Variation</th>
            <th scope="col" className="pr-6 text-right">Users</th>
            <th scope="col" className="text-right">Planned share</th>
          </tr>
        </thead>
        <tbody>
          {e.variations.map((v) => (
            <tr key={v.variation}>
              <th scope="row" className="pr-6 text-left font-normal">{label(v.variation)}{v.variation === e.control ? ' (control)' : ''}</th>
              <td className="tabular pr-6 text-right">{count(snapshot.exposures?.[v.variation] ?? 0)}</td>
              <td className="tabular text-right">{pct(v.weight / total, 0)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="mt-2 text-xs text-slate-600">Data from {dateTime(snapshot.data_from)} to {dateTime(snapshot.data_to)}.</p>
    </Card>
  );
}

/** Asks before starting a draft: starting changes the flag, which users notice at once. */
function StartDialog({ e, project, onClose }: { e: Experiment; project: string; onClose: () => void }) {
  const qc = useQueryClient();
  const start = useMutation({
    mutationFn: () => api.post<Experiment>(`/api/v1/projects/${enc(project)}/experiments/${enc(e.key)}/start`),
    onSuccess: (next) => {
      qc.setQueryData(keys.experiment(project, e.key), next);
      qc.invalidateQueries({ queryKey: keys.experiment(project, e.key) });
      qc.invalidateQueries({ queryKey: keys.experiments(project) });
      qc.invalidateQueries({ queryKey: keys.flag(project, e.flag) });
      onClose();
    },
  });
  const total = e.variations.reduce((a, v) => a + v.weight, 0) || 1;
  return (
    <Modal open onClose={onClose} title={`Start “${e.name || e.key}”?`}>
      <form className="space-y-3" onSubmit={(ev) => { ev.preventDefault(); if (!start.isPending) start.mutate(); }}>
        <div className="space-y-2 text-sm text-slate-700">
          <p>
            Starting changes flag <strong>{e.flag}</strong> in <strong>{e.environment}</strong>: it is turned on and serves the
            experiment’s split ({e.variations.map((v) => `${v.variation} ${pct(v.weight / total, 1)}`).join(', ')}) to everyone who
            reaches its default rule. The change is versioned and recorded in the audit log.
          </p>
          <p>In a critical environment, starting may need a project admin.</p>
        </div>
        <ErrorBanner error={start.error} title="The experiment could not be started" />
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={start.isPending}>{start.isPending ? 'Starting…' : 'Start experiment'}</Button>
        </div>
      </form>
    </Modal>
  );
}

function ConcludeDialog({ e, project, onClose, label }: { e: Experiment; project: string; onClose: () => void; label: (v: string) => string }) {
  const treatments = e.variations.map((v) => v.variation).filter((v) => v !== e.control);
  // No decision is preselected: shipping (or rolling back) must be chosen, never the default.
  const [choice, setChoice] = useState<string>('');
  const [rationale, setRationale] = useState('');
  const qc = useQueryClient();
  const conclude = useMutation({
    mutationFn: () => {
      const [outcome, variation] = choice.split(':');
      return api.post<Experiment>(`/api/v1/projects/${enc(project)}/experiments/${enc(e.key)}/conclude`, {
        outcome,
        ...(outcome === 'ship' ? { variation } : {}),
        rationale,
      });
    },
    onSuccess: (next) => {
      qc.setQueryData(keys.experiment(project, e.key), next);
      qc.invalidateQueries({ queryKey: keys.experiments(project) });
      qc.invalidateQueries({ queryKey: keys.flag(project, e.flag) });
      onClose();
    },
  });
  const options = [
    ...treatments.map((t) => ({ value: `ship:${t}`, label: `Ship ${label(t)}`, help: `Everyone in ${e.environment} gets ${label(t)} (flag ${e.flag} changes).` })),
    { value: 'rollback:', label: `Roll back to ${label(e.control)}`, help: `Everyone in ${e.environment} gets ${label(e.control)}.` },
    { value: 'inconclusive:', label: 'Inconclusive', help: 'Record the decision; the flag keeps serving as it does now.' },
  ];
  return (
    <Modal open onClose={onClose} title={`Conclude “${e.name || e.key}”`}>
      <form
        className="space-y-3"
        onSubmit={(ev) => {
          ev.preventDefault();
          conclude.mutate();
        }}
      >
        <fieldset>
          <legend className="mb-1 text-sm font-medium text-slate-800">Decision</legend>
          <div className="space-y-1.5">
            {options.map((o) => (
              <label key={o.value} className="flex items-start gap-2 rounded-md border border-slate-200 p-2 text-sm has-[:checked]:border-blue-700 has-[:checked]:bg-blue-50">
                <input type="radio" name="decision" className="mt-0.5" value={o.value} checked={choice === o.value} onChange={() => setChoice(o.value)} />
                <span>
                  <span className="font-medium text-slate-900">{o.label}</span>
                  <span className="block text-xs text-slate-600">{o.help}</span>
                </span>
              </label>
            ))}
          </div>
        </fieldset>
        <Field label="Why (kept with the experiment)" error={conclude.error && (conclude.error as { field?: string }).field === 'rationale' ? (conclude.error as Error).message : undefined}>
          {(p) => <textarea {...p} rows={3} required value={rationale} onChange={(ev) => setRationale(ev.target.value)} />}
        </Field>
        <ErrorBanner error={conclude.error && (conclude.error as { field?: string }).field !== 'rationale' ? conclude.error : null} />
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={conclude.isPending || !choice || !rationale.trim()}>
            {conclude.isPending ? 'Concluding…' : 'Conclude experiment'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
