import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import { validateConfig, type TargetingContext } from '../lib/targeting';
import type { FlagConfig } from '../lib/types';
import { TargetingEditor } from './TargetingEditor';

const ctx: TargetingContext = { flagKey: 'new-checkout', variations: ['on', 'off'], flags: { 'new-checkout': ['on', 'off'] }, segments: ['beta-testers'] };

// The editor as the flag page uses it: state here, errors from validateConfig.
function Harness({ initial, onConfig, context = ctx, serverErrors = {} }: {
  initial: FlagConfig; onConfig?: (c: FlagConfig) => void; context?: TargetingContext; serverErrors?: Record<string, string>;
}) {
  const [config, setConfig] = useState(initial);
  return (
    <TargetingEditor
      config={config}
      onChange={(c) => {
        setConfig(c);
        onConfig?.(c);
      }}
      ctx={context}
      errors={{ ...validateConfig(config, context), ...serverErrors }}
    />
  );
}

const initial: FlagConfig = { on: true, off_variation: 'off', prerequisites: [], targets: [], rules: [], fallthrough: { variation: 'off' } };

describe('TargetingEditor', () => {
  it('shows validation messages next to the field they concern', async () => {
    const user = userEvent.setup();
    render(<Harness initial={initial} />);
    await user.click(screen.getByRole('button', { name: 'Add rule' }));
    const rule = screen.getByRole('listitem', { name: 'Rule 1' });
    const attribute = within(rule).getByLabelText('Attribute');
    // A new rule's empty attribute is flagged right there, described by its message.
    expect(attribute).toHaveAccessibleDescription('name the attribute to compare (“key” is the context key)');
    await user.type(attribute, 'email');
    expect(attribute).not.toHaveAccessibleDescription();
    await user.selectOptions(within(rule).getByLabelText('Operator'), 'matches');
    const values = within(rule).getByLabelText('Values (comma-separated)');
    await user.type(values, '(beta');
    expect(values).toHaveAccessibleDescription('“(beta” is not a valid regular expression');
    expect(values).toHaveAttribute('aria-invalid', 'true');
    await user.clear(values);
    await user.type(values, '@example\\.com$');
    expect(values).not.toHaveAttribute('aria-invalid');
  });

  it('keeps a live sum of the rollout weights', async () => {
    const user = userEvent.setup();
    let last: FlagConfig = initial;
    render(<Harness initial={initial} onConfig={(c) => (last = c)} />);
    const defaultRule = screen.getByRole('group', { name: 'Everyone else gets' });
    await user.click(within(defaultRule).getByRole('radio', { name: 'A percentage rollout' }));
    expect(within(defaultRule).getByTestId('weight-sum')).toHaveTextContent('Total: 100%');
    const on = within(defaultRule).getByLabelText('on (%)');
    await user.clear(on);
    await user.type(on, '60');
    expect(within(defaultRule).getByTestId('weight-sum')).toHaveTextContent('Total: 110% (must be 100%)');
    const off = within(defaultRule).getByLabelText('off (%)');
    await user.clear(off);
    await user.type(off, '40');
    expect(within(defaultRule).getByTestId('weight-sum')).toHaveTextContent('Total: 100%');
    expect(last.fallthrough).toEqual({ rollout: { variations: [{ variation: 'on', weight: 60000 }, { variation: 'off', weight: 40000 }] } });
  });

  it('offers the environment’s segments for segment conditions', async () => {
    const user = userEvent.setup();
    let last: FlagConfig = initial;
    render(<Harness initial={initial} onConfig={(c) => (last = c)} />);
    await user.click(screen.getByRole('button', { name: 'Add rule' }));
    const rule = screen.getByRole('listitem', { name: 'Rule 1' });
    await user.selectOptions(within(rule).getByLabelText('Operator'), 'segment_match');
    expect(within(rule).getByLabelText('Attribute')).toBeDisabled();
    await user.selectOptions(within(rule).getByLabelText('Segments'), 'beta-testers');
    expect(last.rules[0].clauses[0]).toEqual({ op: 'segment_match', values: ['beta-testers'], attribute: undefined });
  });

  it('fixes the rollout of a running or stopped experiment, in a rule too, and frees it once concluded', async () => {
    const split = { salt: 'q4-8f3a', experiment_key: 'new-checkout-q4', variations: [{ variation: 'off', weight: 50000 }, { variation: 'on', weight: 50000 }] };
    const config: FlagConfig = {
      ...initial,
      rules: [{ id: 'r1', clauses: [{ attribute: 'plan', op: 'in', values: ['pro'] }], serve: { rollout: split } }],
    };
    const conflict = 'this rollout is running experiment "new-checkout-q4"\'s split and cannot be changed';
    const { unmount } = render(<Harness initial={config} context={{ ...ctx, liveExperiments: ['new-checkout-q4'] }} serverErrors={{ 'rules[0].serve.rollout': conflict }} />);
    let rule = screen.getByRole('listitem', { name: 'Rule 1' });
    expect(within(rule).getByLabelText('on (%)')).toBeDisabled();
    expect(within(rule).getByLabelText('off (%)')).toBeDisabled();
    expect(within(rule).getByRole('radio', { name: 'A variation' })).toBeDisabled();
    expect(within(rule).getByRole('button', { name: 'Delete rule' })).toBeDisabled();
    expect(within(rule).getByTestId('experiment-rollout')).toHaveTextContent('The split of experiment “new-checkout-q4”');
    expect(within(rule).getByText(conflict)).toBeInTheDocument();
    unmount();
    // Concluded (not among the live experiments): an ordinary rollout again.
    render(<Harness initial={config} context={{ ...ctx, liveExperiments: [] }} />);
    rule = screen.getByRole('listitem', { name: 'Rule 1' });
    expect(within(rule).getByLabelText('on (%)')).toBeEnabled();
    expect(within(rule).getByRole('button', { name: 'Delete rule' })).toBeEnabled();
    expect(within(rule).queryByTestId('experiment-rollout')).not.toBeInTheDocument();
  });

  it('shows each rule’s own weights after a rule above it is deleted', async () => {
    const user = userEvent.setup();
    const rollout = (on: number) => ({ rollout: { variations: [{ variation: 'on', weight: on }, { variation: 'off', weight: 100000 - on }] } });
    const config: FlagConfig = {
      ...initial,
      rules: [
        { id: 'a', clauses: [{ attribute: 'plan', op: 'in', values: ['free'] }], serve: rollout(10000) },
        { id: 'b', clauses: [{ attribute: 'plan', op: 'in', values: ['pro'] }], serve: rollout(70000) },
      ],
    };
    render(<Harness initial={config} />);
    await user.click(within(screen.getByRole('listitem', { name: 'Rule 1' })).getByRole('button', { name: 'Delete rule' }));
    expect(within(screen.getByRole('listitem', { name: 'Rule 1' })).getByLabelText('on (%)')).toHaveValue('70');
  });
});
