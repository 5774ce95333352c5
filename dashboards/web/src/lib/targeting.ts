// Client-side validation of a flag's targeting in one environment, with the field paths the
// flag service uses in its errors ("rules[2].clauses[0].values"), so a message from either
// lands next to the same input. The service stays the authority; this catches mistakes
// before a round trip and keeps the Save button honest.

import type { Clause, ClauseOp, FlagConfig, Serve } from './types';

export const TOTAL_WEIGHT = 100_000;

export type FieldErrors = Record<string, string>;

export interface TargetingContext {
  flagKey: string;
  variations: string[];
  /** Other flags of the project and their variations (prerequisites). */
  flags: Record<string, string[]>;
  /** Segment keys in this environment. */
  segments: string[];
  /**
   * Keys of the experiments running or stopped on this flag in this environment: the flag
   * service refuses (409) any change to, or removal of, their rollouts. Unset while unknown,
   * when every rollout that carries an experiment_key is treated as fixed.
   */
  liveExperiments?: string[];
}

/**
 * The experiment whose split a serve's rollout is, while that split is fixed (the experiment
 * is running or stopped); undefined for any other serve, whose rollout is editable.
 */
export function fixedExperiment(serve: Serve, ctx: TargetingContext): string | undefined {
  const key = serve.rollout?.experiment_key;
  if (!key) return undefined;
  return !ctx.liveExperiments || ctx.liveExperiments.includes(key) ? key : undefined;
}

const keyPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const semverPattern = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export const clauseOps: { op: ClauseOp; label: string }[] = [
  { op: 'in', label: 'is one of' },
  { op: 'contains', label: 'contains' },
  { op: 'starts_with', label: 'starts with' },
  { op: 'ends_with', label: 'ends with' },
  { op: 'matches', label: 'matches regex' },
  { op: 'lt', label: '<' },
  { op: 'lte', label: '≤' },
  { op: 'gt', label: '>' },
  { op: 'gte', label: '≥' },
  { op: 'semver_eq', label: 'semver =' },
  { op: 'semver_lt', label: 'semver <' },
  { op: 'semver_gt', label: 'semver >' },
  { op: 'before', label: 'before (date)' },
  { op: 'after', label: 'after (date)' },
  { op: 'segment_match', label: 'is in segment' },
];

const numericOps = new Set<ClauseOp>(['lt', 'lte', 'gt', 'gte']);
const semverOps = new Set<ClauseOp>(['semver_eq', 'semver_lt', 'semver_gt']);
const dateOps = new Set<ClauseOp>(['before', 'after']);

/** Sum of a rollout's weights (units of 1/100000). */
export function weightSum(serve: Serve): number {
  return (serve.rollout?.variations ?? []).reduce((s, v) => s + (Number.isFinite(v.weight) ? v.weight : 0), 0);
}

/** Weight units → percent with up to three decimals: 33333 → "33.333%". */
export function weightPct(weight: number): string {
  return `${Number((weight / 1000).toFixed(3))}%`;
}

/** Percent text → weight units; NaN when not a number. */
export function pctToWeight(text: string): number {
  const v = Number(text.replace('%', '').trim());
  return Number.isFinite(v) ? Math.round(v * 1000) : Number.NaN;
}

function validateServe(serve: Serve | undefined, path: string, ctx: TargetingContext, errors: FieldErrors) {
  if (!serve || (serve.variation === undefined && serve.rollout === undefined)) {
    errors[path] = 'choose a variation or a percentage rollout';
    return;
  }
  if (serve.variation !== undefined && serve.rollout !== undefined) {
    errors[path] = 'serve either a variation or a rollout, not both';
    return;
  }
  if (serve.variation !== undefined) {
    if (!ctx.variations.includes(serve.variation)) errors[`${path}.variation`] = `unknown variation “${serve.variation}”`;
    return;
  }
  const vs = serve.rollout!.variations;
  if (!vs.length) {
    errors[`${path}.rollout.variations`] = 'a rollout needs at least one variation';
    return;
  }
  const seen = new Set<string>();
  vs.forEach((v, i) => {
    const p = `${path}.rollout.variations[${i}]`;
    if (!ctx.variations.includes(v.variation)) errors[`${p}.variation`] = `unknown variation “${v.variation}”`;
    else if (seen.has(v.variation)) errors[`${p}.variation`] = `“${v.variation}” appears twice`;
    seen.add(v.variation);
    if (!Number.isInteger(v.weight) || v.weight < 0 || v.weight > TOTAL_WEIGHT) {
      errors[`${p}.weight`] = 'a weight is a percentage between 0 and 100 (at most 3 decimals)';
    }
  });
  const sum = weightSum(serve);
  if (sum !== TOTAL_WEIGHT) {
    errors[`${path}.rollout.variations`] = `weights add up to ${weightPct(sum)}; they must add up to 100%`;
  }
}

function validateClause(c: Clause, path: string, ctx: TargetingContext, errors: FieldErrors) {
  if (c.context_kind !== undefined && c.context_kind !== '' && !keyPattern.test(c.context_kind)) {
    errors[`${path}.context_kind`] = 'letters, digits, “.”, “_” and “-” only';
  }
  if (c.op !== 'segment_match' && !(c.attribute ?? '').trim()) {
    errors[`${path}.attribute`] = 'name the attribute to compare (“key” is the context key)';
  }
  if (!c.values.length) {
    errors[`${path}.values`] = c.op === 'segment_match' ? 'choose at least one segment' : 'give at least one value';
    return;
  }
  for (let i = 0; i < c.values.length; i++) {
    const v = c.values[i];
    if (v === '' || v === null || v === undefined) {
      errors[`${path}.values`] = 'values must not be empty';
      return;
    }
    if (numericOps.has(c.op) && (typeof v !== 'number' || !Number.isFinite(v))) {
      errors[`${path}.values`] = `“${String(v)}” is not a number`;
      return;
    }
    if (semverOps.has(c.op) && !semverPattern.test(String(v))) {
      errors[`${path}.values`] = `“${String(v)}” is not a semantic version such as 2.1.0`;
      return;
    }
    if (dateOps.has(c.op) && typeof v === 'string' && Number.isNaN(Date.parse(v))) {
      errors[`${path}.values`] = `“${v}” is not a date (RFC 3339, e.g. 2026-01-31T00:00:00Z)`;
      return;
    }
    if (c.op === 'matches') {
      try {
        new RegExp(String(v));
      } catch {
        errors[`${path}.values`] = `“${String(v)}” is not a valid regular expression`;
        return;
      }
    }
    if (c.op === 'segment_match' && !ctx.segments.includes(String(v))) {
      errors[`${path}.values`] = `no segment “${String(v)}” in this environment`;
      return;
    }
  }
}

export function validateConfig(config: FlagConfig, ctx: TargetingContext): FieldErrors {
  const errors: FieldErrors = {};
  if (config.off_variation && !ctx.variations.includes(config.off_variation)) {
    errors.off_variation = `unknown variation “${config.off_variation}”`;
  }
  (config.prerequisites ?? []).forEach((p, i) => {
    const path = `prerequisites[${i}]`;
    if (!p.flag) errors[`${path}.flag`] = 'choose a flag';
    else if (p.flag === ctx.flagKey) errors[`${path}.flag`] = 'a flag cannot be its own prerequisite';
    else if (!ctx.flags[p.flag]) errors[`${path}.flag`] = `no flag “${p.flag}” in this project`;
    else if (!ctx.flags[p.flag].includes(p.variation)) errors[`${path}.variation`] = `“${p.flag}” has no variation “${p.variation}”`;
  });
  const targeted = new Map<string, number>();
  (config.targets ?? []).forEach((t, i) => {
    const path = `targets[${i}]`;
    if (!t.context_kind || !keyPattern.test(t.context_kind)) errors[`${path}.context_kind`] = 'a context kind such as “user”';
    if (!ctx.variations.includes(t.variation)) errors[`${path}.variation`] = `unknown variation “${t.variation}”`;
    if (!t.values.length) errors[`${path}.values`] = 'add at least one key';
    for (const v of t.values) {
      if (!v.trim()) {
        errors[`${path}.values`] = 'keys must not be empty';
        break;
      }
      const id = `${t.context_kind}\u0000${v}`;
      if (targeted.has(id) && targeted.get(id) !== i) {
        errors[`${path}.values`] = `“${v}” is already targeted by another list`;
        break;
      }
      targeted.set(id, i);
    }
  });
  (config.rules ?? []).forEach((r, i) => {
    const path = `rules[${i}]`;
    if (!r.clauses.length) errors[`${path}.clauses`] = 'a rule needs at least one condition';
    r.clauses.forEach((c, j) => validateClause(c, `${path}.clauses[${j}]`, ctx, errors));
    validateServe(r.serve, `${path}.serve`, ctx, errors);
  });
  validateServe(config.fallthrough, 'fallthrough', ctx, errors);
  return errors;
}

/** Parses the text of a clause's values input for its operator (numbers for numeric ops). */
export function parseValues(op: ClauseOp, text: string): (string | number)[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (numericOps.has(op)) return parts.map((p) => (Number.isFinite(Number(p)) ? Number(p) : p));
  return parts;
}
