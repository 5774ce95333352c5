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
