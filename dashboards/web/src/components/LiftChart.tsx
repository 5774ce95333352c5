// Cumulative lift of each treatment over time with its interval as a band (visx), from the
// results snapshots' history. A band that leaves zero is a difference the data can see.

import { AxisBottom, AxisLeft } from '@visx/axis';
import { Group } from '@visx/group';
import { scaleLinear, scaleTime } from '@visx/scale';
import { Area, Line, LinePath } from '@visx/shape';
import type { TimeseriesPoint } from '../lib/types';

const palette = ['#1d4ed8', '#b45309', '#7e22ce', '#0f766e'];

/** Dates for a history of days, times of day for one of hours. */
function formatTick(d: Date, spanMs: number): string {
  return spanMs < 2 * 86_400_000
    ? d.toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
}

export function LiftChart({
  points,
  format,
  title,
  width = 900,
  height = 240,
}: {
  points: TimeseriesPoint[];
  format: (x: number) => string;
  title: string;
  width?: number;
  height?: number;
}) {
  const margin = { top: 10, right: 16, bottom: 28, left: 56 };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const series = new Map<string, TimeseriesPoint[]>();
  for (const p of points) {
    if (p.effect === null) continue;
    if (!series.has(p.variation)) series.set(p.variation, []);
    series.get(p.variation)!.push(p);
  }
  for (const s of series.values()) s.sort((a, b) => Date.parse(a.computed_at) - Date.parse(b.computed_at));
  const all = [...series.values()].flat();
  if (all.length === 0) {
    return <p className="text-sm text-slate-600">No history yet: the chart appears after the second results snapshot.</p>;
  }
  const times = all.map((p) => Date.parse(p.computed_at));
  const values = all.flatMap((p) => [p.effect, p.ci_lower, p.ci_upper]).filter((v): v is number => v !== null && Number.isFinite(v));
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (lo === hi) {
    lo -= 0.01;
    hi += 0.01;
  }
  const padY = (hi - lo) * 0.08;
  const x = scaleTime<number>({ domain: [new Date(Math.min(...times)), new Date(Math.max(...times) + (times.length === 1 ? 3_600_000 : 0))], range: [0, innerW] });
  const y = scaleLinear<number>({ domain: [lo - padY, hi + padY], range: [innerH, 0], nice: true });
  // An unbounded end (null: a one-sided test) runs to the edge of the chart, as in LiftBar,
  // rather than dropping the band.
  const [yBottom, yTop] = y.domain();
  const last = [...series.entries()].map(([v, s]) => `${v}: ${format(s[s.length - 1].effect as number)}`).join(', ');
  return (
    <figure>
      <svg width="100%" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}. Latest lift ${last}.`}>
        <title>{title}</title>
        <Group left={margin.left} top={margin.top}>
          {[...series.entries()].map(([variation, s], i) => {
            const color = palette[i % palette.length];
            return (
              <g key={variation}>
                <Area
                  data={s}
                  x={(p) => x(new Date(p.computed_at))}
                  y0={(p) => y(p.ci_lower ?? yBottom)}
                  y1={(p) => y(p.ci_upper ?? yTop)}
                  fill={color}
                  fillOpacity={0.15}
                />
                <LinePath data={s} x={(p) => x(new Date(p.computed_at))} y={(p) => y(p.effect as number)} stroke={color} strokeWidth={2} />
              </g>
            );
          })}
          <Line from={{ x: 0, y: y(0) }} to={{ x: innerW, y: y(0) }} stroke="#0f172a" strokeDasharray="3,3" />
          <AxisLeft scale={y} numTicks={5} tickFormat={(v) => format(Number(v))} stroke="#64748b" tickStroke="#64748b"
            tickLabelProps={{ fill: '#334155', fontSize: 11, textAnchor: 'end', dx: -4, dy: 3 }} />
          <AxisBottom top={innerH} scale={x} numTicks={5} stroke="#64748b" tickStroke="#64748b"
            tickFormat={(v) => formatTick(v as Date, Math.max(...times) - Math.min(...times))}
            tickLabelProps={{ fill: '#334155', fontSize: 11, textAnchor: 'middle' }} />
        </Group>
      </svg>
      <figcaption className="mt-1 flex flex-wrap gap-3 text-xs text-slate-700">
        {[...series.keys()].map((v, i) => (
          <span key={v} className="inline-flex items-center gap-1">
            <span className="inline-block h-2 w-3 rounded" style={{ background: palette[i % palette.length] }} aria-hidden="true" />
            {v} (line: lift, band: interval)
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
