// Turns a results snapshot (docs/experiments-api.md, STATS.md §11) into the rows the results
// page shows: one per metric × treatment, in the engine view and difference scale the reader
// picked. The stats service computes one engine and one scale; the other views are derived
// here from the same effect and standard error with the formulas of STATS.md §6 (flat prior)
// and flagged as derived, so the page never pretends they came from the service.

import type { Experiment, Metric, MetricKind, MetricResult, Snapshot, VariantResult } from './types';
import { normCdf, normPdf, normQuantile } from './normal';

export type Engine = 'frequentist' | 'bayesian';
export type Scale = 'relative' | 'absolute';

export interface ResultRow {
  metric: string;
  metricName: string;
  role: MetricResult['role'];
  kind: MetricKind;
  direction: 'increase' | 'decrease';
  control: { variation: string; n: number; mean: number };
  treatment: { variation: string; n: number; mean: number };
  engine: Engine;
  scale: Scale;
  effect: number | null;
  ci: [number | null, number | null] | null;
  se: number | null;
  pValue: number | null;
  chanceToWin: number | null;
  risk: { control: number; treatment: number } | null;
  error: { code: string; message: string } | null;
  /** The engine view or scale was computed here rather than by the stats service. */
  derived: { engine: boolean; scale: boolean };
  /** Below the metric's minimum sample size in some arm. */
  underpowered: boolean;
}

export interface RowOptions {
  engine: Engine;
  scale: Scale;
  alpha: number;
  metrics?: Metric[];
}

function variantKey(v: VariantResult): string {
  return v.variation ?? v.key ?? '';
}

/** Which engine and scale the snapshot's numbers are in. */
export function nativeView(experiment: Experiment, m: MetricResult, snapshot?: Snapshot): { engine: Engine; scale: Scale } {
  const engine = (m.analysis?.engine as Engine | undefined) ?? snapshot?.analysis?.engine ?? experiment.analysis?.engine ?? 'frequentist';
  return {
    engine: engine === 'bayesian' ? 'bayesian' : 'frequentist',
    scale: m.analysis?.difference ?? snapshot?.analysis?.difference ?? 'relative',
  };
}

export function buildRows(experiment: Experiment, snapshot: Snapshot, opts: RowOptions): ResultRow[] {
  const byKey = new Map((opts.metrics ?? []).map((m) => [m.key, m]));
  const rows: ResultRow[] = [];
  // The stats service's own check of each metric's minimum sample (with the metric version the
  // experiment recorded), whatever the catalog says now.
  const tooFew = snapshot.data_quality?.too_few_units ?? [];
  const short = (metric: string, variations: string[]) =>
    tooFew.some((t) => (typeof t === 'string' ? t === metric : t.metric === metric && (!t.variation || variations.includes(t.variation))));
  for (const m of snapshot.metrics) {
    const def = byKey.get(m.metric);
    const native = nativeView(experiment, m, snapshot);
    const arms = m.variants.map((v) => ({ variation: variantKey(v), n: v.n, mean: v.mean ?? Number.NaN }));
    const analysed = m.analysis?.variants ?? m.variants;
    const controlKey = snapshot.control ?? experiment.control ?? arms[0]?.variation;
    if (!arms.length) {
      // A metric the service could not compute (m.error) has no arms at all: it still gets its
      // rows, saying why, rather than vanishing from the page (and from the lead verdict).
      const error = m.error
        ? { code: 'metric_error', message: m.error }
        : { code: 'no_result', message: 'no result for this metric yet' };
      for (const v of experiment.variations) {
        if (v.variation === controlKey) continue;
        rows.push({
          metric: m.metric, metricName: m.name || def?.name || m.metric, role: m.role, kind: m.kind,
          direction: m.direction ?? def?.direction ?? 'increase',
          control: { variation: controlKey, n: 0, mean: Number.NaN }, treatment: { variation: v.variation, n: 0, mean: Number.NaN },
          engine: opts.engine, scale: opts.scale, effect: null, ci: null, se: null, pValue: null, chanceToWin: null, risk: null,
          error, derived: { engine: false, scale: false }, underpowered: false,
        });
      }
      continue;
    }
    const controlArm = arms.find((v) => v.variation === controlKey) ?? arms[0];
    for (const arm of arms) {
      if (arm.variation === controlArm.variation) continue;
      const res = analysed.find((v) => variantKey(v) === arm.variation) ?? null;
      rows.push(
        convert(
          {
            metric: m.metric,
            metricName: m.name || def?.name || m.metric,
            role: m.role,
            kind: m.kind,
            direction: m.direction ?? def?.direction ?? 'increase',
            control: controlArm,
            treatment: arm,
            res,
            native,
            minSample: def?.min_sample_size ?? 0,
            tooFew: short(m.metric, [controlArm.variation, arm.variation]),
          },
          opts,
        ),
      );
    }
  }
  return rows;
}

interface ConvertInput extends Pick<ResultRow, 'metric' | 'metricName' | 'role' | 'kind' | 'direction' | 'control' | 'treatment'> {
  res: VariantResult | null;
  native: { engine: Engine; scale: Scale };
  minSample: number;
  /** The snapshot lists this metric and arm below its minimum sample. */
  tooFew?: boolean;
}

type Interval = [number | null, number | null];

// hull is the smallest interval holding both (an end null is unbounded); either missing, the other.
export function hull(a: Interval | null | undefined, b: Interval | null | undefined): Interval | null {
  if (!a || !b) return a ?? b ?? null;
  const lo = a[0] === null || b[0] === null ? null : Math.min(a[0], b[0]);
  const hi = a[1] === null || b[1] === null ? null : Math.max(a[1], b[1]);
  return [lo, hi];
}

function finite(x: number | null | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

export function convert(i: ConvertInput, opts: RowOptions): ResultRow {
  const base: ResultRow = {
    metric: i.metric,
    metricName: i.metricName,
    role: i.role,
    kind: i.kind,
    direction: i.direction,
    control: i.control,
    treatment: i.treatment,
    engine: opts.engine,
    scale: opts.scale,
    effect: null,
    ci: null,
    se: null,
    pValue: null,
    chanceToWin: null,
    risk: null,
    error: i.res?.error ?? null,
    derived: { engine: opts.engine !== i.native.engine, scale: opts.scale !== i.native.scale },
    underpowered: !!i.tooFew || (i.minSample > 0 && (i.control.n < i.minSample || i.treatment.n < i.minSample)),
  };
  const r = i.res;
  if (!r || r.error || !finite(r.effect)) {
    if (!r && !base.error) base.error = { code: 'no_result', message: 'no result for this variation yet' };
    return base;
  }
  // 1. The scale: relative ↔ absolute through the control mean (STATS.md §3; the control mean
  // is treated as known, which is what the difference of the two variances amounts to when the
  // lift is small).
  let factor = 1;
  if (opts.scale !== i.native.scale) {
    const mA = i.control.mean;
    if (!finite(mA) || mA === 0) {
      return { ...base, error: { code: 'zero_baseline', message: 'the control mean is 0, so a relative lift is undefined' } };
    }
    factor = opts.scale === 'absolute' ? mA : 1 / mA;
  }
  // A negative control mean (a profit metric, say) flips the sign: the ends swap, an unbounded
  // end included.
  const scaleCI = (ci: [number | null, number | null] | null | undefined): [number | null, number | null] | null => {
    if (!ci) return null;
    const lo = finite(ci[0]) ? ci[0] * factor : null;
    const hi = finite(ci[1]) ? ci[1] * factor : null;
    return factor < 0 ? [hi, lo] : [lo, hi];
  };
  const effect = r.effect * factor;
  const se = finite(r.se) ? Math.abs(r.se * factor) : null;
  const z = normQuantile(1 - opts.alpha / 2);
  base.effect = effect;
  base.se = se;

  if (opts.engine === i.native.engine) {
    // Adjusted values (multiple-testing correction) when the service computed them. STATS.md §8
    // inverts the adjusted p-value with the normal distribution; under sequential testing that
    // interval can come out narrower than the always-valid one itself — tighter for having
    // corrected. The row shows the hull of the two: never narrower than either.
    base.ci = scaleCI(hull(r.ci_adjusted, r.ci));
    base.pValue = finite(r.p_value_adjusted) ? r.p_value_adjusted : finite(r.p_value) ? r.p_value : null;
    base.chanceToWin = finite(r.chance_to_win) ? r.chance_to_win : null;
    base.risk = r.risk ? { control: r.risk.control * factor, treatment: r.risk.treatment * factor } : null;
    return base;
  }
  if (se === null || se === 0) {
    return { ...base, error: { code: 'zero_variance', message: 'no spread in the data, so no interval' } };
  }
  if (opts.engine === 'bayesian') {
    // Flat prior: posterior N(d, se²) (STATS.md §6).
    const m = effect;
    const s = se;
    const pUp = normCdf(m / s);
    const riskControl = m * normCdf(m / s) + s * normPdf(m / s);
    const riskTreatment = -m * normCdf(-m / s) + s * normPdf(m / s);
    const inverse = i.direction === 'decrease';
    base.chanceToWin = inverse ? 1 - pUp : pUp;
    base.risk = inverse ? { control: riskTreatment, treatment: riskControl } : { control: riskControl, treatment: riskTreatment };
    base.ci = [m - z * s, m + z * s];
  } else {
    // Normal approximation of the fixed-horizon test from the same effect and standard error.
    base.pValue = Math.min(1, 2 * normCdf(-Math.abs(effect / se)));
    base.ci = [effect - z * se, effect + z * se];
  }
  return base;
}

/** Whether a row's result counts as a clear difference under its engine. */
export function isSignificant(row: ResultRow, alpha: number): boolean {
  if (row.effect === null || row.error) return false;
  if (row.engine === 'bayesian') {
    return row.chanceToWin !== null && (row.chanceToWin >= 1 - alpha || row.chanceToWin <= alpha);
  }
  if (row.pValue !== null) return row.pValue < alpha;
  if (row.ci) {
    const [lo, hi] = row.ci;
    return (lo !== null && lo > 0) || (hi !== null && hi < 0);
  }
  return false;
}

/** Whether the treatment moved the metric in the good direction. */
export function isImprovement(row: ResultRow): boolean {
  if (row.effect === null) return false;
  return row.direction === 'decrease' ? row.effect < 0 : row.effect > 0;
}
