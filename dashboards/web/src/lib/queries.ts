// Data hooks over the APIs (TanStack Query: cached, deduplicated, refetched on demand).

import { useQuery } from '@tanstack/react-query';
import { api, enc, isApiError, qs } from './api';
import type {
  Estimate, Experiment, Flag, FlagDetail, Guardrail, Me, Member, Metric, Project, Segment, Snapshot, TimeseriesPoint,
} from './types';

export const keys = {
  me: ['me'] as const,
  projects: ['projects'] as const,
  flags: (p: string, params: Record<string, unknown>) => ['flags', p, params] as const,
  flag: (p: string, f: string) => ['flag', p, f] as const,
  allFlags: (p: string) => ['all-flags', p] as const,
  segments: (p: string, e: string) => ['segments', p, e] as const,
  metrics: (p: string) => ['metrics', p] as const,
  experiments: (p: string) => ['experiments', p] as const,
  experiment: (p: string, k: string) => ['experiment', p, k] as const,
  results: (p: string, k: string) => ['results', p, k] as const,
  timeseries: (p: string, k: string, m: string) => ['timeseries', p, k, m] as const,
  estimate: (p: string, k: string, effect: number | null) => ['estimate', p, k, effect] as const,
  guardrails: (p: string, e: string) => ['guardrails', p, e] as const,
  members: ['members'] as const,
};

export function useMe() {
  return useQuery({ queryKey: keys.me, queryFn: ({ signal }) => api.get<Me>('/api/v1/me', signal), staleTime: 60_000 });
}

export function useProjects() {
  return useQuery({
    queryKey: keys.projects,
    queryFn: ({ signal }) => api.get<{ items: Project[] }>('/api/v1/projects', signal).then((r) => r.items),
    staleTime: 60_000,
  });
}

export function useProject(key: string) {
  const q = useProjects();
  return { ...q, data: q.data?.find((p) => p.key === key) };
}

/** Every flag of a project (key → variations), for prerequisites and pickers. */
export function useAllFlags(project: string) {
  return useQuery({
    queryKey: keys.allFlags(project),
    queryFn: ({ signal }) => api.get<{ items: Flag[] }>(`/api/v1/projects/${enc(project)}/flags${qs({ limit: 500, lifecycle: 'all' })}`, signal).then((r) => r.items),
    staleTime: 60_000,
  });
}

export function useFlag(project: string, flag: string) {
  return useQuery({
    queryKey: keys.flag(project, flag),
    queryFn: ({ signal }) => api.get<FlagDetail>(`/api/v1/projects/${enc(project)}/flags/${enc(flag)}`, signal),
  });
}

export function useSegments(project: string, env: string) {
  return useQuery({
    queryKey: keys.segments(project, env),
    queryFn: ({ signal }) => api.get<{ items: Segment[] }>(`/api/v1/projects/${enc(project)}/environments/${enc(env)}/segments`, signal).then((r) => r.items),
    enabled: !!env,
  });
}

export function useMetrics(project: string, includeArchived = false) {
  return useQuery({
    queryKey: [...keys.metrics(project), includeArchived],
    queryFn: ({ signal }) => api.get<{ items: Metric[] }>(`/api/v1/projects/${enc(project)}/metrics${qs({ include_archived: includeArchived || undefined })}`, signal).then((r) => r.items),
  });
}

export function useExperiments(project: string) {
  return useQuery({
    queryKey: keys.experiments(project),
    queryFn: ({ signal }) => api.get<{ items: Experiment[] }>(`/api/v1/projects/${enc(project)}/experiments`, signal).then((r) => r.items),
  });
}

export function useExperiment(project: string, key: string) {
  return useQuery({
    queryKey: keys.experiment(project, key),
    queryFn: ({ signal }) => api.get<Experiment>(`/api/v1/projects/${enc(project)}/experiments/${enc(key)}`, signal),
  });
}

/** The latest results snapshot; null while the stats service has none yet (404). */
export function useResults(project: string, key: string, enabled = true) {
  return useQuery({
    queryKey: keys.results(project, key),
    queryFn: async ({ signal }) => {
      try {
        return await api.get<Snapshot>(`/stats/v1/projects/${enc(project)}/experiments/${enc(key)}/results`, signal);
      } catch (e) {
        if (isApiError(e) && e.status === 404) return null;
        throw e;
      }
    },
    enabled,
    refetchInterval: 60_000,
  });
}

export function useTimeseries(project: string, key: string, metric: string, enabled = true) {
  return useQuery({
    queryKey: keys.timeseries(project, key, metric),
    queryFn: ({ signal }) =>
      api.get<{ points: TimeseriesPoint[] }>(`/stats/v1/projects/${enc(project)}/experiments/${enc(key)}/timeseries${qs({ metric })}`, signal).then((r) => r.points ?? []),
    enabled: enabled && !!metric,
    staleTime: 60_000,
  });
}

/**
 * The sample-size and duration estimate for a relative effect (0.05 = 5%) on the experiment's
 * primary metric; disabled while effect is null (no valid input to ask about).
 */
export function useEstimate(project: string, key: string, effect: number | null, enabled = true) {
  return useQuery({
    queryKey: keys.estimate(project, key, effect),
    queryFn: ({ signal }) => api.get<Estimate>(`/stats/v1/projects/${enc(project)}/experiments/${enc(key)}/estimate${qs({ effect })}`, signal),
    enabled: enabled && effect !== null,
    // The baseline is 14 days of traffic: it barely moves within a planning session.
    staleTime: 5 * 60_000,
  });
}

export function useGuardrails(project: string, env: string, enabled = true) {
  return useQuery({
    queryKey: keys.guardrails(project, env),
    queryFn: ({ signal }) => api.get<{ items: Guardrail[] }>(`/api/v1/projects/${enc(project)}/environments/${enc(env)}/guardrails`, signal).then((r) => r.items),
    enabled: enabled && !!env,
  });
}

export function useMembers(enabled = true) {
  return useQuery({
    queryKey: keys.members,
    queryFn: ({ signal }) => api.get<{ items: Member[] }>('/api/v1/members', signal).then((r) => r.items),
    enabled,
    staleTime: 5 * 60_000,
    retry: false,
  });
}

/** A user id → display name lookup (members may be hidden from low roles: then ids show). */
export function useMemberNames(): (id?: string) => string {
  const { data } = useMembers();
  return (id?: string) => {
    if (!id) return '—';
    const m = data?.find((x) => x.id === id);
    return m ? m.name || m.email : id.slice(0, 8);
  };
}
