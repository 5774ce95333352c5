import { Tab, TabGroup, TabList, TabPanel, TabPanels } from '@headlessui/react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { scaleBand, scaleLinear } from '@visx/scale';
import { Bar } from '@visx/shape';
import { AxisBottom, AxisLeft } from '@visx/axis';
import { Group } from '@visx/group';
import { useMemo, useState } from 'react';
import { Link } from 'wouter';
import { TargetingEditor } from '../components/TargetingEditor';
import { Badge, Button, Card, ConfirmDialog, ErrorBanner, Field, Notice, PageHeader, Spinner, Toggle } from '../components/ui';
import { api, enc, isApiError, qs } from '../lib/api';
import { count, dateTime, relativeTime } from '../lib/format';
import { keys, useAllFlags, useExperiments, useFlag, useMemberNames, useProject, useSegments } from '../lib/queries';
import { validateConfig, type FieldErrors } from '../lib/targeting';
import type { ConfigVersion, Environment, FlagConfig, FlagDetail as Detail, FlagEnvironment } from '../lib/types';
import { statusTone } from './ExperimentResults';

export default function FlagDetail({ project, flagKey }: { project: string; flagKey: string }) {
  const flag = useFlag(project, flagKey);
  const proj = useProject(project);
  const name = useMemberNames();
  const envs = proj.data?.environments ?? [];
  const [tab, setTab] = useState(0);
  if (flag.isPending || proj.isPending) return <Spinner label="Loading flag" />;
  if (flag.error) return <ErrorBanner error={flag.error} title="The flag could not be loaded" />;
  const f = flag.data;
  return (
    <div className="space-y-4">
      <PageHeader
        title={<span className="flex flex-wrap items-center gap-2">{f.name || f.key} {f.lifecycle !== 'active' && <Badge tone="amber">{f.lifecycle}</Badge>}</span>}
        subtitle={
          <span>
            <code className="rounded bg-slate-100 px-1">{f.key}</code> · {f.kind} · {f.variations.length} variations · owner {name(f.owner_id)}
            {f.temporary && ` · temporary${f.removal_date ? `, remove by ${f.removal_date}` : ''}`}
            {f.tags.map((t) => <span key={t} className="ml-1 rounded bg-slate-100 px-1 text-xs">{t}</span>)}
          </span>
        }
        actions={<Link className="text-sm text-blue-800 underline" href={`/p/${project}/flags`}>All flags</Link>}
      />
      {f.description && <p className="text-sm text-slate-700">{f.description}</p>}
      <Card title="Environments">
        <ul className="divide-y divide-slate-100">
          {envs.map((e) => <EnvToggleRow key={e.key} project={project} flag={f} env={e} />)}
        </ul>
      </Card>
      <TabGroup selectedIndex={tab} onChange={setTab}>
        <TabList aria-label="Environment to edit" className="flex flex-wrap gap-1 border-b border-slate-200">
          {envs.map((e) => (
            <Tab key={e.key} className="rounded-t-md px-3 py-1.5 text-sm text-slate-700 data-[selected]:border-b-2 data-[selected]:border-blue-700 data-[selected]:font-semibold data-[selected]:text-blue-900">
              {e.name}{e.critical ? ' (critical)' : ''}
            </Tab>
          ))}
        </TabList>
        <TabPanels className="pt-4">
          {envs.map((e) => (
            <TabPanel key={e.key} unmount>
              {f.configs[e.key] ? (
                <EnvPanel project={project} flag={f} env={e} config={f.configs[e.key]} />
              ) : (
                <Notice tone="amber" title="No configuration">This flag has no configuration in {e.name}.</Notice>
              )}
            </TabPanel>
          ))}
        </TabPanels>
      </TabGroup>
      <LinkedExperiments project={project} flagKey={f.key} />
    </div>
  );
}

function EnvToggleRow({ project, flag, env }: { project: string; flag: Detail; env: Environment }) {
  const cfg = flag.configs[env.key];
  const [confirm, setConfirm] = useState<boolean | null>(null);
  const qc = useQueryClient();
  const toggle = useMutation({
    mutationFn: ({ on, comment }: { on: boolean; comment: string }) =>
      api.post<FlagEnvironment>(`/api/v1/projects/${enc(project)}/flags/${enc(flag.key)}/environments/${enc(env.key)}/toggle`, { on, version: cfg?.version, comment: comment || undefined }),
    onSuccess: () => {
      setConfirm(null);
      qc.invalidateQueries({ queryKey: keys.flag(project, flag.key) });
      qc.invalidateQueries({ queryKey: ['flags', project] });
      qc.invalidateQueries({ queryKey: ['history', project, flag.key, env.key] });
    },
  });
  if (!cfg) return null;
  const request = (on: boolean) => {
    if (env.critical) setConfirm(on);
    else toggle.mutate({ on, comment: '' });
  };
  return (
    <li className="flex flex-wrap items-center justify-between gap-2 py-2">
      <div className="flex items-center gap-2">
        <span className="inline-block h-2.5 w-2.5 rounded-full" style={{ background: env.color }} aria-hidden="true" />
        <span className="font-medium">{env.name}</span>
        {env.critical && <Badge tone="red">critical</Badge>}
        {env.locked && <Badge tone="amber" title={env.lock_reason}>locked</Badge>}
      </div>
      <div className="flex items-center gap-3">
        <span className="text-sm text-slate-700" aria-live="polite">{cfg.on ? 'On' : 'Off'} · v{cfg.version} · {relativeTime(cfg.updated_at)}</span>
        <Toggle checked={cfg.on} label={`${flag.key} in ${env.name}`} disabled={toggle.isPending || env.locked} onChange={request} />
      </div>
      {toggle.error && !confirm && <div className="w-full"><ErrorBanner error={toggle.error} /></div>}
      {confirm !== null && (
        <ConfirmDialog
          open
          onClose={() => { setConfirm(null); toggle.reset(); }}
          onConfirm={(comment) => toggle.mutate({ on: confirm, comment })}
          title={`Turn ${flag.key} ${confirm ? 'on' : 'off'} in ${env.name}?`}
          confirmLabel={`Turn ${confirm ? 'on' : 'off'}`}
          danger={!confirm}
          typeToConfirm={env.key}
          busy={toggle.isPending}
          error={toggle.error}
        >
          {env.name} is a critical environment: real users see this change within seconds.
        </ConfirmDialog>
      )}
    </li>
  );
}

function EnvPanel({ project, flag, env, config }: { project: string; flag: Detail; env: Environment; config: FlagEnvironment }) {
  const base: FlagConfig = useMemo(
    () => ({
      on: config.on, off_variation: config.off_variation, prerequisites: config.prerequisites ?? [], targets: config.targets ?? [],
      rules: config.rules ?? [], fallthrough: config.fallthrough, salt: config.salt,
    }),
    [config],
  );
  const [draft, setDraft] = useState<FlagConfig>(base);
  const [baseVersion, setBaseVersion] = useState(config.version);
  const [comment, setComment] = useState('');
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [confirmSave, setConfirmSave] = useState(false);
  if (baseVersion !== config.version) {
    // The configuration changed underneath (a toggle here, a rollback): start from it again.
    setBaseVersion(config.version);
    setDraft(base);
  }
  const allFlags = useAllFlags(project);
  const segments = useSegments(project, env.key);
  const experiments = useExperiments(project);
  const qc = useQueryClient();
  const ctx = useMemo(
    () => ({
      flagKey: flag.key,
      variations: flag.variations.map((v) => v.key),
      flags: Object.fromEntries((allFlags.data ?? []).map((x) => [x.key, x.variations.map((v) => v.key)])),
      segments: (segments.data ?? []).map((s) => s.key),
      // Until the experiments are known, every experiment rollout is shown as fixed.
      liveExperiments: experiments.data
        ?.filter((x) => x.flag === flag.key && x.environment === env.key && (x.status === 'running' || x.status === 'stopped'))
        .map((x) => x.key),
    }),
    [flag, env.key, allFlags.data, segments.data, experiments.data],
  );
  const clientErrors = validateConfig(draft, ctx);
  const errors = { ...clientErrors, ...serverErrors };
  const dirty = JSON.stringify(draft) !== JSON.stringify(base);
  const save = useMutation({
    // PUT replaces the whole configuration (removing an off variation included), based on the
    // version we started from: a change made meanwhile answers 409 instead of being overwritten.
    mutationFn: (c: string) =>
      api.put<FlagEnvironment>(`/api/v1/projects/${enc(project)}/flags/${enc(flag.key)}/environments/${enc(env.key)}`,
        { ...draft, on: config.on, version: config.version, comment: c || undefined }),
    onSuccess: () => {
      setComment('');
      setConfirmSave(false);
      setServerErrors({});
      qc.invalidateQueries({ queryKey: keys.flag(project, flag.key) });
      qc.invalidateQueries({ queryKey: ['history', project, flag.key, env.key] });
    },
    onError: (e) => {
      if (isApiError(e) && e.field) setServerErrors({ [e.field]: e.message });
    },
  });
  const hasErrors = Object.keys(clientErrors).length > 0;
  // A 409 is either a version conflict (someone saved meanwhile: field "version", or none) or
  // the flag service protecting a running experiment's rollout (field "fallthrough.rollout",
  // "rules[2].serve.rollout.experiment_key"), which reloading would not fix.
  const conflict = isApiError(save.error) && save.error.status === 409 ? save.error : null;
  const stale = !!conflict && (!conflict.field || conflict.field === 'version');
  return (
    <div className="grid grid-cols-1 gap-4 xl:grid-cols-[1fr_22rem]">
      <Card title={`Targeting in ${env.name}`}>
        {env.locked && <Notice tone="amber" title="This environment is locked">{env.lock_reason || 'Changes are rejected until it is unlocked.'}</Notice>}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (env.critical) setConfirmSave(true);
            else save.mutate(comment);
          }}
        >
          <TargetingEditor config={draft} onChange={(c) => { setDraft(c); setServerErrors({}); }} ctx={ctx} errors={errors} disabled={env.locked} />
          <div className="sticky bottom-0 mt-4 flex flex-wrap items-end gap-2 border-t border-slate-200 bg-white pt-3">
            <Field label="Change comment" className="min-w-[16rem] flex-1">
              {(p) => <input {...p} value={comment} onChange={(e) => setComment(e.target.value)} placeholder="Why (recorded in the history)" />}
            </Field>
            <Button onClick={() => { setDraft(base); setServerErrors({}); save.reset(); }} disabled={!dirty}>Discard</Button>
            <Button type="submit" variant="primary" disabled={!dirty || hasErrors || save.isPending || env.locked}>
              {save.isPending ? 'Saving…' : 'Save targeting'}
            </Button>
          </div>
          {hasErrors && dirty && <p className="mt-2 text-sm text-red-800" role="status">Fix the {Object.keys(clientErrors).length} problem(s) marked above to save.</p>}
          {stale ? (
            <div className="mt-2"><ErrorBanner error={save.error} title="Someone changed this flag meanwhile. Reload to see their change, then apply yours again." /></div>
          ) : conflict ? (
            // Also at the field when it is shown, but a rule's path is the one before the edit.
            <div className="mt-2"><ErrorBanner error={save.error} title="Not saved: this change touches an experiment’s split, which is fixed until the experiment is concluded" /></div>
          ) : save.error && !(isApiError(save.error) && save.error.field) ? (
            <div className="mt-2"><ErrorBanner error={save.error} /></div>
          ) : null}
        </form>
        {confirmSave && (
          <ConfirmDialog open onClose={() => setConfirmSave(false)} onConfirm={(c) => save.mutate(c || comment)} title={`Save targeting in ${env.name}?`}
            confirmLabel="Save" typeToConfirm={env.key} busy={save.isPending} error={save.error}>
            {env.name} is a critical environment: real users are affected within seconds.
          </ConfirmDialog>
        )}
      </Card>
      <div className="space-y-4">
        <UsageCard project={project} flagKey={flag.key} env={env} />
        <HistoryCard project={project} flagKey={flag.key} env={env} current={config.version} />
      </div>
    </div>
  );
}

function describeOp(op: { op: string; path: string; value?: unknown }): string {
  const v = op.value === undefined ? '' : ` ${JSON.stringify(op.value)}`;
  return `${op.op} ${op.path}${v}`;
}

function HistoryCard({ project, flagKey, env, current }: { project: string; flagKey: string; env: Environment; current: number }) {
  const qc = useQueryClient();
  const history = useQuery({
    queryKey: ['history', project, flagKey, env.key],
    queryFn: ({ signal }) => api.get<{ items: ConfigVersion[] }>(`/api/v1/projects/${enc(project)}/flags/${enc(flagKey)}/environments/${enc(env.key)}/history${qs({ limit: 20 })}`, signal).then((r) => r.items),
  });
  const [target, setTarget] = useState<number | null>(null);
  const rollback = useMutation({
    mutationFn: ({ to, comment }: { to: number; comment: string }) =>
      api.post(`/api/v1/projects/${enc(project)}/flags/${enc(flagKey)}/environments/${enc(env.key)}/rollback`, { to_version: to, version: current, comment: comment || undefined }),
    onSuccess: () => {
      setTarget(null);
      qc.invalidateQueries({ queryKey: keys.flag(project, flagKey) });
      qc.invalidateQueries({ queryKey: ['history', project, flagKey, env.key] });
    },
  });
  return (
    <Card title="Change history">
      {history.isPending ? <Spinner label="Loading history" /> : history.error ? <ErrorBanner error={history.error} /> : (
        <ol className="space-y-3" aria-label={`Versions in ${env.name}, newest first`}>
          {history.data.map((v) => (
            <li key={v.version} className="rounded-md border border-slate-200 p-2 text-sm" data-testid="history-item">
              <div className="flex items-center justify-between gap-2">
                <span className="font-medium">v{v.version} · {v.change}</span>
                {v.version !== current ? (
                  <Button size="sm" onClick={() => setTarget(v.version)} aria-label={`Roll back to version ${v.version}`}>Roll back</Button>
                ) : <Badge tone="blue">current</Badge>}
              </div>
              <p className="text-xs text-slate-600">{v.actor?.name} · {dateTime(v.created_at)}</p>
              {v.comment && <p className="text-xs italic text-slate-700">“{v.comment}”</p>}
              {v.diff?.length > 0 && (
                <details className="mt-1">
                  <summary className="cursor-pointer text-xs text-blue-800">{v.diff.length} change{v.diff.length === 1 ? '' : 's'}</summary>
                  <ul className="mt-1 space-y-0.5 font-mono text-xs">
                    {v.diff.map((op, i) => (
                      <li key={i} className={op.op === 'remove' ? 'text-red-800' : op.op === 'add' ? 'text-green-800' : 'text-slate-800'}>
                        {op.op === 'remove' ? '− ' : op.op === 'add' ? '+ ' : '~ '}{describeOp(op)}
                      </li>
                    ))}
                  </ul>
                </details>
              )}
            </li>
          ))}
        </ol>
      )}
      {target !== null && (
        <ConfirmDialog open onClose={() => { setTarget(null); rollback.reset(); }} onConfirm={(comment) => rollback.mutate({ to: target, comment })}
          title={`Roll back to v${target} in ${env.name}?`} confirmLabel="Roll back" danger typeToConfirm={env.critical ? env.key : undefined}
          busy={rollback.isPending} error={rollback.error}>
          The configuration of v{target} becomes current again, as a new version. Nothing is lost: you can roll forward the same way.
        </ConfirmDialog>
      )}
    </Card>
  );
}

interface EvalCount { bucket: string; flag_key: string; variation_key: string; evaluations: number }
const usagePalette = ['#1d4ed8', '#b45309', '#7e22ce', '#0f766e', '#be123c', '#4d7c0f'];

function UsageCard({ project, flagKey, env }: { project: string; flagKey: string; env: Environment }) {
  const from = useMemo(() => new Date(Date.now() - 14 * 86_400_000).toISOString(), []);
  const usage = useQuery({
    queryKey: ['usage', env.id, flagKey, from],
    queryFn: ({ signal }) => api.get<{ counts: EvalCount[] }>(`/usage/evaluations${qs({ environment_id: env.id, flag_key: flagKey, interval: 'day', from })}`, signal).then((r) => r.counts ?? []),
    retry: false,
  });
  void project;
  return (
    <Card title="Evaluations (14 days)">
      {usage.isPending ? <Spinner label="Loading evaluation counts" /> : usage.error ? (
        isApiError(usage.error) && usage.error.status === 503 ? (
          <p className="text-sm text-slate-600">Evaluation counts are unavailable: {usage.error.message}</p>
        ) : <ErrorBanner error={usage.error} />
      ) : <UsageChart counts={usage.data} />}
    </Card>
  );
}

function UsageChart({ counts }: { counts: EvalCount[] }) {
  if (!counts.length) return <p className="text-sm text-slate-600">No evaluations reported by SDKs in this period.</p>;
  const buckets = [...new Set(counts.map((c) => c.bucket))].sort();
  const variations = [...new Set(counts.map((c) => c.variation_key))].sort();
  const totals = new Map<string, number>();
  const byVar = new Map<string, number>();
  for (const c of counts) {
    totals.set(c.bucket, (totals.get(c.bucket) ?? 0) + c.evaluations);
    byVar.set(c.variation_key, (byVar.get(c.variation_key) ?? 0) + c.evaluations);
  }
  const total = [...byVar.values()].reduce((a, b) => a + b, 0);
  const width = 340, height = 160, m = { top: 6, right: 6, bottom: 22, left: 44 };
  const x = scaleBand<string>({ domain: buckets, range: [0, width - m.left - m.right], padding: 0.2 });
  const y = scaleLinear<number>({ domain: [0, Math.max(...totals.values())], range: [height - m.top - m.bottom, 0], nice: true });
  return (
    <figure>
      <svg width="100%" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${count(total)} evaluations: ${variations.map((v) => `${v} ${count(byVar.get(v))}`).join(', ')}`}>
        <Group left={m.left} top={m.top}>
          {buckets.map((b) => {
            let acc = 0;
            return variations.map((v, i) => {
              const n = counts.find((c) => c.bucket === b && c.variation_key === v)?.evaluations ?? 0;
              const y0 = y(acc), y1 = y(acc + n);
              acc += n;
              return <Bar key={`${b}/${v}`} x={x(b)} y={y1} width={x.bandwidth()} height={Math.max(0, y0 - y1)} fill={usagePalette[i % usagePalette.length]} />;
            });
          })}
          <AxisLeft scale={y} numTicks={4} tickFormat={(v) => count(Number(v))} tickLabelProps={{ fontSize: 10, fill: '#334155', textAnchor: 'end', dx: -3, dy: 3 }} stroke="#64748b" tickStroke="#64748b" />
          <AxisBottom top={height - m.top - m.bottom} scale={x} tickValues={buckets.filter((_, i) => i % Math.ceil(buckets.length / 5) === 0)}
            tickFormat={(b) => new Date(b).toLocaleDateString('en-US', { month: 'short', day: 'numeric' })}
            tickLabelProps={{ fontSize: 10, fill: '#334155', textAnchor: 'middle' }} stroke="#64748b" tickStroke="#64748b" />
        </Group>
      </svg>
      <figcaption className="mt-1 flex flex-wrap gap-3 text-xs text-slate-700">
        {variations.map((v, i) => (
          <span key={v} className="inline-flex items-center gap-1">
            <span className="inline-block h-2 w-3 rounded" style={{ background: usagePalette[i % usagePalette.length] }} aria-hidden="true" />
            {v}: {count(byVar.get(v))} ({total ? Math.round((100 * (byVar.get(v) ?? 0)) / total) : 0}%)
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

function LinkedExperiments({ project, flagKey }: { project: string; flagKey: string }) {
  const experiments = useExperiments(project);
  const mine = (experiments.data ?? []).filter((e) => e.flag === flagKey);
  return (
    <Card title="Experiments on this flag">
      {experiments.isPending ? <Spinner label="Loading experiments" /> : experiments.error ? (
        <ErrorBanner error={experiments.error} />
      ) : mine.length === 0 ? (
        <p className="text-sm text-slate-600">No experiment uses this flag.</p>
      ) : (
        <ul className="divide-y divide-slate-100">
          {mine.map((e) => (
            <li key={e.key} className="flex items-center justify-between py-2 text-sm">
              <Link className="font-medium text-blue-800 hover:underline" href={`/p/${project}/experiments/${e.key}`}>{e.name || e.key}</Link>
              <span className="flex items-center gap-2"><span className="text-slate-600">{e.environment}</span><Badge tone={statusTone[e.status]}>{e.status}</Badge></span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
