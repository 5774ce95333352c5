// Number formatting for people: one place so every page says "+4.1%" the same way.

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function count(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : nf0.format(n);
}

// Significant digits adapted to the size of the number, never "0.0%" for a real small effect.
function digitsFor(abs: number): number {
  if (abs === 0) return 1;
  if (abs >= 10) return 1;
  if (abs >= 1) return 1;
  if (abs >= 0.1) return 2;
  return 3;
}

/** A ratio as a signed percentage: 0.041 → "+4.1%". */
export function signedPct(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const v = x * 100;
  const d = digitsFor(Math.abs(v));
  const s = Math.abs(v).toFixed(d);
  if (Number(s) === 0) return `${(0).toFixed(d)}%`;
  return `${v > 0 ? '+' : '−'}${s}%`;
}

/**
 * A guardrail breach's effect: relative ("+5.1%"), or, when the control's mean was 0 and the
 * monitor tested the difference of means (absolute), in the metric's units per user.
 */
export function breachChange(x: number | null | undefined, absolute?: boolean): string {
  return absolute ? `${signedNum(x)} per user` : signedPct(x);
}

/** A ratio as an unsigned percentage: 0.112 → "11.2%". */
export function pct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return `${(x * 100).toFixed(digits)}%`;
}

/** A signed number in the metric's own units (absolute differences). */
export function signedNum(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const s = num(Math.abs(x));
  if (Number(Math.abs(x).toPrecision(3)) === 0) return s;
  return `${x > 0 ? '+' : '−'}${s}`;
}

export function num(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const abs = Math.abs(x);
  if (abs >= 1000) return nf0.format(x);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  if (abs === 0) return '0';
  return x.toPrecision(3);
}

/** Percentage points for absolute differences of proportions: 0.008 → "+0.8 pp". */
export function signedPP(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const v = x * 100;
  // Like signedPct: a real difference of 0.004 pp (a small lift on a rare conversion) must not
  // read as "0 pp".
  const d = Math.abs(v) >= 1 ? 1 : digitsFor(Math.abs(v));
  const s = Math.abs(v).toFixed(d);
  if (Number(s) === 0) return `0 pp`;
  return `${v > 0 ? '+' : '−'}${s} pp`;
}

/**
 * A p-value with two significant digits (0.013, 0.075, 0.82). Given the significance level, it
 * never rounds across it: 0.0496 against α = 0.05 is "0.0496", not "0.050" next to a verdict that
 * calls it significant.
 */
export function pValue(p: number | null | undefined, alpha?: number): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  if (p < 0.001) return '< 0.001';
  if (p >= 0.995) return '1';
  let digits = 2;
  let s = p.toPrecision(digits);
  while (alpha !== undefined && digits < 6 && Number(s) < alpha !== p < alpha) s = p.toPrecision(++digits);
  return s;
}

/**
 * A chance to win as a percentage. Given the significance level, it never rounds across the
 * thresholds a verdict uses (≥ 1−α likely better, ≤ α likely worse): 94.96% is "94.96%", not
 * "95%" next to "Not sure yet".
 */
export function chance(c: number | null | undefined, alpha?: number): string {
  if (c === null || c === undefined || !Number.isFinite(c)) return '—';
  const v = c * 100;
  if (v > 99.9) return '> 99.9%';
  if (v < 0.1) return '< 0.1%';
  let digits = v >= 99 || v <= 1 ? 1 : 0;
  let s = v.toFixed(digits);
  const same = (r: number) => alpha === undefined || (r >= 1 - alpha === c >= 1 - alpha && r <= alpha === c <= alpha);
  while (digits < 4 && !same(Number(s) / 100)) s = v.toFixed(++digits);
  return `${s}%`;
}

export function date(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric' });
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString('en-US', { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '—';
  const s = Math.round((now - t) / 1000);
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

/** Parses a Go duration ("336h", "90m", "1h30m", "0s") into milliseconds. */
export function parseDuration(s: string | null | undefined): number | null {
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s)/g;
  let total = 0;
  let matched = '';
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    matched += m[0];
    const v = Number(m[1]);
    total += m[2] === 'h' ? v * 3_600_000 : m[2] === 'm' ? v * 60_000 : m[2] === 's' ? v * 1000 : v;
  }
  return matched === s ? total : null;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** A Go duration for people: "168h0m0s" → "7 days", "36h" → "36 h", "0s" → "0". */
export function humanDuration(s: string | null | undefined): string {
  const ms = parseDuration(s);
  if (ms === null) return s ?? '—';
  if (ms === 0) return '0';
  const h = ms / 3_600_000;
  if (h >= 24 && Number.isInteger(h / 24)) return h === 24 ? '1 day' : `${h / 24} days`;
  if (h >= 1) return `${Number(h.toFixed(1))} h`;
  return `${Math.round(ms / 60_000)} min`;
}
