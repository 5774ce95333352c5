// The audit log: who changed what, when, and from where. Filter, page back, export.

import { useInfiniteQuery } from '@tanstack/react-query';
import { Fragment, useState } from 'react';
import { Button, Empty, ErrorBanner, Field, PageHeader, Spinner } from '../components/ui';
import { api, download, qs } from '../lib/api';
import { dateTime } from '../lib/format';
import { useMembers, useProjects } from '../lib/queries';
import type { AuditEntry } from '../lib/types';

function toRFC3339(day: string, endOfDay = false): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00Z`);
  if (endOfDay) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}

export default function Audit() {
  const [action, setAction] = useState('');
  const [resourceType, setResourceType] = useState('');
  const [resource, setResource] = useState('');
  const [actor, setActor] = useState('');
  const [project, setProject] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [open, setOpen] = useState<number | null>(null);
  const [exportError, setExportError] = useState<unknown>(null);
  const members = useMembers();
  const projects = useProjects();
  const filters = { action: action.trim(), resource_type: resourceType, resource: resource.trim(), actor, project, from: toRFC3339(from), to: toRFC3339(to, true) };
  const log = useInfiniteQuery({
    queryKey: ['audit', filters],
    queryFn: ({ pageParam, signal }) => api.get<{ items: AuditEntry[]; next_before_id?: number }>(`/api/v1/audit${qs({ ...filters, limit: 100, before_id: pageParam })}`, signal),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => last.next_before_id || undefined,
    placeholderData: (prev) => prev,
  });
  const items = (log.data?.pages ?? []).flatMap((p) => p.items);
  const exportAs = async (format: 'csv' | 'json') => {
    setExportError(null);
    try {
      await download(`/api/v1/audit/export${qs({ ...filters, format })}`, `switchyard-audit.${format === 'csv' ? 'csv' : 'jsonl'}`);
    } catch (e) {
      setExportError(e);
    }
  };
  return (
    <div>
      <PageHeader title="Audit log" subtitle="Every change, by whom, when and from where. Newest first."
        actions={<><Button onClick={() => exportAs('csv')}>Export CSV</Button><Button onClick={() => exportAs('json')}>Export JSON lines</Button></>} />
      <ErrorBanner error={exportError} />
      <div className="mb-3 grid grid-cols-2 gap-3 md:grid-cols-4 lg:grid-cols-7">
        <Field label="Action (press /)" hint="or a prefix: flag_config.">{(p) => <input {...p} data-search value={action} onChange={(e) => setAction(e.target.value)} placeholder="flag_config.toggle" />}</Field>
        <Field label="Resource type">{(p) => <select {...p} value={resourceType} onChange={(e) => setResourceType(e.target.value)}>
          <option value="">Any</option>{['flag', 'flag_config', 'segment', 'environment', 'project', 'sdk_key', 'member', 'token', 'experiment', 'metric', 'guardrail'].map((t) => <option key={t}>{t}</option>)}</select>}</Field>
        <Field label="Resource key or id">{(p) => <input {...p} value={resource} onChange={(e) => setResource(e.target.value)} />}</Field>
        <Field label="Actor">{(p) => <select {...p} value={actor} onChange={(e) => setActor(e.target.value)}><option value="">Anyone</option>{(members.data ?? []).map((m) => <option key={m.id} value={m.id}>{m.name || m.email}</option>)}</select>}</Field>
        <Field label="Project">{(p) => <select {...p} value={project} onChange={(e) => setProject(e.target.value)}><option value="">All</option>{(projects.data ?? []).map((x) => <option key={x.key} value={x.key}>{x.name}</option>)}</select>}</Field>
        <Field label="From">{(p) => <input {...p} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />}</Field>
        <Field label="To">{(p) => <input {...p} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}</Field>
      </div>
      {log.isPending ? <Spinner label="Loading the audit log" /> : log.error ? <ErrorBanner error={log.error} title="The audit log could not be loaded" /> : items.length === 0 ? <Empty>No entries match.</Empty> : (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full min-w-[800px] text-sm">
            <caption className="sr-only">Audit entries</caption>
            <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
              <tr><th scope="col" className="px-3 py-2">When</th><th scope="col" className="px-3 py-2">Who</th><th scope="col" className="px-3 py-2">Action</th><th scope="col" className="px-3 py-2">Resource</th><th scope="col" className="px-3 py-2">Comment</th><th className="px-3 py-2"><span className="sr-only">Details</span></th></tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {items.map((a) => (
                <Fragment key={a.id}>
                  <tr data-testid="audit-row">
                    <td className="whitespace-nowrap px-3 py-2">{dateTime(a.at)}</td>
                    <td className="px-3 py-2">{a.actor?.name}<div className="text-xs text-slate-600">{a.actor?.type} · {a.ip}</div></td>
                    <td className="px-3 py-2"><code>{a.action}</code></td>
                    <td className="px-3 py-2">{a.resource_type} <span className="font-medium">{a.resource_key || a.resource_id}</span></td>
                    <td className="px-3 py-2 text-slate-700">{a.comment}</td>
                    <td className="px-3 py-2 text-right">
                      <Button size="sm" variant="ghost" aria-expanded={open === a.id} onClick={() => setOpen(open === a.id ? null : a.id)}>{open === a.id ? 'Hide' : 'Details'}</Button>
                    </td>
                  </tr>
                  {open === a.id && (
                    <tr key={`${a.id}-d`}>
                      <td colSpan={6} className="bg-slate-50 px-3 py-2">
                        <div className="grid grid-cols-1 gap-2 md:grid-cols-2">
                          <div><p className="text-xs font-semibold">Before</p><pre className="max-h-64 overflow-auto text-xs">{JSON.stringify(a.before ?? null, null, 2)}</pre></div>
                          <div><p className="text-xs font-semibold">After</p><pre className="max-h-64 overflow-auto text-xs">{JSON.stringify(a.after ?? null, null, 2)}</pre></div>
                        </div>
                        <p className="mt-1 text-xs text-slate-600">{a.user_agent}</p>
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {log.hasNextPage && <div className="mt-3 text-center"><Button onClick={() => log.fetchNextPage()} disabled={log.isFetchingNextPage}>{log.isFetchingNextPage ? 'Loading…' : 'Load older'}</Button></div>}
    </div>
  );
}
