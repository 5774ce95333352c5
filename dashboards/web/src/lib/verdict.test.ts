import { describe, expect, it } from 'vitest';
import { experiment, metrics, snapshot } from '../test/fixtures';
import { humanDuration, signedPct } from './format';
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

  it('leads with the primary metric', () => {
    expect(leadRow(rows())?.metric).toBe('checkout-conversion');
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
