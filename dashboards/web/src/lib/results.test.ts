import { describe, expect, it } from 'vitest';
import { bayesianCheckout, experiment, metrics, snapshot } from '../test/fixtures';
import { buildRows, isSignificant } from './results';

describe('buildRows', () => {
  it('makes one row per metric and treatment, with the control as baseline', () => {
    const rows = buildRows(experiment, snapshot, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(rows.map((r) => `${r.metric}:${r.control.variation}→${r.treatment.variation}:${r.role}`)).toEqual([
      'checkout-conversion:off→on:primary',
      'revenue-per-user:off→on:secondary',
      'error-rate:off→on:guardrail',
    ]);
    expect(rows[0].metricName).toBe('Checkout conversion');
    expect(rows[0].derived).toEqual({ engine: false, scale: false });
    expect(rows[0].pValue).toBeCloseTo(0.012559, 6);
  });

  it('derives the Bayesian view (flat prior) exactly as the stats engine computes it', () => {
    const [r] = buildRows(experiment, snapshot, { engine: 'bayesian', scale: 'relative', alpha: 0.05, metrics });
    expect(r.derived.engine).toBe(true);
    expect(r.chanceToWin).toBeCloseTo(bayesianCheckout.chance_to_win, 5);
    expect(r.ci![0]).toBeCloseTo(bayesianCheckout.ci[0], 5);
    expect(r.ci![1]).toBeCloseTo(bayesianCheckout.ci[1], 5);
    expect(r.risk!.control).toBeCloseTo(bayesianCheckout.risk.control, 5);
    expect(r.risk!.treatment).toBeCloseTo(bayesianCheckout.risk.treatment, 6);
  });

  it('flips chance to win for lower-is-better metrics', () => {
    const rows = buildRows(experiment, snapshot, { engine: 'bayesian', scale: 'relative', alpha: 0.05, metrics });
    const errors = rows.find((r) => r.metric === 'error-rate')!;
    expect(errors.chanceToWin!).toBeLessThan(0.05);
    expect(isSignificant(errors, 0.05)).toBe(true);
  });

  it('scales to absolute differences through the baseline', () => {
    const [r] = buildRows(experiment, snapshot, { engine: 'frequentist', scale: 'absolute', alpha: 0.05, metrics });
    expect(r.effect!).toBeCloseTo(0.1058540948596903 * 0.11202506854680767, 10);
    expect(r.derived.scale).toBe(true);
  });

  it('reads the contract’s older form too (arms in variants, the engine’s rows in analysis)', () => {
    const legacy = structuredClone(snapshot);
    delete legacy.control;
    delete legacy.analysis;
    for (const m of legacy.metrics) {
      m.analysis = { key: m.metric, variants: m.variants };
      m.variants = m.variants.map((v) => ({ variation: v.key, n: v.n, mean: v.mean }));
      delete m.name;
    }
    const now = buildRows(experiment, snapshot, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    const old = buildRows(experiment, legacy, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(old).toEqual(now);
  });

  it('keeps an interval in order when a negative baseline flips its sign (relative → absolute)', () => {
    const profit = structuredClone(snapshot);
    profit.metrics[1].variants = [
      { key: 'off', n: 10212, mean: -2 },
      { key: 'on', n: 10187, mean: -1.5, effect: -0.25, ci: [-0.4, -0.1], se: 0.08, p_value: 0.002, error: null },
    ];
    const abs = buildRows(experiment, profit, { engine: 'frequentist', scale: 'absolute', alpha: 0.05, metrics })[1];
    expect(abs.effect).toBeCloseTo(0.5, 10);
    expect(abs.ci![0]).toBeCloseTo(0.2, 10);
    expect(abs.ci![1]).toBeCloseTo(0.8, 10);
    profit.metrics[1].variants[1].ci = [-0.4, null]; // one-sided "greater": unbounded above
    const oneSided = buildRows(experiment, profit, { engine: 'frequentist', scale: 'absolute', alpha: 0.05, metrics })[1];
    expect(oneSided.ci![0]).toBeNull();
    expect(oneSided.ci![1]).toBeCloseTo(0.8, 10);
  });

  it('never shows an adjusted interval narrower than the unadjusted one (sequential: STATS.md §8 can make it so)', () => {
    const seq = structuredClone(snapshot);
    const on = seq.metrics[0].variants[1];
    on.effect = 0.2;
    on.ci = [0.05, 0.35]; // the always-valid interval
    on.p_value = 0.001;
    on.p_value_adjusted = 0.002;
    on.ci_adjusted = [0.09, 0.31]; // d ± z·|d / z(1 − p_adj/2)|: narrower
    const [narrower] = buildRows(experiment, seq, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(narrower.ci).toEqual([0.05, 0.35]);
    expect(narrower.pValue).toBe(0.002);
    on.ci_adjusted = [0.01, 0.39]; // wider: as it is
    expect(buildRows(experiment, seq, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics })[0].ci).toEqual([0.01, 0.39]);
    on.ci_adjusted = [0.06, null]; // unbounded above
    expect(buildRows(experiment, seq, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics })[0].ci).toEqual([0.05, null]);
  });

  it('marks a row below the minimum sample from the snapshot’s own check', () => {
    const few = structuredClone(snapshot);
    few.data_quality.too_few_units = [{ metric: 'revenue-per-user', variation: 'on', n: 150, minimum: 200 }];
    const rows = buildRows(experiment, few, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(rows.map((r) => r.underpowered)).toEqual([false, true, false]);
  });

  it('keeps a metric the service could not compute, with its reason, instead of dropping it', () => {
    const failed = structuredClone(snapshot);
    failed.metrics[0] = { ...failed.metrics[0], variants: [], mde_at_planned_size: null, error: 'cannot load the metric’s definition (version 3)' };
    const rows = buildRows(experiment, failed, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(rows.map((r) => `${r.metric}:${r.control.variation}→${r.treatment.variation}`)).toEqual([
      'checkout-conversion:off→on', 'revenue-per-user:off→on', 'error-rate:off→on',
    ]);
    expect(rows[0].effect).toBeNull();
    expect(rows[0].error).toEqual({ code: 'metric_error', message: 'cannot load the metric’s definition (version 3)' });
    expect(isSignificant(rows[0], 0.05)).toBe(false);
  });

  it('carries an engine error instead of numbers', () => {
    const broken = structuredClone(snapshot);
    broken.metrics[0].variants[1] = { key: 'on', n: 1, mean: 0, effect: null, error: { code: 'too_few_units', message: 'n < 2' } };
    const [r] = buildRows(experiment, broken, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(r.effect).toBeNull();
    expect(r.error?.code).toBe('too_few_units');
    expect(isSignificant(r, 0.05)).toBe(false);
  });
});
