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

  it('carries an engine error instead of numbers', () => {
    const broken = structuredClone(snapshot);
    broken.metrics[0].variants[1] = { key: 'on', n: 1, mean: 0, effect: null, error: { code: 'too_few_units', message: 'n < 2' } };
    const [r] = buildRows(experiment, broken, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics });
    expect(r.effect).toBeNull();
    expect(r.error?.code).toBe('too_few_units');
    expect(isSignificant(r, 0.05)).toBe(false);
  });
});
