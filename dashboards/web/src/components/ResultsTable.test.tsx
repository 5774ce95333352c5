import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { experiment, metrics, snapshot } from '../test/fixtures';
import { buildRows } from '../lib/results';
import type { VerdictContext } from '../lib/verdict';
import { ResultsTable } from './ResultsTable';

const ctx: VerdictContext = {
  alpha: 0.05, sequential: false, status: 'running', plannedEnd: new Date('2026-11-15T00:00:00Z'),
  now: new Date('2026-11-12T10:00:00Z'), srmFlagged: false,
};

function table(engine: 'frequentist' | 'bayesian', over: Partial<VerdictContext> = {}) {
  const rows = buildRows(experiment, snapshot, { engine, scale: 'relative', alpha: 0.05, metrics }).filter((r) => r.role !== 'guardrail');
  render(<ResultsTable rows={rows} ctx={{ ...ctx, ...over }} caption="Results" />);
  return screen.getByRole('table', { name: 'Results' });
}

describe('ResultsTable', () => {
  it('shows baseline, variation, lift with interval, p-value and verdict per metric', () => {
    const t = table('frequentist');
    const rows = within(t).getAllByTestId('result-row');
    expect(rows).toHaveLength(2);
    const checkout = within(rows[0]);
    expect(checkout.getByRole('rowheader')).toHaveTextContent('Checkout conversion');
    expect(checkout.getByRole('rowheader')).toHaveTextContent('on vs off');
    const cells = checkout.getAllByRole('cell');
    expect(cells[0]).toHaveTextContent('11.2%');
    expect(cells[0]).toHaveTextContent('10,212 users');
    expect(cells[1]).toHaveTextContent('12.4%');
    expect(cells[2]).toHaveTextContent('+10.6%');
    expect(cells[2]).toHaveTextContent('+2.3% to +18.9%');
    expect(checkout.getByRole('img', { name: 'Lift +10.6%, interval +2.3% to +18.9%' })).toBeInTheDocument();
    expect(cells[3]).toHaveTextContent('0.013');
    expect(cells[4]).toHaveTextContent('on is better');
    expect(rows[0]).toHaveAttribute('data-tone', 'better');
    expect(within(rows[1]).getAllByRole('cell')[4]).toHaveTextContent('No clear difference yet');
    expect(within(t).getByRole('columnheader', { name: 'p-value' })).toBeInTheDocument();
  });

  it('switches the certainty column to chance to win in the Bayesian view and marks derived numbers', () => {
    const t = table('bayesian');
    expect(within(t).getByRole('columnheader', { name: 'Chance to win' })).toBeInTheDocument();
    const first = within(t).getAllByTestId('result-row')[0];
    const certainty = within(first).getAllByRole('cell')[3];
    expect(certainty).toHaveTextContent('99.4%');
    expect(certainty).toHaveTextContent('derived');
    expect(within(first).getAllByRole('cell')[4]).toHaveTextContent('on is likely better');
  });

  it('does not round a p-value onto α next to a significant verdict', () => {
    const close = structuredClone(snapshot);
    close.metrics[0].variants[1] = { ...close.metrics[0].variants[1], p_value: 0.0496, ci: [0.0002, 0.21] };
    const rows = buildRows(experiment, close, { engine: 'frequentist', scale: 'relative', alpha: 0.05, metrics }).filter((r) => r.role === 'primary');
    render(<ResultsTable rows={rows} ctx={ctx} caption="Results" />);
    const cells = within(screen.getAllByTestId('result-row')[0]).getAllByRole('cell');
    expect(cells[4]).toHaveTextContent('on is better');
    expect(cells[3]).toHaveTextContent('0.0496');
  });

  it('withholds verdicts when the sample ratio is off', () => {
    const t = table('frequentist', { srmFlagged: true });
    for (const r of within(t).getAllByTestId('result-row')) {
      expect(r).toHaveAttribute('data-tone', 'invalid');
      expect(r).toHaveTextContent('Results can’t be trusted');
    }
  });
});
