import { describe, expect, it } from 'vitest';
import { pctToWeight, validateConfig, weightPct, type TargetingContext } from './targeting';
import type { FlagConfig } from './types';

const ctx: TargetingContext = {
  flagKey: 'new-checkout',
  variations: ['on', 'off'],
  flags: { 'new-checkout': ['on', 'off'], 'payments-v2': ['enabled', 'disabled'] },
  segments: ['beta-testers'],
};

const base = (): FlagConfig => ({ on: true, off_variation: 'off', prerequisites: [], targets: [], rules: [], fallthrough: { variation: 'off' } });

describe('validateConfig', () => {
  const cases: { name: string; config: (c: FlagConfig) => FlagConfig; errors: Record<string, string> }[] = [
    { name: 'a valid configuration', config: (c) => c, errors: {} },
    {
      name: 'rollout weights that do not add up to 100%',
      config: (c) => ({ ...c, fallthrough: { rollout: { variations: [{ variation: 'on', weight: 60000 }, { variation: 'off', weight: 30000 }] } } }),
      errors: { 'fallthrough.rollout.variations': 'weights add up to 90%; they must add up to 100%' },
    },
    {
      name: 'an unknown variation in a rule',
      config: (c) => ({ ...c, rules: [{ clauses: [{ attribute: 'email', op: 'ends_with', values: ['@example.com'] }], serve: { variation: 'maybe' } }] }),
      errors: { 'rules[0].serve.variation': 'unknown variation “maybe”' },
    },
    {
      name: 'an invalid regular expression',
      config: (c) => ({ ...c, rules: [{ clauses: [{ attribute: 'email', op: 'matches', values: ['(['] }], serve: { variation: 'on' } }] }),
      errors: { 'rules[0].clauses[0].values': '“([” is not a valid regular expression' },
    },
    {
      name: 'a text value for a numeric operator',
      config: (c) => ({ ...c, rules: [{ clauses: [{ attribute: 'age', op: 'gt', values: ['eighteen'] }], serve: { variation: 'on' } }] }),
      errors: { 'rules[0].clauses[0].values': '“eighteen” is not a number' },
    },
    {
      name: 'a bad semantic version',
      config: (c) => ({ ...c, rules: [{ clauses: [{ attribute: 'app_version', op: 'semver_gt', values: ['2.1'] }], serve: { variation: 'on' } }] }),
      errors: { 'rules[0].clauses[0].values': '“2.1” is not a semantic version such as 2.1.0' },
    },
    {
      name: 'a missing attribute and a rule without conditions',
      config: (c) => ({ ...c, rules: [{ clauses: [{ attribute: ' ', op: 'in', values: ['x'] }], serve: { variation: 'on' } }, { clauses: [], serve: { variation: 'on' } }] }),
      errors: { 'rules[0].clauses[0].attribute': 'name the attribute to compare (“key” is the context key)', 'rules[1].clauses': 'a rule needs at least one condition' },
    },
    {
      name: 'an unknown segment',
      config: (c) => ({ ...c, rules: [{ clauses: [{ op: 'segment_match', values: ['vips'] }], serve: { variation: 'on' } }] }),
      errors: { 'rules[0].clauses[0].values': 'no segment “vips” in this environment' },
    },
    {
      name: 'a flag that is its own prerequisite, and a prerequisite variation that does not exist',
      config: (c) => ({ ...c, prerequisites: [{ flag: 'new-checkout', variation: 'on' }, { flag: 'payments-v2', variation: 'on' }] }),
      errors: { 'prerequisites[0].flag': 'a flag cannot be its own prerequisite', 'prerequisites[1].variation': '“payments-v2” has no variation “on”' },
    },
    {
      name: 'the same key in two target lists',
      config: (c) => ({ ...c, targets: [{ context_kind: 'user', variation: 'on', values: ['alice'] }, { context_kind: 'user', variation: 'off', values: ['bob', 'alice'] }] }),
      errors: { 'targets[1].values': '“alice” is already targeted by another list' },
    },
    {
      name: 'a negative weight',
      config: (c) => ({ ...c, fallthrough: { rollout: { variations: [{ variation: 'on', weight: 110000 }, { variation: 'off', weight: -10000 }] } } }),
      errors: { 'fallthrough.rollout.variations[0].weight': 'a weight is a percentage between 0 and 100 (at most 3 decimals)', 'fallthrough.rollout.variations[1].weight': 'a weight is a percentage between 0 and 100 (at most 3 decimals)' },
    },
  ];
  it.each(cases)('$name', ({ config, errors }) => {
    expect(validateConfig(config(base()), ctx)).toEqual(errors);
  });
});

describe('weights', () => {
  it('converts between percent text and weight units', () => {
    expect(pctToWeight('33.333')).toBe(33333);
    expect(pctToWeight('50%')).toBe(50000);
    expect(Number.isNaN(pctToWeight('half'))).toBe(true);
    expect(weightPct(33333)).toBe('33.333%');
  });
});
