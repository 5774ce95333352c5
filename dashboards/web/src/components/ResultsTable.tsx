// The experiment results table: one row per metric × treatment with the baseline and the
// variation's value, the lift with its interval drawn against zero, the engine's measure of
// certainty, and the verdict in words.

import { chance, count, num, pct, pValue } from '../lib/format';
import type { ResultRow } from '../lib/results';
import { formatEffect, formatInterval, verdict, type Tone, type VerdictContext } from '../lib/verdict';
import { LiftBar, sharedDomain } from './LiftBar';

const toneText: Record<Tone, string> = {
  better: 'text-green-800',
  worse: 'text-red-800',
  unclear: 'text-slate-700',
  pending: 'text-slate-600',
  invalid: 'text-slate-600',
};

const toneIcon: Record<Tone, string> = { better: '▲', worse: '▼', unclear: '●', pending: '…', invalid: '!' };

export function metricValue(kind: ResultRow['kind'], mean: number): string {
  return kind === 'proportion' ? pct(mean, mean < 0.01 ? 2 : 1) : num(mean);
}

export function ResultsTable({
  rows,
  ctx,
  caption,
}: {
  rows: ResultRow[];
  ctx: VerdictContext;
  caption: string;
}) {
  if (!rows.length) return null;
  const domain = sharedDomain(rows.map((r) => r.ci), rows.map((r) => r.effect), rows[0].scale === 'relative' ? 1 : 1e9);
  const engine = rows[0].engine;
  const label = ctx.label ?? ((v: string) => v);
  return (
    <div className="overflow-x-auto">
      <table className="w-full min-w-[760px] border-collapse text-sm">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr className="border-b border-slate-200 text-left text-xs uppercase tracking-wide text-slate-600">
            <th scope="col" className="py-2 pr-3 font-semibold">Metric</th>
            <th scope="col" className="py-2 pr-3 text-right font-semibold">Baseline</th>
            <th scope="col" className="py-2 pr-3 text-right font-semibold">Variation</th>
            <th scope="col" className="py-2 pr-3 font-semibold">Lift ({rows[0].scale}) and {Math.round((1 - ctx.alpha) * 100)}% interval</th>
            <th scope="col" className="py-2 pr-3 text-right font-semibold">{engine === 'bayesian' ? 'Chance to win' : 'p-value'}</th>
            <th scope="col" className="py-2 font-semibold">Verdict</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const v = verdict(r, ctx);
            const effectText = r.effect === null ? '—' : formatEffect(r, r.effect);
            const intervalText = formatInterval(r, r.ci);
            return (
              <tr key={`${r.metric}/${r.treatment.variation}`} className="border-b border-slate-100 align-top" data-testid="result-row" data-tone={v.tone}>
                <th scope="row" className="py-2.5 pr-3 text-left font-medium text-slate-900">
                  <div>{r.metricName}</div>
                  <div className="text-xs font-normal text-slate-600">
                    {label(r.treatment.variation)} vs {label(r.control.variation)}
                    {r.direction === 'decrease' && ' · lower is better'}
                    {r.underpowered && ' · below minimum sample'}
                  </div>
                </th>
                <td className="tabular py-2.5 pr-3 text-right">
                  <div>{metricValue(r.kind, r.control.mean)}</div>
                  <div className="text-xs text-slate-600">{count(r.control.n)} users</div>
                </td>
                <td className="tabular py-2.5 pr-3 text-right">
                  <div>{metricValue(r.kind, r.treatment.mean)}</div>
                  <div className="text-xs text-slate-600">{count(r.treatment.n)} users</div>
                </td>
                <td className="py-2.5 pr-3">
                  <div className="flex items-center gap-2">
                    <LiftBar
                      effect={r.effect}
                      ci={r.ci}
                      domain={domain}
                      tone={v.tone}
                      label={`Lift ${effectText}, interval ${intervalText}`}
                    />
                    <div className="tabular min-w-[7rem]">
                      <div className={`font-semibold ${toneText[v.tone]}`}>{effectText}</div>
                      <div className="text-xs text-slate-600">{intervalText}</div>
                    </div>
                  </div>
                </td>
                <td className="tabular py-2.5 pr-3 text-right">
                  {engine === 'bayesian' ? chance(r.chanceToWin, ctx.alpha) : pValue(r.pValue, ctx.alpha)}
                  {(r.derived.engine || r.derived.scale) && (
                    <div className="text-xs text-slate-500" title="Computed in the browser from the same effect and standard error (STATS.md §6)">
                      derived
                    </div>
                  )}
                </td>
                <td className={`py-2.5 ${toneText[v.tone]}`}>
                  <span aria-hidden="true" className="mr-1">{toneIcon[v.tone]}</span>
                  <strong className="font-semibold">{v.headline}</strong>
                  {v.advice && <div className="text-xs text-slate-700">{v.advice.charAt(0).toUpperCase() + v.advice.slice(1)}.</div>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
