import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { experiment } from '../test/fixtures';
import { Sparkline } from './ExperimentsList';

/** The x of each point of an SVG path's d ("M2,10L3.5,8…"). */
function pathXs(d: string): number[] {
  return [...d.matchAll(/[ML]([\d.]+),/g)].map((m) => Number(m[1]));
}

describe('Sparkline', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('places snapshots by their time: the history is thinned to hourly, then daily', async () => {
    // Three snapshots an hour apart, then one ten days later.
    const points = ['2026-11-01T00:00:00Z', '2026-11-01T01:00:00Z', '2026-11-01T02:00:00Z', '2026-11-11T02:00:00Z']
      .map((computed_at, i) => ({ computed_at, variation: 'on', effect: 0.01 * (i + 1), ci_lower: 0, ci_upper: 0.1 }));
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ points }), { status: 200 }));
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const { container } = render(
      <QueryClientProvider client={qc}>
        <Sparkline project="demo" e={experiment} metric="checkout-conversion" />
      </QueryClientProvider>,
    );
    await screen.findByRole('img', { name: 'checkout-conversion lift trend, latest +4.0%' });
    const xs = pathXs(container.querySelector('path.visx-linepath')?.getAttribute('d') ?? '');
    // 110 px wide, 2 px margins: 106 px for 10 days and 2 hours.
    const span = 10 * 24 + 2;
    expect(xs).toHaveLength(4);
    [0, 1, 2, span].forEach((h, i) => expect(xs[i]).toBeCloseTo(2 + (106 * h) / span, 1));
  });
});
