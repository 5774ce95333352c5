package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// --- metrics ---

const metricColumns = `m.key, m.definition, m.version, m.archived, m.created_at, m.updated_at`

func scanMetric(row pgx.Row) (domain.Metric, string, error) {
	var m domain.Metric
	var def []byte
	var key string
	var id string
	if err := row.Scan(&id, &key, &def, &m.Version, &m.Archived, &m.CreatedAt, &m.UpdatedAt); err != nil {
		return m, "", err
	}
	version, archived, created, updated := m.Version, m.Archived, m.CreatedAt, m.UpdatedAt
	if err := json.Unmarshal(def, &m); err != nil {
		return m, "", err
	}
	m.Key, m.Version, m.Archived, m.CreatedAt, m.UpdatedAt = key, version, archived, created, updated
	return m, id, nil
}

func metricJSON(m domain.Metric) []byte {
	m.Version, m.Archived = 0, false
	b, _ := json.Marshal(m)
	return b
}

// InsertMetric inserts a metric at version 1 with its first history entry.
func (t *Tx) InsertMetric(ctx context.Context, projectID string, m domain.Metric, actor domain.Actor) (domain.Metric, error) {
	out, id, err := scanMetric(t.q().QueryRow(ctx, `INSERT INTO metrics AS m (project_id, key, definition) VALUES ($1, $2, $3)
		RETURNING m.id, `+metricColumns, projectID, m.Key, metricJSON(m)))
	if err != nil {
		return out, err
	}
	return out, t.insertMetricVersion(ctx, id, out, actor)
}

func (t *Tx) insertMetricVersion(ctx context.Context, id string, m domain.Metric, actor domain.Actor) error {
	_, err := t.q().Exec(ctx, `INSERT INTO metric_versions (metric_id, version, definition, actor_type, actor_id, actor_name)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, m.Version, metricJSON(m), actor.Type, actor.ID, actor.Name)
	return err
}

// MetricByKey returns a project's metric; forUpdate locks it.
func (t *Tx) MetricByKey(ctx context.Context, projectID, key string, forUpdate bool) (domain.Metric, string, error) {
	q := `SELECT m.id, ` + metricColumns + ` FROM metrics m WHERE m.project_id = $1 AND m.key = $2`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	m, id, err := scanMetric(t.q().QueryRow(ctx, q, projectID, key))
	return m, id, notFound(err, "metric %q not found", key)
}

// ListMetrics lists a project's metrics by key.
func (t *Tx) ListMetrics(ctx context.Context, projectID string, includeArchived bool) ([]domain.Metric, error) {
	rows, err := t.q().Query(ctx, `SELECT m.id, `+metricColumns+` FROM metrics m WHERE m.project_id = $1 AND ($2 OR NOT m.archived)
		ORDER BY m.key`, projectID, includeArchived)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Metric, error) {
		m, _, err := scanMetric(r)
		return m, err
	})
}

// UpdateMetric saves a metric as its next version, with a history entry.
func (t *Tx) UpdateMetric(ctx context.Context, id string, m domain.Metric, actor domain.Actor) (domain.Metric, error) {
	out, _, err := scanMetric(t.q().QueryRow(ctx, `UPDATE metrics AS m SET definition = $2, archived = $3, version = version + 1,
		updated_at = now() WHERE m.id = $1 RETURNING m.id, `+metricColumns, id, metricJSON(m), m.Archived))
	if err != nil {
		return out, err
	}
	return out, t.insertMetricVersion(ctx, id, out, actor)
}

// MetricVersion is one historical definition.
type MetricVersion struct {
	Version    int64         `json:"version"`
	Definition domain.Metric `json:"definition"`
	Actor      domain.Actor  `json:"actor"`
	CreatedAt  string        `json:"created_at"`
}

// MetricVersions lists a metric's history, newest first.
func (t *Tx) MetricVersions(ctx context.Context, id string) ([]MetricVersion, error) {
	rows, err := t.q().Query(ctx, `SELECT version, definition, actor_type, actor_id, actor_name, to_char(created_at AT TIME ZONE 'UTC',
		'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM metric_versions WHERE metric_id = $1 ORDER BY version DESC`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MetricVersion, error) {
		var v MetricVersion
		var def []byte
		if err := r.Scan(&v.Version, &def, &v.Actor.Type, &v.Actor.ID, &v.Actor.Name, &v.CreatedAt); err != nil {
			return v, err
		}
		err := json.Unmarshal(def, &v.Definition)
		v.Definition.Version = v.Version
		return v, err
	})
}

// --- experiments ---

// experimentDefinition is what the definition column holds.
type experimentDefinition struct {
	Name            string                   `json:"name"`
	Hypothesis      string                   `json:"hypothesis"`
	OwnerID         string                   `json:"owner_id,omitempty"`
	Control         string                   `json:"control"`
	Variations      json.RawMessage          `json:"variations"`
	ContextKind     string                   `json:"context_kind"`
	Salt            string                   `json:"salt"`
	Metrics         domain.ExperimentMetrics `json:"metrics"`
	Analysis        domain.Analysis          `json:"analysis"`
	PlannedDuration domain.Duration          `json:"planned_duration"`
}

func experimentJSON(x *domain.Experiment) []byte {
	vars, _ := json.Marshal(x.Variations)
	b, _ := json.Marshal(experimentDefinition{Name: x.Name, Hypothesis: x.Hypothesis, OwnerID: x.OwnerID, Control: x.Control,
		Variations: vars, ContextKind: x.ContextKind, Salt: x.Salt, Metrics: x.Metrics, Analysis: x.Analysis, PlannedDuration: x.PlannedDuration})
	return b
}

const experimentColumns = `x.id, x.key, p.key, e.key, e.id, f.key, x.status, x.definition, x.metric_versions, x.decision,
	x.started_at, x.stopped_at, x.concluded_at, x.version, x.created_at, x.updated_at`

const experimentFrom = ` FROM experiments x JOIN projects p ON p.id = x.project_id JOIN environments e ON e.id = x.environment_id
	JOIN flags f ON f.id = x.flag_id `

func scanExperiment(row pgx.Row) (domain.Experiment, error) {
	var x domain.Experiment
	var def, versions, decision []byte
	if err := row.Scan(&x.ID, &x.Key, &x.Project, &x.Environment, &x.EnvironmentID, &x.Flag, &x.Status, &def, &versions, &decision,
		&x.StartedAt, &x.StoppedAt, &x.ConcludedAt, &x.Version, &x.CreatedAt, &x.UpdatedAt); err != nil {
		return x, err
	}
	var d experimentDefinition
	if err := json.Unmarshal(def, &d); err != nil {
		return x, err
	}
	x.Name, x.Hypothesis, x.OwnerID, x.Control, x.ContextKind, x.Salt = d.Name, d.Hypothesis, d.OwnerID, d.Control, d.ContextKind, d.Salt
	x.Metrics, x.Analysis, x.PlannedDuration = d.Metrics, d.Analysis, d.PlannedDuration
	if err := json.Unmarshal(d.Variations, &x.Variations); err != nil {
		return x, err
	}
	if err := json.Unmarshal(versions, &x.MetricVersions); err != nil {
		return x, err
	}
	if len(decision) > 0 {
		x.Decision = &domain.Decision{}
		if err := json.Unmarshal(decision, x.Decision); err != nil {
			return x, err
		}
	}
	return x, nil
}

// InsertExperiment inserts a draft experiment.
func (t *Tx) InsertExperiment(ctx context.Context, projectID, envID, flagID string, x *domain.Experiment) (domain.Experiment, error) {
	var id string
	if err := t.q().QueryRow(ctx, `INSERT INTO experiments (project_id, environment_id, flag_id, key, definition) VALUES ($1, $2, $3, $4, $5)
		RETURNING id`, projectID, envID, flagID, x.Key, experimentJSON(x)).Scan(&id); err != nil {
		return domain.Experiment{}, err
	}
	return t.ExperimentByID(ctx, id, false)
}

// ExperimentByID returns an experiment; forUpdate locks it.
func (t *Tx) ExperimentByID(ctx context.Context, id string, forUpdate bool) (domain.Experiment, error) {
	q := `SELECT ` + experimentColumns + experimentFrom + `WHERE x.id = $1`
	if forUpdate {
		q += ` FOR UPDATE OF x`
	}
	x, err := scanExperiment(t.q().QueryRow(ctx, q, id))
	return x, notFound(err, "experiment not found")
}

// ExperimentByKey returns a project's experiment; forUpdate locks it.
func (t *Tx) ExperimentByKey(ctx context.Context, projectID, key string, forUpdate bool) (domain.Experiment, error) {
	q := `SELECT ` + experimentColumns + experimentFrom + `WHERE x.project_id = $1 AND x.key = $2`
	if forUpdate {
		q += ` FOR UPDATE OF x`
	}
	x, err := scanExperiment(t.q().QueryRow(ctx, q, projectID, key))
	return x, notFound(err, "experiment %q not found", key)
}

// ExperimentWithSalt returns the key of a project's experiment that uses salt ("" if none).
// It first takes a transaction lock on the project and salt, so two transactions inserting
// the same salt run one after the other and the second sees the first.
func (t *Tx) ExperimentWithSalt(ctx context.Context, projectID, salt string) (string, error) {
	if _, err := t.q().Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('experiment-salt/' || $1 || '/' || $2, 0))`,
		projectID, salt); err != nil {
		return "", err
	}
	var key string
	err := t.q().QueryRow(ctx, `SELECT key FROM experiments WHERE project_id = $1 AND definition->>'salt' = $2 ORDER BY created_at LIMIT 1`,
		projectID, salt).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return key, err
}

// ExperimentFilter selects experiments.
type ExperimentFilter struct {
	OrgID, ProjectID, EnvironmentID, FlagID, Status string
	// StoppedAfter, when set, keeps the experiments stopped at or after it (index experiments_stopped_at).
	StoppedAfter *time.Time
}

// ListExperiments lists experiments, newest first.
func (t *Tx) ListExperiments(ctx context.Context, f ExperimentFilter) ([]domain.Experiment, error) {
	var w conditions
	w.eq("p.org_id", f.OrgID, "::uuid")
	w.eq("x.project_id", f.ProjectID, "::uuid")
	w.eq("x.environment_id", f.EnvironmentID, "::uuid")
	w.eq("x.flag_id", f.FlagID, "::uuid")
	w.eq("x.status", f.Status, "")
	if f.StoppedAfter != nil {
		w.args = append(w.args, *f.StoppedAfter)
		w.parts = append(w.parts, fmt.Sprintf("x.stopped_at >= $%d", len(w.args)))
	}
	rows, err := t.q().Query(ctx, `SELECT `+experimentColumns+experimentFrom+`WHERE `+w.sql()+` ORDER BY x.created_at DESC, x.id`, w.args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Experiment, error) { return scanExperiment(r) })
}

// SaveExperiment writes an experiment's definition, status, dates, decision and metric versions
// as its next version.
func (t *Tx) SaveExperiment(ctx context.Context, x *domain.Experiment) (domain.Experiment, error) {
	versions, _ := json.Marshal(x.MetricVersions)
	var decision []byte
	if x.Decision != nil {
		decision, _ = json.Marshal(x.Decision)
	}
	if _, err := t.q().Exec(ctx, `UPDATE experiments SET definition = $2, status = $3, metric_versions = $4, decision = $5,
		started_at = $6, stopped_at = $7, concluded_at = $8, version = version + 1, updated_at = now() WHERE id = $1`,
		x.ID, experimentJSON(x), x.Status, versions, decision, x.StartedAt, x.StoppedAt, x.ConcludedAt); err != nil {
		return domain.Experiment{}, err
	}
	return t.ExperimentByID(ctx, x.ID, false)
}

// DeleteExperiment deletes an experiment.
func (t *Tx) DeleteExperiment(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `DELETE FROM experiments WHERE id = $1`, id)
	return err
}

// --- guardrails ---

const guardrailColumns = `g.id, p.key, p.id, e.key, e.id, f.key, coalesce(x.key, ''), g.metric_key, g.tolerance, g.action, g.control,
	g.treatments, g.status, g.breach, g.created_at, g.updated_at`

const guardrailFrom = ` FROM guardrails g JOIN projects p ON p.id = g.project_id JOIN environments e ON e.id = g.environment_id
	JOIN flags f ON f.id = g.flag_id LEFT JOIN experiments x ON x.id = g.experiment_id `

func scanGuardrail(row pgx.Row) (domain.Guardrail, error) {
	var g domain.Guardrail
	var breach []byte
	if err := row.Scan(&g.ID, &g.Project, &g.ProjectID, &g.Environment, &g.EnvironmentID, &g.Flag, &g.Experiment, &g.Metric,
		&g.Tolerance, &g.Action, &g.Control, &g.Treatments, &g.Status, &breach, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return g, err
	}
	if len(breach) > 0 {
		g.Breach = &domain.Breach{}
		return g, json.Unmarshal(breach, g.Breach)
	}
	return g, nil
}

// InsertGuardrail inserts an active guardrail.
func (t *Tx) InsertGuardrail(ctx context.Context, projectID, envID, flagID, experimentID string, g domain.Guardrail) (domain.Guardrail, error) {
	var id string
	if err := t.q().QueryRow(ctx, `INSERT INTO guardrails (project_id, environment_id, flag_id, experiment_id, metric_key, tolerance,
		action, control, treatments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`, projectID, envID, flagID,
		nullable(experimentID), g.Metric, g.Tolerance, g.Action, g.Control, g.Treatments).Scan(&id); err != nil {
		return g, err
	}
	return t.GuardrailByID(ctx, id, false)
}

// GuardrailByID returns a guardrail; forUpdate locks it.
func (t *Tx) GuardrailByID(ctx context.Context, id string, forUpdate bool) (domain.Guardrail, error) {
	q := `SELECT ` + guardrailColumns + guardrailFrom + `WHERE g.id = $1`
	if forUpdate {
		q += ` FOR UPDATE OF g`
	}
	g, err := scanGuardrail(t.q().QueryRow(ctx, q, id))
	return g, notFound(err, "guardrail not found")
}

// GuardrailFilter selects guardrails.
type GuardrailFilter struct {
	OrgID, ProjectID, EnvironmentID, FlagID, ExperimentID, Status string
	// Plain keeps only the guardrails declared on a plain percentage rollout (not an experiment's).
	Plain bool
}

// ListGuardrails lists guardrails, oldest first.
func (t *Tx) ListGuardrails(ctx context.Context, f GuardrailFilter) ([]domain.Guardrail, error) {
	var w conditions
	w.eq("p.org_id", f.OrgID, "::uuid")
	w.eq("g.project_id", f.ProjectID, "::uuid")
	w.eq("g.environment_id", f.EnvironmentID, "::uuid")
	w.eq("g.flag_id", f.FlagID, "::uuid")
	w.eq("g.experiment_id", f.ExperimentID, "::uuid")
	w.eq("g.status", f.Status, "")
	if f.Plain {
		w.parts = append(w.parts, "g.experiment_id IS NULL")
	}
	rows, err := t.q().Query(ctx, `SELECT `+guardrailColumns+guardrailFrom+`WHERE `+w.sql()+` ORDER BY g.created_at, g.id`, w.args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Guardrail, error) { return scanGuardrail(r) })
}

// SetGuardrailStatus sets a guardrail's status (and breach).
func (t *Tx) SetGuardrailStatus(ctx context.Context, id, status string, breach *domain.Breach) error {
	var b []byte
	if breach != nil {
		b, _ = json.Marshal(breach)
	}
	_, err := t.q().Exec(ctx, `UPDATE guardrails SET status = $2, breach = coalesce($3, breach), updated_at = now() WHERE id = $1`, id, status, b)
	return err
}

// DisableExperimentGuardrails disables an experiment's active guardrails.
func (t *Tx) DisableExperimentGuardrails(ctx context.Context, experimentID string) error {
	_, err := t.q().Exec(ctx, `UPDATE guardrails SET status = 'disabled', updated_at = now() WHERE experiment_id = $1 AND status = 'active'`, experimentID)
	return err
}

// conditions builds a WHERE clause of equalities on optional filters, with bound parameters.
type conditions struct {
	parts []string
	args  []any
}

// eq adds "column = $n" (with a cast suffix) when value is set.
func (c *conditions) eq(column, value, cast string) {
	if value == "" {
		return
	}
	c.args = append(c.args, value)
	c.parts = append(c.parts, fmt.Sprintf("%s = $%d%s", column, len(c.args), cast))
}

func (c *conditions) sql() string {
	if len(c.parts) == 0 {
		return "true"
	}
	return strings.Join(c.parts, " AND ")
}
