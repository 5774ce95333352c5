// Shapes of the flag service (OpenAPI /api/v1/openapi.json), the experiments contract
// (docs/experiments-api.md) and the stats engine's output (shared/design/STATS.md §11).

export type Role = 'owner' | 'admin' | 'project_admin' | 'developer' | 'viewer';

export interface Actor { type: string; id: string; name: string }
export interface Me {
  organization: { id: string; key: string; name: string };
  actor: Actor;
  role: Role;
  project_ids?: string[];
  /** The token this session signed in with: when it expires (null: never). Never its secret. */
  token?: { expires_at: string | null };
}

export interface Environment {
  id: string; project_id: string; project_key: string; key: string; name: string; color: string;
  critical: boolean; locked: boolean; lock_reason?: string; position: number; ruleset_version: number;
}
export interface Project {
  id: string; key: string; name: string; description: string; environments: Environment[];
}

export type FlagKind = 'boolean' | 'string' | 'number' | 'json';
export interface Variation { key: string; value: unknown; name?: string; description?: string }
export interface Flag {
  id: string; project_id: string; key: string; name: string; description: string; tags: string[];
  owner_id?: string; kind: FlagKind; variations: Variation[]; temporary: boolean; removal_date?: string;
  lifecycle: 'active' | 'deprecated' | 'archived'; client_side: boolean; version: number;
  created_at: string; updated_at: string;
  environments: Record<string, { on: boolean; version: number }>;
}

export type ClauseOp = 'in' | 'contains' | 'starts_with' | 'ends_with' | 'matches' | 'lt' | 'lte' | 'gt' | 'gte'
  | 'semver_eq' | 'semver_lt' | 'semver_gt' | 'before' | 'after' | 'segment_match';
export interface Clause {
  context_kind?: string; attribute?: string; op: ClauseOp; values: (string | number | boolean)[]; negate?: boolean;
}
export interface WeightedVariation { variation: string; weight: number }
export interface Rollout {
  context_kind?: string; bucket_by?: string; salt?: string; experiment_key?: string; variations: WeightedVariation[];
}
export interface Serve { variation?: string; rollout?: Rollout }
export interface Rule { id?: string; description?: string; clauses: Clause[]; serve: Serve }
export interface Target { context_kind: string; variation: string; values: string[] }
export interface Prerequisite { flag: string; variation: string }
export interface FlagConfig {
  on: boolean; off_variation?: string; prerequisites: Prerequisite[]; targets: Target[]; rules: Rule[];
  fallthrough: Serve; salt?: string;
}
export interface FlagEnvironment extends FlagConfig {
  flag_key: string; environment_key: string; version: number; updated_at: string;
}
export interface FlagDetail extends Flag { configs: Record<string, FlagEnvironment> }

export interface ConfigVersion {
  version: number; config: FlagConfig;
  change: 'create' | 'update' | 'toggle' | 'kill' | 'rollback' | 'clone' | 'scheduled' | string;
  comment: string; diff: { op: string; path: string; value?: unknown; from?: string }[];
  actor: Actor; created_at: string;
}

export interface Segment { id: string; key: string; name: string; description: string; version: number }
export interface SDKKey {
  id: string; environment_id: string; kind: 'server' | 'client'; name: string; prefix: string; key?: string;
  expires_at?: string; revoked_at?: string; rotated_from?: string; created_at: string;
}
export interface Member { id: string; email: string; name: string; role: Role; project_ids?: string[]; created_at: string }
export interface APIToken {
  id: string; token_id: string; kind: 'personal' | 'service'; name: string; user_id?: string; role?: Role;
  expires_at?: string; last_used_at?: string; revoked_at?: string; created_at: string; token?: string;
  /** The token this one was created with: revoking that one with cascade revokes this one. */
  created_by_token?: string;
}
export interface AuditEntry {
  id: number; at: string; actor: Actor; action: string; resource_type: string; resource_id: string;
  resource_key: string; project_id?: string; environment_id?: string; before?: unknown; after?: unknown;
  comment?: string; ip?: string; user_agent?: string;
}

// --- experiments, metrics, guardrails (docs/experiments-api.md) ---

export type MetricKind = 'proportion' | 'mean' | 'sum' | 'count' | 'ratio';
export interface MetricFilter { property: string; op: string; values: (string | number | boolean)[] }
export interface Metric {
  key: string; name: string; description: string; kind: MetricKind; event_key?: string;
  numerator?: string; denominator?: string; window: { start: string; end: string };
  filters: MetricFilter[]; winsorize: { type: 'none' | 'absolute' | 'percentile'; lower?: number; upper?: number };
  direction: 'increase' | 'decrease'; min_sample_size: number; cuped_preperiod: string;
  version?: number; archived?: boolean; created_at?: string; updated_at?: string;
}

export type ExperimentStatus = 'draft' | 'running' | 'stopped' | 'concluded';
export interface GuardrailSpec { metric: string; tolerance: number; action: 'alert' | 'rollback' }
export interface Experiment {
  key: string; name: string; hypothesis?: string; owner_id?: string; environment: string; flag: string;
  status: ExperimentStatus; control: string; variations: WeightedVariation[]; salt?: string;
  metrics: { primary: string[]; secondary?: string[]; guardrails?: GuardrailSpec[] };
  analysis: {
    engine: 'frequentist' | 'bayesian'; alpha: number; sided?: string; sequential?: boolean;
    sequential_tuning?: number; cuped?: boolean; correction?: string;
  };
  planned_duration?: string; started_at?: string | null; stopped_at?: string | null; concluded_at?: string | null;
  decision?: { outcome: 'ship' | 'rollback' | 'inconclusive'; variation?: string; rationale?: string; decided_by?: string; decided_at?: string; flag_unchanged?: string } | null;
  metric_versions?: Record<string, number>; version: number; created_at?: string; updated_at?: string;
}

export interface Guardrail {
  id: string; project: string; environment: string; environment_id?: string; flag: string; experiment?: string;
  metric: string; tolerance: number; action: 'alert' | 'rollback'; control?: string; treatments?: string[];
  status: 'active' | 'breached' | 'disabled';
  breach?: { at: string; effect: number; interval: [number | null, number | null]; p_value: number; absolute?: boolean; action_taken?: string } | null;
}

// One arm's result as the stats engine writes it (STATS.md §11).
export interface VariantResult {
  key?: string; variation?: string; n: number; mean: number | null;
  effect?: number | null; ci?: [number | null, number | null] | null; se?: number | null;
  p_value?: number | null; p_value_adjusted?: number | null; ci_adjusted?: [number | null, number | null] | null;
  chance_to_win?: number | null; risk?: { control: number; treatment: number } | null;
  error?: { code: string; message: string } | null;
}

/**
 * One metric's results. The stats service writes the engine's rows directly in `variants`
 * (control first: {key, n, mean}, then treatments with effect, ci, …); the contract's older
 * form (`variants` as {variation, n, mean} plus `analysis.variants`) is read too.
 */
export interface MetricResult {
  metric: string; name?: string; role: 'primary' | 'secondary' | 'guardrail'; kind: MetricKind;
  direction: 'increase' | 'decrease'; metric_version?: number; cuped?: boolean; tolerance?: number;
  mde_at_planned_size?: number | null;
  /** Why the metric has no results in this snapshot (then `variants` is empty). */
  error?: string | null;
  variants: VariantResult[];
  analysis?: { key?: string; variants: VariantResult[]; difference?: 'relative' | 'absolute'; engine?: string } | null;
}

export interface AnalysisSettings {
  engine: 'frequentist' | 'bayesian'; alpha: number; sided?: string; sequential?: boolean; sequential_tuning?: number;
  cuped?: boolean; correction?: string; difference?: 'relative' | 'absolute';
}

export interface Snapshot {
  project?: string; experiment: string; status?: string; computed_at: string; data_from?: string; data_to?: string;
  control?: string; analysis?: AnalysisSettings;
  exposures: Record<string, number>;
  progress?: { elapsed_days: number; planned_days: number; units_per_day: number; remaining_days: number };
  data_quality: {
    srm?: { p_value: number; flagged: boolean; expected?: Record<string, number> };
    multiple_exposures?: { contexts: number; fraction: number; flagged: boolean };
    too_few_units?: (string | { metric?: string; variation?: string; n?: number; minimum?: number })[] | null;
  };
  metrics: MetricResult[];
  /** Set when a refresh after this snapshot failed: these results are not up to date. */
  refresh_error?: { at: string; message: string } | null;
}

/**
 * The stats service's sample-size and duration estimate (GET …/estimate?effect=): the users and
 * days needed to detect a relative `effect` on the first primary metric with `power` (80%),
 * from its baseline on the flag's traffic over the last `lookback_days`.
 */
export interface Estimate {
  metric: string; effect: number; baseline_mean: number; baseline_variance: number; units_per_day: number;
  per_variant_n: number; total_n: number; days: number; planned_days: number;
  /** The smallest relative effect the planned duration detects; null without a planned duration. */
  mde_at_planned_days: number | null;
  power: number; lookback_days: number;
}

export interface TimeseriesPoint {
  computed_at: string; variation: string; effect: number | null; ci_lower: number | null; ci_upper: number | null;
  p_value?: number | null; chance_to_win?: number | null;
}

export interface UsageRow { bucket?: string; time?: string; flag_key?: string; variation_key?: string; variation?: string; evaluations?: number; count?: number }
