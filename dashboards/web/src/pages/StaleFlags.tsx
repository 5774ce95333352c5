// Stale flags: flags that have done their job and should leave the code. The full report
// (flags serving one variation to everyone for weeks, not evaluated any more) comes from the
// jobs service; until it answers, the flags' own settings tell part of the story.

import { useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { Badge, Empty, ErrorBanner, Notice, PageHeader, Spinner } from '../components/ui';
import { api, enc, isApiError } from '../lib/api';
import { date, relativeTime } from '../lib/format';
import { useAllFlags, useMemberNames } from '../lib/queries';

interface StaleEntry { flag: string; reason?: string; reasons?: string[]; last_evaluated_at?: string; serving?: string; since?: string }

export default function StaleFlags({ project }: { project: string }) {
  const report = useQuery({
    queryKey: ['stale', project],
    queryFn: ({ signal }) => api.get<{ items: StaleEntry[]; generated_at?: string }>(`/jobs/v1/projects/${enc(project)}/stale-flags`, signal),
    retry: false,
  });
  const flags = useAllFlags(project);
  const name = useMemberNames();
  const today = new Date();
  const own = (flags.data ?? []).filter((f) => f.lifecycle !== 'archived' && (f.lifecycle === 'deprecated' || (f.temporary && f.removal_date && new Date(f.removal_date) < today)));
  return (
    <div className="space-y-4">
      <PageHeader title="Stale flags" subtitle="Flags that have done their job. Remove them from the code, then archive them." />
      {report.isPending ? <Spinner label="Loading the stale-flag report" /> : report.error ? (
        <Notice tone="amber" title="The jobs service’s stale-flag report is not available">
          {isApiError(report.error) ? report.error.message : String(report.error)}. Below: flags whose own settings say they are stale.
        </Notice>
      ) : (
        <section aria-labelledby="report-h">
          <h2 id="report-h" className="mb-2 text-base font-semibold">Report {report.data.generated_at && <span className="text-sm font-normal text-slate-600">generated {relativeTime(report.data.generated_at)}</span>}</h2>
          {report.data.items.length === 0 ? <Empty>No stale flags. Nice.</Empty> : (
            <ul className="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white">
              {report.data.items.map((s) => (
                <li key={s.flag} className="p-3 text-sm">
                  <Link className="font-medium text-blue-800 hover:underline" href={`/p/${project}/flags/${s.flag}`}>{s.flag}</Link>
                  <p className="text-slate-700">{(s.reasons ?? [s.reason]).filter(Boolean).join('; ')}</p>
                  {s.last_evaluated_at && <p className="text-xs text-slate-600">last evaluated {relativeTime(s.last_evaluated_at)}</p>}
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      <section aria-labelledby="own-h">
        <h2 id="own-h" className="mb-2 text-base font-semibold">By their own settings</h2>
        {flags.isPending ? <Spinner label="Loading flags" /> : flags.error ? <ErrorBanner error={flags.error} /> : own.length === 0 ? (
          <Empty>No deprecated flags and no temporary flags past their removal date.</Empty>
        ) : (
          <ul className="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white">
            {own.map((f) => (
              <li key={f.key} className="flex flex-wrap items-center justify-between gap-2 p-3 text-sm">
                <span><Link className="font-medium text-blue-800 hover:underline" href={`/p/${project}/flags/${f.key}`}>{f.key}</Link> · owner {name(f.owner_id)}</span>
                <Badge tone="amber">{f.lifecycle === 'deprecated' ? 'deprecated' : `removal date ${date(f.removal_date)} passed`}</Badge>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
