// "How long will it take?": for a draft experiment, the stats service's estimate of the users
// and days needed to detect a relative change on the primary metric, from the metric's baseline
// on the flag's recent traffic (GET /stats/v1/…/estimate, docs/experiments-api.md).

import { useEffect, useState } from 'react';
import { isApiError } from '../lib/api';
import { count, humanDuration, num, pct } from '../lib/format';
import { useEstimate } from '../lib/queries';
import type { Estimate, Experiment, Metric } from '../lib/types';
import { Card, ErrorBanner, Field, Notice, Spinner } from './ui';

/** The effect field ("5", "2.5%": a relative change in percent) as a ratio, or what is wrong with it. */
export function parseEffect(text: string): { effect: number; error?: undefined } | { effect?: undefined; error: string } {
  const t = text.trim().replace(/%$/, '').trim();
  if (!t) return { error: 'Enter the change to detect, in percent (for example 5).' };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: 'The change to detect must be a number of percent, such as 5 or 2.5.' };
  if (v <= 0) return { error: 'The change to detect must be more than 0%.' };
  // The stats service takes effects up to 10 (1000%).
  if (v > 1000) return { error: 'The change to detect must be at most 1000%.' };
  // 2.3 / 100 is 0.022999999999999996 in floating point: ask for 0.023.
  return { effect: Number((v / 100).toPrecision(12)) };
}

// Typing "2.5" must not ask the service about 2% first: the field is applied after a pause
// (or at once with Enter).
const applyAfterMs = 400;

export function EstimateCard({ e, project, metrics }: { e: Experiment; project: string; metrics: Metric[] }) {
  const [text, setText] = useState('5');
  const [applied, setApplied] = useState(text);
  useEffect(() => {
    if (text === applied) return;
    const t = setTimeout(() => setApplied(text), applyAfterMs);
    return () => clearTimeout(t);
  }, [text, applied]);
  const primary = e.metrics?.primary?.[0];
  const parsed = parseEffect(applied);
  const est = useEstimate(project, e.key, parsed.effect ?? null, !!primary);
  const metric = metrics.find((m) => m.key === (est.data?.metric ?? primary));
  const metricName = metric?.name || primary || '';
  // A 400 naming effect (e.g. no baseline yet) belongs next to the field; anything else is a banner.
  const fieldError = parsed.error ?? (isApiError(est.error) && est.error.field === 'effect' ? est.error.message : undefined);
  const otherError = est.error && !(isApiError(est.error) && est.error.field === 'effect') ? est.error : null;

  return (
    <Card title="How long will it take?">
      {!primary ? (
        <p className="text-sm text-slate-700">Add a primary metric to this experiment to estimate how many users and days it needs.</p>
      ) : (
        <div className="space-y-3">
          <form
            className="flex flex-wrap items-end gap-3"
            onSubmit={(ev) => {
              ev.preventDefault();
              setApplied(text);
            }}
          >
            <Field
              className="w-64"
              label="Change to detect (relative, %)"
              hint={`The smallest lift in ${metricName} worth finding: 5% means 10% would become 10.5%.`}
              error={fieldError}
            >
              {(p) => <input {...p} inputMode="decimal" autoComplete="off" value={text} onChange={(ev) => setText(ev.target.value)} />}
            </Field>
          </form>
          {parsed.error || fieldError ? null : est.isPending ? (
            <Spinner label="Estimating" />
          ) : otherError ? (
            <ErrorBanner error={otherError} title="The estimate could not be computed" />
          ) : est.data ? (
            <EstimateBody d={est.data} e={e} metricName={metricName} kind={metric?.kind} />
          ) : null}
        </div>
      )}
    </Card>
  );
}

/** Whole days to plan: 12.3 → "13 days" (the users arrive over whole days). */
function planDays(days: number): string {
  const n = Math.max(1, Math.ceil(days));
  return `${count(n)} ${n === 1 ? 'day' : 'days'}`;
}

/** Days for people: 12.3 → "about 13 days", 0.4 → "less than a day". */
function aboutDays(days: number): string {
  return days < 1 ? 'less than a day' : `about ${planDays(days)}`;
}

function EstimateBody({ d, e, metricName, kind }: { d: Estimate; e: Experiment; metricName: string; kind?: Metric['kind'] }) {
  const effect = pct(d.effect, d.effect < 0.01 ? 2 : 1);
  const planned = d.planned_days > 0 ? humanDuration(e.planned_duration) : null;
  const baseline = kind === 'proportion' ? `a rate of ${pct(d.baseline_mean, 1)}` : `an average of ${num(d.baseline_mean)} per user`;
  const alpha = e.analysis?.alpha ?? 0.05;
  return (
    <div className="space-y-3 text-sm text-slate-800" data-testid="estimate">
      <dl className="grid grid-cols-2 gap-3 sm:grid-cols-4">
        <Figure label="Users per variation" value={count(d.per_variant_n)} />
        <Figure label="Users in total" value={count(d.total_n)} />
        <Figure label="Time at recent traffic" value={aboutDays(d.days)} />
        <Figure label="Users a day" value={count(d.units_per_day)} />
      </dl>
      <p data-testid="estimate-summary">
        To reliably detect a {effect} change in {metricName}, the experiment needs about {count(d.per_variant_n)} users per
        variation ({count(d.total_n)} in total). At the flag’s recent traffic of {count(d.units_per_day)} users a day, that takes{' '}
        {aboutDays(d.days)}.
      </p>
      {planned === null ? (
        <Notice tone="blue" title="No duration is planned yet">Plan at least {planDays(d.days)} to detect a {effect} change.</Notice>
      ) : d.days <= d.planned_days ? (
        <Notice tone="green" title={`Fits in the planned ${planned}`}>The planned duration is long enough to detect a {effect} change.</Notice>
      ) : (
        <Notice tone="amber" title={`Longer than the planned ${planned}`}>
          Run it for {aboutDays(d.days)}, or accept that only larger changes will be detected.
        </Notice>
      )}
      {planned !== null && d.mde_at_planned_days !== null && (
        <p data-testid="estimate-mde">
          In the planned {planned}, the smallest change it can reliably detect in {metricName} is {pct(d.mde_at_planned_days, 1)}; smaller real
          changes may go unnoticed.
        </p>
      )}
      <p className="text-xs text-slate-600" data-testid="estimate-baseline">
        Based on {metricName} over the last {count(d.lookback_days)} days of traffic on flag {e.flag}: {baseline}. “Reliably” means{' '}
        {pct(d.power, 0)} power at a {pct(alpha, 0)} significance level: if the change is real, the experiment finds it{' '}
        {pct(d.power, 0)} of the time.
      </p>
    </div>
  );
}

function Figure({ label, value }: { label: string; value: string }) {
  return (
    <div className="rounded-md bg-slate-50 p-2">
      <dt className="text-xs text-slate-600">{label}</dt>
      <dd className="tabular text-lg font-semibold text-slate-900">{value}</dd>
    </div>
  );
}
