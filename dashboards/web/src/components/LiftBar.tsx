// The lift of one treatment drawn as its interval against zero (visx scales and shapes).
// Every row of a table shares one domain, so bars are comparable down the column.

import { scaleLinear } from '@visx/scale';
import { Bar, Line } from '@visx/shape';
import type { Tone } from '../lib/verdict';

const toneColor: Record<Tone, string> = {
  better: '#15803d',
  worse: '#b91c1c',
  unclear: '#475569',
  pending: '#94a3b8',
  invalid: '#94a3b8',
};

export function LiftBar({
  effect,
  ci,
  domain,
  tone,
  label,
  width = 180,
  height = 28,
}: {
  effect: number | null;
  ci: [number | null, number | null] | null;
  domain: [number, number];
  tone: Tone;
  label: string;
  width?: number;
  height?: number;
}) {
  const pad = 6;
  const x = scaleLinear<number>({ domain, range: [pad, width - pad], clamp: true });
  const mid = height / 2;
  const color = toneColor[tone];
  const lo = ci ? (ci[0] ?? domain[0]) : null;
  const hi = ci ? (ci[1] ?? domain[1]) : null;
  return (
    <svg width={width} height={height} role="img" aria-label={label} className="block">
      <title>{label}</title>
      <Line from={{ x: x(0), y: 2 }} to={{ x: x(0), y: height - 2 }} stroke="#0f172a" strokeWidth={1} strokeDasharray="2,2" />
      {lo !== null && hi !== null && (
        <Bar x={x(lo)} y={mid - 5} width={Math.max(2, x(hi) - x(lo))} height={10} rx={3} fill={color} fillOpacity={0.35} stroke={color} />
      )}
      {effect !== null && <Bar x={x(effect) - 1.5} y={mid - 8} width={3} height={16} fill={color} />}
    </svg>
  );
}

/** A symmetric domain around zero that holds every interval (ends capped at ±cap). */
export function sharedDomain(intervals: ([number | null, number | null] | null)[], effects: (number | null)[], cap = 1): [number, number] {
  let m = 0;
  for (const ci of intervals) {
    if (!ci) continue;
    for (const v of ci) if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  }
  for (const e of effects) if (e !== null && Number.isFinite(e)) m = Math.max(m, Math.abs(e));
  if (m === 0) m = 0.01;
  m = Math.min(m * 1.1, cap * 10);
  return [-m, m];
}
