// The plain-language verdict of one metric × treatment: what a product manager reads instead
// of a p-value. Wording follows stats/README.md ("Reading the results", "When to stop").

import { chance, signedNum, signedPct, signedPP } from './format';
import { isImprovement, isSignificant, type ResultRow } from './results';

export type Tone = 'better' | 'worse' | 'unclear' | 'pending' | 'invalid';

export interface Verdict {
  tone: Tone;
  /** "On is better", "No clear difference yet", … */
  headline: string;
  /** "+4.1% Checkout conversion, 95% CI +1.2% to +7.0%" */
  detail: string;
  /** "keep running 3 more days for the planned power" (may be empty) */
  advice: string;
  /** The whole sentence: headline: detail; advice. */
  sentence: string;
}

export interface VerdictContext {
  alpha: number;
  sequential: boolean;
  status: 'draft' | 'running' | 'stopped' | 'concluded';
  /** Start plus planned duration, when both are known. */
  plannedEnd: Date | null;
  now: Date;
  srmFlagged: boolean;
  /** Display name of a variation (e.g. the flag's variation name). */
  label?: (variation: string) => string;
}

const DAY = 86_400_000;

// A clear-looking result below the metric's minimum sample size (data_quality.too_few_units).
const underpoweredAdvice = 'keep running: fewer users than this metric’s minimum sample size, so the result can still change';

/** Formats an effect in the row's scale: "+4.1%", "+0.8 pp", "+1.20". */
export function formatEffect(row: Pick<ResultRow, 'scale' | 'kind'>, x: number | null | undefined): string {
  if (row.scale === 'relative') return signedPct(x);
  return row.kind === 'proportion' ? signedPP(x) : signedNum(x);
}

export function formatInterval(row: Pick<ResultRow, 'scale' | 'kind'>, ci: [number | null, number | null] | null): string {
  if (!ci) return '—';
  const lo = ci[0] === null ? '−∞' : formatEffect(row, ci[0]);
  const hi = ci[1] === null ? '+∞' : formatEffect(row, ci[1]);
  return `${lo} to ${hi}`;
}

/**
 * A loss (a Bayesian risk, ≥ 0 in lift units) as a move of the metric in its bad direction:
 * "−0.05%" where higher is better, "+0.05%" where lower is better (a latency that rises).
 */
export function formatLoss(row: Pick<ResultRow, 'scale' | 'kind' | 'direction'>, loss: number): string {
  return formatEffect(row, row.direction === 'decrease' ? Math.abs(loss) : -Math.abs(loss));
}

const errorWords: Record<string, string> = {
  too_few_units: 'too few users in one of the groups to estimate anything yet',
  zero_variance: 'every user has the same value in both groups so far, so there is nothing to compare',
  // The results service computes relative lifts only, and the page's "Absolute" view is derived
  // from them: there is nothing to switch to.
  zero_baseline: 'the control’s value is 0 so far, so a relative lift is undefined',
  zero_denominator: 'a group has no denominator events yet (e.g. no sessions)',
  inconsistent_sums: 'the data is inconsistent (an upstream bug); ask an engineer',
  not_finite: 'the numbers are too large to compute',
  no_result: 'no result for this variation yet',
};

function daysLeft(ctx: VerdictContext): number | null {
  if (!ctx.plannedEnd) return null;
  return Math.ceil((ctx.plannedEnd.getTime() - ctx.now.getTime()) / DAY);
}

function days(n: number): string {
  return n === 1 ? '1 more day' : `${n} more days`;
}

export function verdict(row: ResultRow, ctx: VerdictContext): Verdict {
  const name = ctx.label ? ctx.label(row.treatment.variation) : row.treatment.variation;
  const level = Math.round((1 - ctx.alpha) * 100);
  const make = (tone: Tone, headline: string, detail: string, advice: string): Verdict => ({
    tone,
    headline,
    detail,
    advice,
    sentence: `${headline}: ${detail}${advice ? `; ${advice}` : ''}`,
  });
  const left = daysLeft(ctx);
  const running = ctx.status === 'running';
  const ended = ctx.status === 'stopped' || ctx.status === 'concluded' || (left !== null && left <= 0);

  if (ctx.srmFlagged) {
    return make(
      'invalid',
      'Results can’t be trusted',
      'the traffic split does not match the configured weights (sample ratio mismatch)',
      'find the cause (assignment bug, bots, redirects) and restart; don’t decide on these numbers',
    );
  }
  if (row.error || row.effect === null) {
    const why = row.error ? (errorWords[row.error.code] ?? row.error.message) : 'no result yet';
    // Impossible or overflowing sums are a fault upstream, not a lack of data: more users won't fix them.
    if (row.error && ['inconsistent_sums', 'not_finite', 'metric_error'].includes(row.error.code)) {
      return make('invalid', 'Can’t compute this result', why, '');
    }
    return make('pending', 'Not enough data yet', why, running ? 'keep running' : '');
  }

  const effect = formatEffect(row, row.effect);
  const interval = formatInterval(row, row.ci);
  const sig = isSignificant(row, ctx.alpha);

  if (row.engine === 'bayesian') {
    const ctw = row.chanceToWin ?? 0.5;
    const detail = `${effect} ${row.metricName}, ${chance(ctw, ctx.alpha)} chance to win, ${level}% credible interval ${interval}`;
    const better = ctw >= 1 - ctx.alpha;
    const worse = ctw <= ctx.alpha;
    const tone: Tone = better ? 'better' : worse ? 'worse' : 'unclear';
    const headline = better ? `${name} is likely better` : worse ? `${name} is likely worse` : 'Not sure yet';
    let advice = '';
    const riskShip = row.risk ? row.risk.treatment : null;
    const riskKeep = row.risk ? row.risk.control : null;
    if (better && riskShip !== null) {
      advice = `shipping ${name} risks ${formatLoss(row, riskShip)} if it is actually worse`;
      if (running && left !== null && left > 0) advice += ` (${days(left)} planned)`;
    } else if (worse && riskKeep !== null) {
      advice = `keep the control: shipping ${name} would likely move ${row.metricName} by ${formatEffect(row, row.effect)}`;
    } else if (running && left !== null && left > 0) {
      advice = `keep running ${days(left)} as planned`;
    } else if (running) {
      advice = 'keep running until the chance to win is clear or the expected loss is negligible';
    } else if (ended) {
      advice = 'no clear winner: the difference is probably smaller than this experiment can detect';
    }
    if ((better || worse) && running && row.underpowered) advice = underpoweredAdvice;
    return make(tone, headline, detail, advice);
  }

  const detail = `${effect} ${row.metricName}, ${level}% CI ${interval}`;
  if (sig) {
    const good = isImprovement(row);
    const tone: Tone = good ? 'better' : 'worse';
    const headline = good ? `${name} is better` : `${name} is worse`;
    let advice: string;
    if (ctx.sequential) {
      advice = running ? 'you can stop now: this result stays valid however often you look' : '';
    } else if (running && left !== null && left > 0) {
      advice = `keep running ${days(left)} for the planned power (don’t stop early on a significant result)`;
    } else {
      advice = running ? 'the planned duration is reached: ready to decide' : '';
    }
    if (running && row.underpowered) advice = underpoweredAdvice;
    return make(tone, headline, detail, advice);
  }
  let advice: string;
  if (running && left !== null && left > 0) {
    advice = `keep running ${days(left)} for the planned power`;
  } else if (ended || (running && left !== null)) {
    advice = 'the planned duration is over: the effect is probably smaller than this experiment could detect (that is a result too)';
  } else {
    advice = running ? 'keep running' : '';
  }
  return make('unclear', ended ? 'No clear difference' : 'No clear difference yet', detail, advice);
}

/** The row the page leads with: the first primary metric's best treatment (none without one). */
export function leadRow(rows: ResultRow[]): ResultRow | null {
  // Never a secondary or guardrail metric under the heading "Verdict on the primary metric".
  const pool = rows.filter((r) => r.role === 'primary');
  if (!pool.length) return null;
  const first = pool[0].metric;
  const candidates = pool.filter((r) => r.metric === first);
  const score = (r: ResultRow) =>
    r.effect === null ? -Infinity : r.engine === 'bayesian' ? (r.chanceToWin ?? 0) : (r.direction === 'decrease' ? -r.effect : r.effect);
  return candidates.reduce((best, r) => (score(r) > score(best) ? r : best), candidates[0]);
}
