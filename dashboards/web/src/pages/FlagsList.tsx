import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { Badge, Button, Empty, ErrorBanner, Field, FilterSelect, Modal, PageHeader, Spinner } from '../components/ui';
import { api, enc, isApiError, qs } from '../lib/api';
import { relativeTime } from '../lib/format';
import { useMemberNames, useMembers, useProject } from '../lib/queries';
import type { AuditEntry, Flag, FlagKind } from '../lib/types';

type Health = 'healthy' | 'stale' | 'rolled back';

/** Stale: a temporary flag past its removal date, or deprecated, or named by the jobs report. */
export function flagHealth(f: Flag, rolledBack: Set<string>, staleFromJobs: Set<string>, today = new Date()): Health {
  if (rolledBack.has(f.key)) return 'rolled back';
  if (staleFromJobs.has(f.key)) return 'stale';
  if (f.lifecycle === 'deprecated') return 'stale';
  if (f.temporary && f.removal_date && new Date(f.removal_date) < today) return 'stale';
  return 'healthy';
}

const healthTone = { healthy: 'green', stale: 'amber', 'rolled back': 'red' } as const;

export default function FlagsList({ project }: { project: string }) {
  const proj = useProject(project);
  const envs = proj.data?.environments ?? [];
  const [q, setQ] = useState('');
  const [tag, setTag] = useState('');
  const [owner, setOwner] = useState('');
  const [kind, setKind] = useState('');
  const [lifecycle, setLifecycle] = useState('');
  const [envOn, setEnvOn] = useState(''); // "production:true"
  const [sort, setSort] = useState('key');
  const [onlyStale, setOnlyStale] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [creating, setCreating] = useState(false);
  const [tagging, setTagging] = useState<'tag' | 'untag' | null>(null);
  const qc = useQueryClient();
  const members = useMembers();
  const name = useMemberNames();
  const [environment, on] = envOn ? envOn.split(':') : [undefined, undefined];
  const params = { q: q.trim(), tag, owner, kind, lifecycle, environment, on, sort, limit: 100 };
  const flags = useInfiniteQuery({
    queryKey: ['flags', project, params],
    queryFn: ({ pageParam, signal }) =>
      api.get<{ items: Flag[]; next_cursor?: string; total?: number }>(`/api/v1/projects/${enc(project)}/flags${qs({ ...params, cursor: pageParam })}`, signal),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor || undefined,
    placeholderData: (prev) => prev,
  });
  const since = useMemo(() => new Date(Date.now() - 7 * 86_400_000).toISOString(), []);
  const rollbacks = useQuery({
    queryKey: ['audit', 'rollbacks', project, since],
    queryFn: ({ signal }) => api.get<{ items: AuditEntry[] }>(`/api/v1/audit${qs({ project, action: 'flag_config.', from: since, limit: 1000 })}`, signal).then((r) => r.items),
    retry: false,
  });
  const staleReport = useQuery({
    queryKey: ['stale', project],
    queryFn: ({ signal }) => api.get<{ items: { flag: string }[] }>(`/jobs/v1/projects/${enc(project)}/stale-flags`, signal).then((r) => r.items),
    retry: false,
  });
  const rolledBack = new Set(
    (rollbacks.data ?? []).filter((a) => /rollback|kill/.test(a.action)).map((a) => a.resource_key),
  );
  const staleFromJobs = new Set((staleReport.data ?? []).map((s) => s.flag));
  const all = (flags.data?.pages ?? []).flatMap((p) => p.items);
  const shown = onlyStale ? all.filter((f) => flagHealth(f, rolledBack, staleFromJobs) === 'stale') : all;
  const total = flags.data?.pages[0]?.total;
  const tags = [...new Set(all.flatMap((f) => f.tags))].sort();

  const bulk = useMutation({
    mutationFn: (body: { action: string; keys: string[]; tags?: string[] }) => api.post(`/api/v1/projects/${enc(project)}/flags/bulk`, body),
    onSuccess: () => {
      setSelected(new Set());
      setTagging(null);
      qc.invalidateQueries({ queryKey: ['flags', project] });
    },
  });
  const toggleSel = (key: string) => {
    const next = new Set(selected);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setSelected(next);
  };
  const allSelected = shown.length > 0 && shown.every((f) => selected.has(f.key));

  return (
    <div>
      <PageHeader
        title="Flags"
        subtitle={total !== undefined ? `${total} flags match` : undefined}
        actions={<Button variant="primary" onClick={() => setCreating(true)}>New flag</Button>}
      />
      <div className="mb-3 grid grid-cols-2 gap-3 md:grid-cols-4 lg:grid-cols-8">
        <Field label="Search (press /)" className="col-span-2">
          {(p) => <input {...p} data-search type="search" placeholder="key, name, description" value={q} onChange={(e) => setQ(e.target.value)} />}
        </Field>
        <FilterSelect label="Tag" value={tag} onChange={setTag} any="Any" options={tags} />
        <FilterSelect label="Owner" value={owner} onChange={setOwner} any="Anyone" options={(members.data ?? []).map((m) => ({ value: m.id, label: m.name || m.email }))} />
        <FilterSelect label="Kind" value={kind} onChange={setKind} any="Any" options={['boolean', 'string', 'number', 'json']} />
        <FilterSelect label="Lifecycle" value={lifecycle} onChange={setLifecycle} any="Active & deprecated" options={['active', 'deprecated', 'archived', 'all']} />
        <Field label="On / off">
          {(p) => (
            <select {...p} value={envOn} onChange={(e) => setEnvOn(e.target.value)}>
              <option value="">Any</option>
              {envs.flatMap((e) => [
                <option key={`${e.key}:true`} value={`${e.key}:true`}>On in {e.name}</option>,
                <option key={`${e.key}:false`} value={`${e.key}:false`}>Off in {e.name}</option>,
              ])}
            </select>
          )}
        </Field>
        <Field label="Sort">
          {(p) => (
            <select {...p} value={sort} onChange={(e) => setSort(e.target.value)}>
              <option value="key">Key</option>
              <option value="name">Name</option>
              <option value="-updated_at">Recently changed</option>
              <option value="-created_at">Newest</option>
            </select>
          )}
        </Field>
      </div>
      <div className="mb-2 flex flex-wrap items-center gap-3">
        <label className="inline-flex items-center gap-2 text-sm">
          <input type="checkbox" className="h-4 w-4" checked={onlyStale} onChange={(e) => setOnlyStale(e.target.checked)} />
          Only stale flags
        </label>
        {selected.size > 0 && (
          <div role="toolbar" aria-label="Bulk actions" className="flex items-center gap-2 rounded-md bg-blue-50 px-2 py-1 text-sm">
            <span>{selected.size} selected</span>
            <Button size="sm" onClick={() => bulk.mutate({ action: 'archive', keys: [...selected] })}>Archive</Button>
            <Button size="sm" onClick={() => bulk.mutate({ action: 'unarchive', keys: [...selected] })}>Unarchive</Button>
            <Button size="sm" onClick={() => setTagging('tag')}>Add tag…</Button>
            <Button size="sm" onClick={() => setTagging('untag')}>Remove tag…</Button>
            <Button size="sm" variant="ghost" onClick={() => setSelected(new Set())}>Clear</Button>
          </div>
        )}
      </div>
      <ErrorBanner error={bulk.error} />
      {flags.isPending ? <Spinner label="Loading flags" /> : flags.error ? (
        <ErrorBanner error={flags.error} title="Flags could not be loaded" />
      ) : shown.length === 0 ? (
        <Empty>No flag matches these filters.</Empty>
      ) : (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full min-w-[860px] text-sm">
            <caption className="sr-only">Flags</caption>
            <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
              <tr>
                <th scope="col" className="w-8 px-3 py-2">
                  <input type="checkbox" className="h-4 w-4" aria-label="Select all shown flags" checked={allSelected}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(shown.map((f) => f.key)))} />
                </th>
                <th scope="col" className="px-3 py-2">Flag</th>
                <th scope="col" className="px-3 py-2">Kind</th>
                {envs.map((e) => <th key={e.key} scope="col" className="px-3 py-2">{e.name}</th>)}
                <th scope="col" className="px-3 py-2">Health</th>
                <th scope="col" className="px-3 py-2">Owner</th>
                <th scope="col" className="px-3 py-2">Changed</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {shown.map((f) => {
                const health = flagHealth(f, rolledBack, staleFromJobs);
                return (
                  <tr key={f.key} className={selected.has(f.key) ? 'bg-blue-50' : ''}>
                    <td className="px-3 py-2">
                      <input type="checkbox" className="h-4 w-4" aria-label={`Select ${f.key}`} checked={selected.has(f.key)} onChange={() => toggleSel(f.key)} />
                    </td>
                    <th scope="row" className="px-3 py-2 text-left font-normal">
                      <Link href={`/p/${project}/flags/${f.key}`} className="font-medium text-blue-800 hover:underline">{f.key}</Link>
                      <div className="text-xs text-slate-600">
                        {f.name !== f.key && f.name}
                        {f.tags.map((t) => <span key={t} className="ml-1 rounded bg-slate-100 px-1">{t}</span>)}
                        {f.lifecycle !== 'active' && <span className="ml-1 italic">{f.lifecycle}</span>}
                      </div>
                    </th>
                    <td className="px-3 py-2 text-slate-700">{f.kind}</td>
                    {envs.map((e) => {
                      const st = f.environments?.[e.key];
                      return (
                        <td key={e.key} className="px-3 py-2">
                          {st ? <Badge tone={st.on ? 'green' : 'slate'}>{st.on ? 'On' : 'Off'}</Badge> : '—'}
                        </td>
                      );
                    })}
                    <td className="px-3 py-2"><Badge tone={healthTone[health]}>{health}</Badge></td>
                    <td className="px-3 py-2 text-slate-700">{name(f.owner_id)}</td>
                    <td className="px-3 py-2 text-slate-700">{relativeTime(f.updated_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {flags.hasNextPage && (
        <div className="mt-3 text-center">
          <Button onClick={() => flags.fetchNextPage()} disabled={flags.isFetchingNextPage}>
            {flags.isFetchingNextPage ? 'Loading…' : 'Load more'}
          </Button>
        </div>
      )}
      {creating && <CreateFlag project={project} onClose={() => setCreating(false)} />}
      {tagging && (
        <TagDialog
          action={tagging}
          count={selected.size}
          busy={bulk.isPending}
          error={bulk.error}
          onClose={() => setTagging(null)}
          onSubmit={(t) => bulk.mutate({ action: tagging, keys: [...selected], tags: [t] })}
        />
      )}
    </div>
  );
}

function TagDialog({ action, count, onClose, onSubmit, busy, error }: {
  action: 'tag' | 'untag'; count: number; onClose: () => void; onSubmit: (tag: string) => void; busy: boolean; error: unknown;
}) {
  const [tag, setTag] = useState('');
  return (
    <Modal open onClose={onClose} title={action === 'tag' ? `Add a tag to ${count} flags` : `Remove a tag from ${count} flags`}>
      <form className="space-y-3" onSubmit={(e) => { e.preventDefault(); onSubmit(tag.trim()); }}>
        <Field label="Tag">{(p) => <input {...p} required value={tag} onChange={(e) => setTag(e.target.value)} />}</Field>
        <ErrorBanner error={error} />
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy || !tag.trim()}>{action === 'tag' ? 'Add tag' : 'Remove tag'}</Button>
        </div>
      </form>
    </Modal>
  );
}

const defaultVariations: Record<FlagKind, string> = {
  boolean: '',
  string: 'control=control\ntreatment=treatment',
  number: 'low=1\nhigh=2',
  json: 'a={"mode":"a"}\nb={"mode":"b"}',
};

function CreateFlag({ project, onClose }: { project: string; onClose: () => void }) {
  const [key, setKey] = useState('');
  const [flagName, setFlagName] = useState('');
  const [kind, setKind] = useState<FlagKind>('boolean');
  const [variations, setVariations] = useState('');
  const [tags, setTags] = useState('');
  const [temporary, setTemporary] = useState(true);
  const [localError, setLocalError] = useState<string | undefined>();
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: (body: unknown) => api.post<Flag>(`/api/v1/projects/${enc(project)}/flags`, body),
    onSuccess: (f) => {
      qc.invalidateQueries({ queryKey: ['flags', project] });
      qc.invalidateQueries({ queryKey: ['all-flags', project] });
      navigate(`/p/${project}/flags/${f.key}`);
    },
  });
  const fieldError = (f: string) => (isApiError(create.error) && create.error.field?.startsWith(f) ? create.error.message : undefined);
  const parseVariations = () => {
    if (kind === 'boolean') return [{ key: 'on', value: true }, { key: 'off', value: false }];
    return variations.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
      const [k, ...rest] = line.split('=');
      const raw = rest.join('=');
      const value = kind === 'number' ? Number(raw) : kind === 'json' ? JSON.parse(raw) : raw;
      return { key: k.trim(), value };
    });
  };
  return (
    <Modal open onClose={onClose} title="New flag" wide>
      <form
        className="grid grid-cols-1 gap-3 sm:grid-cols-2"
        onSubmit={(e) => {
          e.preventDefault();
          setLocalError(undefined);
          let vs;
          try {
            vs = parseVariations();
          } catch {
            setLocalError('each line is key=value, and JSON values must be valid JSON');
            return;
          }
          create.mutate({
            key: key.trim(), name: flagName.trim() || key.trim(), kind, variations: vs, temporary,
            tags: tags.split(',').map((t) => t.trim()).filter(Boolean),
          });
        }}
      >
        <Field label="Key" error={fieldError('key')} hint="Used in code; letters, digits, . _ -">
          {(p) => <input {...p} required autoFocus pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" value={key} onChange={(e) => setKey(e.target.value)} />}
        </Field>
        <Field label="Name" error={fieldError('name')}>{(p) => <input {...p} value={flagName} onChange={(e) => setFlagName(e.target.value)} />}</Field>
        <Field label="Kind" error={fieldError('kind')}>
          {(p) => (
            <select {...p} value={kind} onChange={(e) => { const k = e.target.value as FlagKind; setKind(k); setVariations(defaultVariations[k]); }}>
              {['boolean', 'string', 'number', 'json'].map((k) => <option key={k}>{k}</option>)}
            </select>
          )}
        </Field>
        <Field label="Tags" hint="Comma-separated" error={fieldError('tags')}>{(p) => <input {...p} value={tags} onChange={(e) => setTags(e.target.value)} />}</Field>
        {kind !== 'boolean' && (
          <Field label="Variations" className="sm:col-span-2" hint="One per line: key=value" error={localError ?? fieldError('variations')}>
            {(p) => <textarea {...p} rows={4} value={variations} onChange={(e) => setVariations(e.target.value)} />}
          </Field>
        )}
        <label className="inline-flex items-center gap-2 text-sm sm:col-span-2">
          <input type="checkbox" className="h-4 w-4" checked={temporary} onChange={(e) => setTemporary(e.target.checked)} />
          Temporary (a release or experiment flag that should be removed later)
        </label>
        <div className="sm:col-span-2">
          <ErrorBanner error={create.error && !(isApiError(create.error) && ['key', 'name', 'kind', 'tags', 'variations'].some((f) => fieldError(f))) ? create.error : null} />
        </div>
        <div className="flex justify-end gap-2 sm:col-span-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={create.isPending || !key.trim()}>{create.isPending ? 'Creating…' : 'Create flag'}</Button>
        </div>
      </form>
    </Modal>
  );
}
