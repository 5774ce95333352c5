import { render } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { LiftChart } from './LiftChart';

describe('LiftChart', () => {
  it('draws the interval of a one-sided test (unbounded above) up to the chart’s edge', () => {
    const { container } = render(
      <LiftChart
        title="Lift"
        format={(x) => String(x)}
        points={[
          { computed_at: '2026-11-10T00:00:00Z', variation: 'on', effect: 0.12, ci_lower: 0.02, ci_upper: null },
          { computed_at: '2026-11-11T00:00:00Z', variation: 'on', effect: 0.11, ci_lower: 0.03, ci_upper: null },
        ]}
      />,
    );
    const band = container.querySelector('path.visx-area');
    // Upper edge along the plot's top (y = 0 in the plot group), lower edge at the finite ends.
    expect(band?.getAttribute('d') ?? '').toMatch(/^M0,0L828,0L828,[\d.]+L0,[\d.]+Z$/);
  });
});

describe('LiftChart over a thinned history', () => {
  it('places snapshots by their computed_at time, not their index', () => {
    // Hourly snapshots, then one a week later (the history keeps hourly, then daily ones).
    const times = ['2026-11-01T00:00:00Z', '2026-11-01T01:00:00Z', '2026-11-01T02:00:00Z', '2026-11-08T02:00:00Z'];
    const { container } = render(
      <LiftChart title="Lift" format={(x) => String(x)}
        points={times.map((computed_at, i) => ({ computed_at, variation: 'on', effect: 0.01 * (i + 1), ci_lower: 0, ci_upper: 0.1 }))} />,
    );
    const d = container.querySelector('path.visx-linepath')?.getAttribute('d') ?? '';
    const xs = [...d.matchAll(/[ML]([\d.]+),/g)].map((m) => Number(m[1]));
    // The plot is 828 px wide for 7 days and 2 hours.
    const span = 7 * 24 + 2;
    expect(xs).toHaveLength(4);
    [0, 1, 2, span].forEach((h, i) => expect(xs[i]).toBeCloseTo((828 * h) / span, 1));
  });
});
