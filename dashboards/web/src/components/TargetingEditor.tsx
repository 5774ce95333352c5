// The targeting editor of one flag in one environment: off variation, prerequisites,
// individual targets, rules (clauses + what they serve) and the default rule. It edits a
// FlagConfig value; the page saves it. Errors come keyed by field path (ours and the flag
// service's share the same paths) and are shown next to their inputs.

import { useEffect, useId, useState } from 'react';
import {
  clauseOps, fixedExperiment, parseValues, pctToWeight, TOTAL_WEIGHT, weightPct, weightSum, type FieldErrors, type TargetingContext,
} from '../lib/targeting';
import type { Clause, ClauseOp, FlagConfig, Rule, Serve } from '../lib/types';
import { Button, FieldError, inputClass } from './ui';

interface Props {
  config: FlagConfig;
  onChange: (c: FlagConfig) => void;
  ctx: TargetingContext;
  errors: FieldErrors;
  disabled?: boolean;
}

/** Errors at this path or below it (for a section's summary). */
function errorsUnder(errors: FieldErrors, prefix: string): string[] {
  return Object.entries(errors).filter(([k]) => k === prefix || k.startsWith(`${prefix}.`) || k.startsWith(`${prefix}[`)).map(([, v]) => v);
}

function Labelled({ label, error, children, className = '' }: { label: string; error?: string; children: (id: string, describedBy?: string) => React.ReactNode; className?: string }) {
  const id = useId();
  return (
    <div className={className}>
      <label htmlFor={id} className="mb-0.5 block text-xs font-medium text-slate-700">{label}</label>
      {children(id, error ? `${id}-err` : undefined)}
      <FieldError id={`${id}-err`} error={error} />
    </div>
  );
}

/** A comma-separated list input that keeps the user's text while it is being typed. */
function ListInput({ id, values, onChange, op, invalid, describedBy, disabled, placeholder }: {
  id: string; values: (string | number | boolean)[]; onChange: (v: (string | number)[]) => void; op: ClauseOp | 'keys';
  invalid: boolean; describedBy?: string; disabled?: boolean; placeholder?: string;
}) {
  const joined = values.join(', ');
  const [text, setText] = useState(joined);
  useEffect(() => {
    // Follow outside changes (e.g. a reload) without fighting the user's own typing.
    const parsed = op === 'keys' ? text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean) : parseValues(op, text);
    if (parsed.join(', ') !== joined) setText(joined);
  }, [joined]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <input
      id={id}
      className={`${inputClass} ${invalid ? '!border-red-600' : ''}`}
      aria-invalid={invalid || undefined}
      aria-describedby={describedBy}
      value={text}
      disabled={disabled}
      placeholder={placeholder}
      onChange={(e) => {
        setText(e.target.value);
        onChange(op === 'keys' ? e.target.value.split(/[,\n]/).map((s) => s.trim()).filter(Boolean) : parseValues(op, e.target.value));
      }}
    />
  );
}

/**
 * What a rule or the default rule serves (`path`: `fallthrough` or `rules[2].serve`). The flag
 * service names an experiment's rollout in its 409 as `${path}.rollout`.
 */
export function ServeEditor({ serve, onChange, ctx, errors, path, disabled, label }: {
  serve: Serve; onChange: (s: Serve) => void; ctx: TargetingContext; errors: FieldErrors; path: string; disabled?: boolean; label: string;
}) {
  const name = useId();
  const isRollout = serve.rollout !== undefined;
  const sum = weightSum(serve);
  const sumError = errors[`${path}.rollout.variations`];
  // A running or stopped experiment's split: the service refuses any change to it (409), so
  // neither its weights nor what is served here can be edited.
  const experiment = fixedExperiment(serve, ctx);
  const rolloutError = errors[`${path}.rollout`] ?? errors[`${path}.rollout.experiment_key`];
  return (
    <fieldset className="space-y-2" disabled={disabled}>
      <legend className="text-xs font-medium text-slate-700">{label}</legend>
      <div className="flex flex-wrap gap-4 text-sm">
        <label className="inline-flex items-center gap-1.5">
          <input type="radio" name={name} checked={!isRollout} disabled={!!experiment} onChange={() => onChange({ variation: ctx.variations[0] })} />
          A variation
        </label>
        <label className="inline-flex items-center gap-1.5">
          <input
            type="radio"
            name={name}
            checked={isRollout}
            disabled={!!experiment}
            onChange={() => {
              const n = ctx.variations.length;
              const each = Math.floor(TOTAL_WEIGHT / n);
              onChange({ rollout: { variations: ctx.variations.map((v, i) => ({ variation: v, weight: i === 0 ? TOTAL_WEIGHT - each * (n - 1) : each })) } });
            }}
          />
          A percentage rollout
        </label>
      </div>
      {!isRollout ? (
        <Labelled label="Variation" error={errors[`${path}.variation`] ?? errors[path]}>
          {(id, d) => (
            <select id={id} aria-describedby={d} className={inputClass} value={serve.variation ?? ''} onChange={(e) => onChange({ variation: e.target.value })}>
              {ctx.variations.map((v) => <option key={v}>{v}</option>)}
            </select>
          )}
        </Labelled>
      ) : (
        <div>
          <div className="grid grid-cols-[repeat(auto-fill,minmax(9rem,1fr))] gap-2">
            {ctx.variations.map((v) => {
              const idx = serve.rollout!.variations.findIndex((w) => w.variation === v);
              const weight = idx >= 0 ? serve.rollout!.variations[idx].weight : 0;
              return (
                <Labelled key={v} label={`${v} (%)`} error={idx >= 0 ? errors[`${path}.rollout.variations[${idx}].weight`] : undefined}>
                  {(id, d) => (
                    <input
                      id={id}
                      aria-describedby={d}
                      className={inputClass}
                      inputMode="decimal"
                      disabled={!!experiment}
                      defaultValue={String(weight / 1000)}
                      onChange={(e) => {
                        const w = pctToWeight(e.target.value);
                        const others = serve.rollout!.variations.filter((x) => x.variation !== v);
                        const next = ctx.variations
                          .map((k) => (k === v ? { variation: v, weight: w } : others.find((o) => o.variation === k)))
                          .filter((x): x is { variation: string; weight: number } => !!x);
                        onChange({ rollout: { ...serve.rollout!, variations: next } });
                      }}
                    />
                  )}
                </Labelled>
              );
            })}
          </div>
          <p aria-live="polite" className={`mt-1 text-sm ${sum === TOTAL_WEIGHT ? 'text-slate-700' : 'font-semibold text-red-800'}`} data-testid="weight-sum">
            Total: {Number.isNaN(sum) ? '—' : weightPct(sum)}{sum === TOTAL_WEIGHT ? '' : ' (must be 100%)'}
          </p>
          {sumError && sum === TOTAL_WEIGHT && <FieldError error={sumError} />}
          {experiment && (
            <p className="text-xs text-slate-600" data-testid="experiment-rollout">
              The split of experiment “{experiment}”: fixed until the experiment is concluded, so that every unit is analysed
              under one split. To change it, stop and conclude the experiment, then start a new one.
            </p>
          )}
        </div>
      )}
      <FieldError error={rolloutError} />
    </fieldset>
  );
}

function ClauseEditor({ clause, onChange, onRemove, ctx, errors, path, disabled, index }: {
  clause: Clause; onChange: (c: Clause) => void; onRemove: () => void; ctx: TargetingContext; errors: FieldErrors; path: string; disabled?: boolean; index: number;
}) {
  const seg = clause.op === 'segment_match';
  return (
    <div className="grid grid-cols-1 items-start gap-2 rounded-md bg-slate-50 p-2 sm:grid-cols-[7rem_9rem_10rem_1fr_auto]" data-testid="clause">
      <Labelled label="Context kind" error={errors[`${path}.context_kind`]}>
        {(id, d) => (
          <input id={id} aria-describedby={d} className={inputClass} placeholder="user" disabled={disabled}
            value={clause.context_kind ?? ''} onChange={(e) => onChange({ ...clause, context_kind: e.target.value || undefined })} />
        )}
      </Labelled>
      <Labelled label="Attribute" error={errors[`${path}.attribute`]}>
        {(id, d) => (
          <input id={id} aria-describedby={d} aria-invalid={!!errors[`${path}.attribute`] || undefined}
            className={`${inputClass} ${errors[`${path}.attribute`] ? '!border-red-600' : ''}`} disabled={disabled || seg}
            placeholder={seg ? '—' : 'email'} value={seg ? '' : (clause.attribute ?? '')}
            onChange={(e) => onChange({ ...clause, attribute: e.target.value })} />
        )}
      </Labelled>
      <Labelled label="Operator" error={errors[`${path}.op`]}>
        {(id, d) => (
          <div className="flex items-center gap-1">
            <select id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={clause.op}
              onChange={(e) => {
                const op = e.target.value as ClauseOp;
                onChange({ ...clause, op, attribute: op === 'segment_match' ? undefined : clause.attribute, values: op === 'segment_match' ? [] : clause.values });
              }}>
              {clauseOps.map((o) => <option key={o.op} value={o.op}>{o.label}</option>)}
            </select>
          </div>
        )}
      </Labelled>
      <Labelled label={seg ? 'Segments' : 'Values (comma-separated)'} error={errors[`${path}.values`]}>
        {(id, d) =>
          seg ? (
            <select id={id} aria-describedby={d} multiple className={`${inputClass} h-20`} disabled={disabled}
              value={clause.values.map(String)}
              onChange={(e) => onChange({ ...clause, values: [...e.target.selectedOptions].map((o) => o.value) })}>
              {ctx.segments.map((s) => <option key={s}>{s}</option>)}
            </select>
          ) : (
            <ListInput id={id} describedBy={d} op={clause.op} values={clause.values} disabled={disabled}
              invalid={!!errors[`${path}.values`]} onChange={(values) => onChange({ ...clause, values })} placeholder="a@example.com, b@example.com" />
          )
        }
      </Labelled>
      <div className="flex flex-col items-start gap-1 pt-4">
        <label className="inline-flex items-center gap-1 text-xs">
          <input type="checkbox" disabled={disabled} checked={!!clause.negate} onChange={(e) => onChange({ ...clause, negate: e.target.checked || undefined })} />
          not
        </label>
        <Button size="sm" variant="ghost" onClick={onRemove} disabled={disabled} aria-label={`Remove condition ${index + 1}`}>Remove</Button>
      </div>
    </div>
  );
}

function RuleEditor({ rule, index, count, onChange, onRemove, onMove, ctx, errors, disabled }: {
  rule: Rule; index: number; count: number; onChange: (r: Rule) => void; onRemove: () => void; onMove: (d: -1 | 1) => void;
  ctx: TargetingContext; errors: FieldErrors; disabled?: boolean;
}) {
  const path = `rules[${index}]`;
  return (
    <li className="space-y-2 rounded-lg border border-slate-200 p-3" aria-label={`Rule ${index + 1}`} data-testid="rule">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h4 className="text-sm font-semibold text-slate-800">Rule {index + 1}</h4>
        <div className="flex gap-1">
          <Button size="sm" variant="ghost" disabled={disabled || index === 0} onClick={() => onMove(-1)} aria-label={`Move rule ${index + 1} up`}>↑</Button>
          <Button size="sm" variant="ghost" disabled={disabled || index === count - 1} onClick={() => onMove(1)} aria-label={`Move rule ${index + 1} down`}>↓</Button>
          <Button size="sm" variant="ghost" disabled={disabled || !!fixedExperiment(rule.serve, ctx)} onClick={onRemove}>Delete rule</Button>
        </div>
      </div>
      <Labelled label="Description">
        {(id) => <input id={id} className={inputClass} disabled={disabled} value={rule.description ?? ''} onChange={(e) => onChange({ ...rule, description: e.target.value || undefined })} />}
      </Labelled>
      <p className="text-xs font-medium text-slate-700">If all of these match</p>
      <FieldError error={errors[`${path}.clauses`]} />
      <div className="space-y-2">
        {rule.clauses.map((c, j) => (
          <ClauseEditor key={j} index={j} clause={c} ctx={ctx} errors={errors} path={`${path}.clauses[${j}]`} disabled={disabled}
            onChange={(nc) => onChange({ ...rule, clauses: rule.clauses.map((x, k) => (k === j ? nc : x)) })}
            onRemove={() => onChange({ ...rule, clauses: rule.clauses.filter((_, k) => k !== j) })} />
        ))}
      </div>
      <Button size="sm" disabled={disabled} onClick={() => onChange({ ...rule, clauses: [...rule.clauses, { attribute: '', op: 'in', values: [] }] })}>
        Add condition
      </Button>
      <ServeEditor label="Then serve" serve={rule.serve} ctx={ctx} errors={errors} path={`${path}.serve`} disabled={disabled}
        onChange={(serve) => onChange({ ...rule, serve })} />
    </li>
  );
}

export function TargetingEditor({ config, onChange, ctx, errors, disabled }: Props) {
  const set = (patch: Partial<FlagConfig>) => onChange({ ...config, ...patch });
  const otherFlags = Object.keys(ctx.flags).filter((k) => k !== ctx.flagKey).sort();
  return (
    <div className="space-y-5">
      <section aria-labelledby="tg-off" className="space-y-2">
        <h3 id="tg-off" className="text-sm font-semibold text-slate-900">When the flag is off</h3>
        <Labelled label="Serve" error={errors.off_variation} className="max-w-xs">
          {(id, d) => (
            <select id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={config.off_variation ?? ''}
              onChange={(e) => set({ off_variation: e.target.value || undefined })}>
              <option value="">the caller’s fallback value</option>
              {ctx.variations.map((v) => <option key={v}>{v}</option>)}
            </select>
          )}
        </Labelled>
      </section>

      <section aria-labelledby="tg-prereq" className="space-y-2">
        <h3 id="tg-prereq" className="text-sm font-semibold text-slate-900">Prerequisites</h3>
        <p className="text-xs text-slate-600">Other flags that must serve a given variation first; otherwise this flag serves its off variation.</p>
        {config.prerequisites.map((p, i) => (
          <div key={i} className="flex flex-wrap items-start gap-2">
            <Labelled label="Flag" error={errors[`prerequisites[${i}].flag`]} className="w-56">
              {(id, d) => (
                <select id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={p.flag}
                  onChange={(e) => set({ prerequisites: config.prerequisites.map((x, k) => (k === i ? { flag: e.target.value, variation: ctx.flags[e.target.value]?.[0] ?? '' } : x)) })}>
                  <option value="">Choose…</option>
                  {otherFlags.map((f) => <option key={f}>{f}</option>)}
                </select>
              )}
            </Labelled>
            <Labelled label="must serve" error={errors[`prerequisites[${i}].variation`]} className="w-44">
              {(id, d) => (
                <select id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={p.variation}
                  onChange={(e) => set({ prerequisites: config.prerequisites.map((x, k) => (k === i ? { ...x, variation: e.target.value } : x)) })}>
                  {(ctx.flags[p.flag] ?? []).map((v) => <option key={v}>{v}</option>)}
                </select>
              )}
            </Labelled>
            <Button size="sm" variant="ghost" className="mt-5" disabled={disabled} onClick={() => set({ prerequisites: config.prerequisites.filter((_, k) => k !== i) })}>Remove</Button>
          </div>
        ))}
        <Button size="sm" disabled={disabled || otherFlags.length === 0} onClick={() => set({ prerequisites: [...config.prerequisites, { flag: '', variation: '' }] })}>
          Add prerequisite
        </Button>
      </section>

      <section aria-labelledby="tg-targets" className="space-y-2">
        <h3 id="tg-targets" className="text-sm font-semibold text-slate-900">Individual targets</h3>
        {config.targets.map((t, i) => (
          <div key={i} className="grid grid-cols-1 items-start gap-2 sm:grid-cols-[8rem_10rem_1fr_auto]" data-testid="target">
            <Labelled label="Context kind" error={errors[`targets[${i}].context_kind`]}>
              {(id, d) => <input id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={t.context_kind}
                onChange={(e) => set({ targets: config.targets.map((x, k) => (k === i ? { ...x, context_kind: e.target.value } : x)) })} />}
            </Labelled>
            <Labelled label="Serve" error={errors[`targets[${i}].variation`]}>
              {(id, d) => (
                <select id={id} aria-describedby={d} className={inputClass} disabled={disabled} value={t.variation}
                  onChange={(e) => set({ targets: config.targets.map((x, k) => (k === i ? { ...x, variation: e.target.value } : x)) })}>
                  {ctx.variations.map((v) => <option key={v}>{v}</option>)}
                </select>
              )}
            </Labelled>
            <Labelled label="Keys (comma-separated)" error={errors[`targets[${i}].values`]}>
              {(id, d) => <ListInput id={id} describedBy={d} op="keys" values={t.values} disabled={disabled} invalid={!!errors[`targets[${i}].values`]}
                onChange={(values) => set({ targets: config.targets.map((x, k) => (k === i ? { ...x, values: values.map(String) } : x)) })} />}
            </Labelled>
            <Button size="sm" variant="ghost" className="mt-5" disabled={disabled} onClick={() => set({ targets: config.targets.filter((_, k) => k !== i) })}>Remove</Button>
          </div>
        ))}
        <Button size="sm" disabled={disabled} onClick={() => set({ targets: [...config.targets, { context_kind: 'user', variation: ctx.variations[0], values: [] }] })}>
          Add target list
        </Button>
      </section>

      <section aria-labelledby="tg-rules" className="space-y-2">
        <h3 id="tg-rules" className="text-sm font-semibold text-slate-900">Rules</h3>
        <p className="text-xs text-slate-600">Evaluated top to bottom; the first rule that matches decides.</p>
        <ol className="space-y-3">
          {config.rules.map((r, i) => (
            <RuleEditor key={r.id ?? `new-${i}`} rule={r} index={i} count={config.rules.length} ctx={ctx} errors={errors} disabled={disabled}
              onChange={(nr) => set({ rules: config.rules.map((x, k) => (k === i ? nr : x)) })}
              onRemove={() => set({ rules: config.rules.filter((_, k) => k !== i) })}
              onMove={(d) => {
                const next = [...config.rules];
                const [moved] = next.splice(i, 1);
                next.splice(i + d, 0, moved);
                set({ rules: next });
              }} />
          ))}
        </ol>
        <Button size="sm" disabled={disabled}
          onClick={() => set({ rules: [...config.rules, { clauses: [{ attribute: '', op: 'in', values: [] }], serve: { variation: ctx.variations[0] } }] })}>
          Add rule
        </Button>
      </section>

      <section aria-labelledby="tg-default" className="space-y-2">
        <h3 id="tg-default" className="text-sm font-semibold text-slate-900">Default rule</h3>
        <ServeEditor label="Everyone else gets" serve={config.fallthrough} ctx={ctx} errors={errors} path="fallthrough" disabled={disabled}
          onChange={(fallthrough) => set({ fallthrough })} />
      </section>
    </div>
  );
}

export { errorsUnder };
