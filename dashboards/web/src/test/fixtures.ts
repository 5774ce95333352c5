// Fixtures shaped like docs/experiments-api.md. The numbers are the real stats engine's
// output (stats serve, POST /v1/analyze) for the sums in the comments, so the tests check the
// page against what the service actually computes.

import type { Experiment, Metric, Snapshot } from '../lib/types';

export const experiment: Experiment = {
  key: 'new-checkout-q4', name: 'One-page checkout', hypothesis: 'A shorter checkout converts better.', owner_id: 'u1',
  environment: 'production', flag: 'new-checkout', status: 'running', control: 'off',
  variations: [{ variation: 'off', weight: 50000 }, { variation: 'on', weight: 50000 }], salt: 'new-checkout-q4-8f3a',
  metrics: {
    primary: ['checkout-conversion'], secondary: ['revenue-per-user'],
    guardrails: [{ metric: 'error-rate', tolerance: 0.02, action: 'rollback' }],
  },
  analysis: { engine: 'frequentist', alpha: 0.05, sided: 'two_sided', sequential: false, cuped: false, correction: 'none' },
  planned_duration: '336h', started_at: '2026-11-01T00:00:00Z', stopped_at: null, concluded_at: null, decision: null, version: 4,
};

export const metrics: Metric[] = [
  { key: 'checkout-conversion', name: 'Checkout conversion', description: '', kind: 'proportion', event_key: 'order-placed', window: { start: '0s', end: '168h' }, filters: [], winsorize: { type: 'none' }, direction: 'increase', min_sample_size: 200, cuped_preperiod: '0s', version: 3 },
  { key: 'revenue-per-user', name: 'Revenue per user', description: '', kind: 'mean', event_key: 'order-placed', window: { start: '0s', end: '168h' }, filters: [], winsorize: { type: 'none' }, direction: 'increase', min_sample_size: 200, cuped_preperiod: '0s', version: 1 },
  { key: 'error-rate', name: 'Error rate', description: '', kind: 'proportion', event_key: 'error', window: { start: '0s', end: '168h' }, filters: [], winsorize: { type: 'none' }, direction: 'decrease', min_sample_size: 200, cuped_preperiod: '0s', version: 1 },
];

// checkout-conversion: off 1144/10212, on 1262/10187 (proportion).
// revenue-per-user: off n 10212 sum 41870 ss 1250000; on n 10187 sum 42100 ss 1262000 (mean).
// error-rate: off 204/10212, on 260/10187 (proportion, lower is better).
// The shape the stats service writes (stats/internal/results.Snapshot): the engine's rows,
// control first, directly in each metric's variants.
export const snapshot: Snapshot = {
  project: 'demo', experiment: 'new-checkout-q4', status: 'running', computed_at: '2026-11-12T10:00:00Z',
  data_from: '2026-11-01T00:00:00Z', data_to: '2026-11-12T10:00:00Z', control: 'off',
  analysis: { engine: 'frequentist', alpha: 0.05, sided: 'two_sided', sequential: false, cuped: false, correction: 'none', difference: 'relative' },
  exposures: { off: 10212, on: 10187 },
  progress: { elapsed_days: 11.42, planned_days: 14, units_per_day: 1786, remaining_days: 2.58 },
  data_quality: {
    srm: { p_value: 0.861048752744564, flagged: false, expected: { off: 0.5, on: 0.5 } },
    multiple_exposures: { contexts: 12, fraction: 0.0006, flagged: false },
    too_few_units: [],
  },
  metrics: [
    {
      metric: 'checkout-conversion', name: 'Checkout conversion', role: 'primary', kind: 'proportion', direction: 'increase', metric_version: 3, mde_at_planned_size: 0.0817,
      variants: [
        { key: 'off', n: 10212, mean: 0.11202506854680767 },
        { key: 'on', n: 10187, mean: 0.12388338077942476, effect: 0.1058540948596903, ci: [0.022736300828954337, 0.18897188889042627], se: 0.042405295206299404, p_value: 0.012559360326765514, p_value_adjusted: null, ci_adjusted: null, chance_to_win: null, risk: null, error: null },
      ],
    },
    {
      metric: 'revenue-per-user', name: 'Revenue per user', role: 'secondary', kind: 'mean', direction: 'increase', metric_version: 1,
      variants: [
        { key: 'off', n: 10212, mean: 4.100078339208774 },
        { key: 'on', n: 10187, mean: 4.132718170216943, effect: 0.007960782284581483, ci: [-0.06130324538521502, 0.07722480995437798], se: 0.03533734180691559, p_value: 0.8217640244313646, p_value_adjusted: null, ci_adjusted: null, chance_to_win: null, risk: null, error: null },
      ],
    },
    {
      metric: 'error-rate', name: 'Error rate', role: 'guardrail', kind: 'proportion', direction: 'decrease', metric_version: 1, tolerance: 0.02,
      variants: [
        { key: 'off', n: 10212, mean: 0.0199764982373678 },
        { key: 'on', n: 10187, mean: 0.02552272504171984, effect: 0.27763758885315204, ci: [0.04604938319594695, 0.5092257945103571], se: 0.11815230381376442, p_value: 0.018791707337554562, p_value_adjusted: null, ci_adjusted: null, chance_to_win: null, risk: null, error: null },
      ],
    },
  ],
};

// The stats engine's Bayesian answer (flat prior) for checkout-conversion, for checking the
// engine view derived in the browser.
export const bayesianCheckout = {
  chance_to_win: 0.9937242431769998,
  ci: [0.022741243501554473, 0.18896694621782612] as [number, number],
  risk: { control: 0.10594007436493051, treatment: 8.597950524021113e-05 },
};
