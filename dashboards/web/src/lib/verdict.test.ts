import { describe, expect, it } from 'vitest';
import { experiment, metrics, snapshot } from '../test/fixtures';
import { chance, humanDuration, pValue, signedPct, signedPP } from './format';
import { buildRows, type ResultRow } from './results';
import { leadRow, verdict, type VerdictContext } from './verdict';

const now = new Date('2026-11-12T10:00:00Z'); // 11.4 days into a 14-day experiment
const ctx = (over: Partial<VerdictContext> = {}): VerdictContext => ({
  alpha: 0.05, sequential: false, status: 'running', plannedEnd: new Date('2026-11-15T00:00:00Z'), now, srmFlagged: false, ...over,
});
const rows = (engine: 'frequentist' | 'bayesian' = 'frequentist', scale: 'relative' | 'absolute' = 'relative') =>
  buildRows(experiment, snapshot, { engine, scale, alpha: 0.05, metrics });
const row = (metric: string, r: ResultRow[] = rows()) => r.find((x) => x.metric === metric)!;

describe('verdict wording', () => {
  it('names the winner, the lift and its interval, and says how long to keep running', () => {
    expect(verdict(row('checkout-conversion'), ctx()).sentence).toBe(
      'on is better: +10.6% Checkout conversion, 95% CI +2.3% to +18.9%; keep running 3 more days for the planned power (don’t stop early on a significant result)',
    );
  });

  it('uses the flag’s variation names when given', () => {
    const v = verdict(row('checkout-conversion'), ctx({ label: (k) => (k === 'on' ? 'One-page checkout' : 'Classic checkout') }));
    expect(v.headline).toBe('One-page checkout is better');
  });

  it('says there is no clear difference when the interval includes zero', () => {
    const v = verdict(row('revenue-per-user'), ctx());
    expect(v.tone).toBe('unclear');
    expect(v.sentence).toBe('No clear difference yet: +0.80% Revenue per user, 95% CI −6.1% to +7.7%; keep running 3 more days for the planned power');
  });

  it('calls a significant rise of a lower-is-better metric worse', () => {
    const v = verdict(row('error-rate'), ctx());
    expect(v.tone).toBe('worse');
    expect(v.headline).toBe('on is worse');
    expect(v.detail).toBe('+27.8% Error rate, 95% CI +4.6% to +50.9%');
  });

  it('lets sequential experiments stop as soon as the result is clear', () => {
    const v = verdict(row('checkout-conversion'), ctx({ sequential: true }));
    expect(v.advice).toBe('you can stop now: this result stays valid however often you look');
  });

  it('reports a null result at the planned end as a result', () => {
    const v = verdict(row('revenue-per-user'), ctx({ now: new Date('2026-11-16T00:00:00Z') }));
    expect(v.headline).toBe('No clear difference');
    expect(v.advice).toMatch(/^the planned duration is over: the effect is probably smaller than this experiment could detect/);
  });

  it('says the planned duration is reached for a significant fixed-horizon result', () => {
    const v = verdict(row('checkout-conversion'), ctx({ now: new Date('2026-11-16T00:00:00Z') }));
    expect(v.advice).toBe('the planned duration is reached: ready to decide');
  });

  it('refuses to call a winner when the traffic split is broken (SRM)', () => {
    const v = verdict(row('checkout-conversion'), ctx({ srmFlagged: true }));
    expect(v.tone).toBe('invalid');
    expect(v.headline).toBe('Results can’t be trusted');
  });

  it('explains engine errors in plain words', () => {
    const r: ResultRow = { ...row('checkout-conversion'), effect: null, error: { code: 'too_few_units', message: 'n < 2' } };
    const v = verdict(r, ctx());
    expect(v.tone).toBe('pending');
    expect(v.sentence).toBe('Not enough data yet: too few users in one of the groups to estimate anything yet; keep running');
  });

  it('does not send the reader to an absolute view that has the same error', () => {
    const zero = structuredClone(snapshot);
    zero.metrics[0].variants[1] = { key: 'on', n: 10187, mean: 0.01, effect: null, error: { code: 'zero_baseline', message: 'control mean is 0' } };
    for (const scale of ['relative', 'absolute'] as const) {
      const r = buildRows(experiment, zero, { engine: 'frequentist', scale, alpha: 0.05, metrics })[0];
      expect(verdict(r, ctx()).sentence).toBe('Not enough data yet: the control’s value is 0 so far, so a relative lift is undefined; keep running');
    }
  });

  it('does not blame a lack of data for an upstream fault', () => {
    const r: ResultRow = { ...row('checkout-conversion'), effect: null, error: { code: 'inconsistent_sums', message: 'sum_squares too small' } };
    const v = verdict(r, ctx());
    expect(v.tone).toBe('invalid');
    expect(v.sentence).toBe('Can’t compute this result: the data is inconsistent (an upstream bug); ask an engineer');
  });

  it('reads Bayesian results as chance to win and the risk of shipping', () => {
    const v = verdict(row('checkout-conversion', rows('bayesian')), ctx());
    expect(v.tone).toBe('better');
    expect(v.headline).toBe('on is likely better');
    expect(v.detail).toBe('+10.6% Checkout conversion, 99.4% chance to win, 95% credible interval +2.3% to +18.9%');
    expect(v.advice).toBe('shipping on risks −0.009% if it is actually worse (3 more days planned)');
  });

  it('is unsure in the Bayesian view when the chance to win is in between', () => {
    const v = verdict(row('revenue-per-user', rows('bayesian')), ctx());
    expect(v.headline).toBe('Not sure yet');
    expect(v.detail).toMatch(/^\+0\.80% Revenue per user, 59% chance to win/);
  });

  it('writes absolute lifts of proportions in percentage points', () => {
    const v = verdict(row('checkout-conversion', rows('frequentist', 'absolute')), ctx());
    expect(v.detail).toBe('+1.2 pp Checkout conversion, 95% CI +0.25 pp to +2.1 pp');
  });

  it('says a worse lower-is-better metric rises, in the Bayesian view', () => {
    const v = verdict(row('error-rate', rows('bayesian')), ctx());
    expect(v.tone).toBe('worse');
    expect(v.advice).toBe('keep the control: shipping on would likely move Error rate by +27.8%');
  });

  it('states the risk of shipping as a rise of a lower-is-better metric', () => {
    const better: ResultRow = { ...row('error-rate', rows('bayesian')), effect: -0.2, ci: [-0.4, -0.01], chanceToWin: 0.99, risk: { control: 0.2, treatment: 0.0005 } };
    const v = verdict(better, ctx());
    expect(v.tone).toBe('better');
    expect(v.advice).toBe('shipping on risks +0.050% if it is actually worse (3 more days planned)');
  });

  it('never rounds a chance to win onto the threshold it falls short of', () => {
    const r: ResultRow = { ...row('checkout-conversion', rows('bayesian')), chanceToWin: 0.9496 };
    const v = verdict(r, ctx());
    expect(v.headline).toBe('Not sure yet');
    expect(v.detail).toMatch(/, 94\.96% chance to win,/);
  });

  it('does not call a clear result final while it is below the minimum sample', () => {
    const few = structuredClone(snapshot);
    few.data_quality.too_few_units = [{ metric: 'checkout-conversion', variation: 'on', n: 150, minimum: 200 }];
    const r = buildRows(experiment, few, { engine: 'frequentist', scale: 'relative', alpha: 0.05 })[0];
    expect(r.underpowered).toBe(true);
    const v = verdict(r, ctx({ sequential: true }));
    expect(v.advice).toBe('keep running: fewer users than this metric’s minimum sample size, so the result can still change');
  });

  it('leads with the primary metric', () => {
    expect(leadRow(rows())?.metric).toBe('checkout-conversion');
  });

  it('never leads with a secondary or guardrail metric', () => {
    expect(leadRow(rows().filter((r) => r.role !== 'primary'))).toBeNull();
  });

  it('says why a metric the service could not compute has no result', () => {
    const failed = structuredClone(snapshot);
    failed.metrics[0] = { ...failed.metrics[0], variants: [], error: 'cannot load the metric’s definition (version 3)' };
    const lead = leadRow(buildRows(experiment, failed, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics }))!;
    expect(lead.metric).toBe('checkout-conversion');
    expect(verdict(lead, ctx()).sentence).toBe('Can’t compute this result: cannot load the metric’s definition (version 3)');
  });
});

describe('signedPct', () => {
  it.each([
    [0.041, '+4.1%'],
    [-0.0123, '−1.2%'],
    [0.00004, '+0.004%'],
    [0, '0.0%'],
    [null, '—'],
  ])('%s → %s', (x, want) => expect(signedPct(x as number | null)).toBe(want));
});

describe('signedPP', () => {
  it.each([
    [0.008, '+0.80 pp'],
    [0.0123, '+1.2 pp'],
    [0.00004, '+0.004 pp'],
    [-0.00004, '−0.004 pp'],
    [0, '0 pp'],
  ])('%s → %s', (x, want) => expect(signedPP(x)).toBe(want));
});

describe('pValue and chance never round across the significance level', () => {
  it.each([
    [0.0496, 0.05, '0.0496'],
    [0.0504, 0.05, '0.050'],
    [0.013, 0.05, '0.013'],
    [0.0996, 0.1, '0.0996'],
    [0.0496, undefined, '0.050'],
  ])('p %s at α %s → %s', (p, alpha, want) => expect(pValue(p, alpha)).toBe(want));
  it.each([
    [0.9496, 0.05, '94.96%'],
    [0.9504, 0.05, '95%'],
    [0.0504, 0.05, '5.04%'],
    [0.6, 0.05, '60%'],
  ])('chance %s at α %s → %s', (c, alpha, want) => expect(chance(c, alpha)).toBe(want));
});

describe('humanDuration', () => {
  it.each([
    ['168h0m0s', '7 days'],
    ['24h', '1 day'],
    ['36h', '36 h'],
    ['30m', '30 min'],
    ['0s', '0'],
    ['soon', 'soon'],
  ])('%s → %s', (s, want) => expect(humanDuration(s)).toBe(want));
});
