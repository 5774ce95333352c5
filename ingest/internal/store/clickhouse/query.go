package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// The queries below are exact in the presence of duplicate rows (an event delivered twice):
// counts of events use uniqExact(event_id) or sum over a GROUP BY event_id subquery, context
// counts use uniqExact, first exposures use argMin/min. They never rely on ReplacingMergeTree
// merges having happened. README.md ("Exact queries") lists the shapes for other readers.

// Interval is the bucket size of a time series.
type Interval string

// Supported intervals.
const (
	IntervalHour Interval = "hour"
	IntervalDay  Interval = "day"
)

func (i Interval) startOf(col string) (string, error) {
	switch i {
	case IntervalHour:
		return "toStartOfHour(" + col + ")", nil
	case IntervalDay, "":
		return "toStartOfDay(" + col + ")", nil
	}
	return "", fmt.Errorf("unknown interval %q (hour, day)", i)
}

// EvaluationCount is the evaluations of one flag variation in one time bucket.
type EvaluationCount struct {
	Bucket       time.Time `json:"bucket"`
	FlagKey      string    `json:"flag_key"`
	VariationKey string    `json:"variation_key"`
	Evaluations  uint64    `json:"evaluations"`
}

// UsageFilter selects an environment, a time range [From, To) and optionally one flag.
type UsageFilter struct {
	EnvironmentID string
	FlagKey       string
	From, To      time.Time
}

// EvaluationCountsQuery is the exact evaluation-count query: one row per summary counter after
// dedup by (event_id, flag, variation, version), then summed per bucket.
const EvaluationCountsQuery = `
SELECT %s AS bucket, flag_key, variation_key, sum(cnt) AS evaluations
FROM (
    SELECT any(window_start) AS ws, flag_key, variation_key, any(count) AS cnt
    FROM evaluation_summaries
    WHERE environment_id = ? AND window_start >= toDateTime(?) AND window_start < toDateTime(?) %s
    GROUP BY event_id, flag_key, variation_key, flag_version
)
GROUP BY bucket, flag_key, variation_key
ORDER BY bucket, flag_key, variation_key`

// usageArgs are the bound parameters of a usage query's environment and time range, and its
// optional flag condition (the text for the %s after the range).
func usageArgs(f UsageFilter) (flagCond string, args []any) {
	args = []any{f.EnvironmentID, f.From.Unix(), f.To.Unix()}
	if f.FlagKey != "" {
		flagCond = "AND flag_key = ?"
		args = append(args, f.FlagKey)
	}
	return flagCond, args
}

// each runs q and calls row for every result row; what names the query in its error.
func each(ctx context.Context, conn driver.Conn, what, q string, args []any, row func(driver.Rows) error) error {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("clickhouse: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// evaluationCounts reads (bucket, flag, variation, evaluations) rows.
func evaluationCounts(ctx context.Context, conn driver.Conn, what, q string, args []any) ([]EvaluationCount, error) {
	out := []EvaluationCount{}
	err := each(ctx, conn, what, q, args, func(rows driver.Rows) error {
		var c EvaluationCount
		if err := rows.Scan(&c.Bucket, &c.FlagKey, &c.VariationKey, &c.Evaluations); err != nil {
			return err
		}
		c.Bucket = c.Bucket.UTC()
		out = append(out, c)
		return nil
	})
	return out, err
}

// EvaluationCounts returns evaluation counts per flag x variation per bucket, exact (deduplicated
// by event_id), from the evaluation summaries.
func EvaluationCounts(ctx context.Context, conn driver.Conn, f UsageFilter, interval Interval) ([]EvaluationCount, error) {
	bucket, err := interval.startOf("ws")
	if err != nil {
		return nil, err
	}
	flag, args := usageArgs(f)
	return evaluationCounts(ctx, conn, "evaluation counts", fmt.Sprintf(EvaluationCountsQuery, bucket, flag), args)
}

// DailyRollup reads the evaluation_counts_daily materialized view: cheap, but a summary that was
// delivered twice is counted twice there (see migrations/00002).
func DailyRollup(ctx context.Context, conn driver.Conn, f UsageFilter) ([]EvaluationCount, error) {
	q := `SELECT toDateTime(day) AS bucket, flag_key, variation_key, sum(evaluations)
FROM evaluation_counts_daily
WHERE environment_id = ? AND day >= toDate(toDateTime(?)) AND day < toDate(toDateTime(?)) %s
GROUP BY bucket, flag_key, variation_key ORDER BY bucket, flag_key, variation_key`
	flag, args := usageArgs(f)
	return evaluationCounts(ctx, conn, "daily rollup", fmt.Sprintf(q, flag), args)
}

// VariationContexts is the unique contexts and exposures of one flag variation.
type VariationContexts struct {
	FlagKey      string `json:"flag_key"`
	VariationKey string `json:"variation_key"`
	Contexts     uint64 `json:"contexts"`
	Exposures    uint64 `json:"exposures"`
}

// ContextsPerVariation counts distinct contexts (kind, key) and distinct exposure events per
// flag x variation in the range; both are exact with duplicate rows.
func ContextsPerVariation(ctx context.Context, conn driver.Conn, f UsageFilter) ([]VariationContexts, error) {
	q := `SELECT flag_key, variation_key, uniqExact(context_kind, context_key), uniqExact(event_id)
FROM exposures
WHERE environment_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) %s
GROUP BY flag_key, variation_key ORDER BY flag_key, variation_key`
	flag, args := usageArgs(f)
	out := []VariationContexts{}
	err := each(ctx, conn, "contexts per variation", fmt.Sprintf(q, flag), args, func(rows driver.Rows) error {
		var v VariationContexts
		if err := rows.Scan(&v.FlagKey, &v.VariationKey, &v.Contexts, &v.Exposures); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// MonthlyActive is the distinct contexts seen (exposures or tracks) in one month.
type MonthlyActive struct {
	Month    string `json:"month"` // YYYY-MM
	Contexts uint64 `json:"active_contexts"`
}

// MonthlyActiveContexts reads active_contexts_monthly for the months from..to (inclusive).
func MonthlyActiveContexts(ctx context.Context, conn driver.Conn, env string, from, to time.Time) ([]MonthlyActive, error) {
	q := `SELECT toString(toYYYYMM(month)), uniqExactMerge(contexts)
FROM active_contexts_monthly
WHERE environment_id = ? AND month >= toStartOfMonth(toDate(toDateTime(?))) AND month <= toStartOfMonth(toDate(toDateTime(?)))
GROUP BY month ORDER BY month`
	out := []MonthlyActive{}
	err := each(ctx, conn, "monthly active contexts", q, []any{env, from.Unix(), to.Unix()}, func(rows driver.Rows) error {
		var m MonthlyActive
		if err := rows.Scan(&m.Month, &m.Contexts); err != nil {
			return err
		}
		if len(m.Month) == 6 {
			m.Month = m.Month[:4] + "-" + m.Month[4:]
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// ExportFilter selects the rows of an export: an environment, a time range [From, To), and
// optionally an experiment (exposures), a flag (exposures) or an event key (tracks).
type ExportFilter struct {
	EnvironmentID string
	From, To      time.Time
	ExperimentKey string
	FlagKey       string
	EventKey      string
}

// ExposureRow is one exported exposure.
type ExposureRow struct {
	EventID       uuid.UUID
	TimestampMS   uint64
	ReceivedAt    time.Time
	Clamped       uint8
	ContextKind   string
	ContextKey    string
	FlagKey       string
	VariationKey  string
	FlagVersion   uint64
	Reason        string
	RuleID        string
	ExperimentKey string
	SDKName       string
	SDKVersion    string
}

// ExportExposures streams the deduplicated exposures matching f to fn, one row at a time
// (LIMIT 1 BY event_id drops duplicates server-side).
func ExportExposures(ctx context.Context, conn driver.Conn, f ExportFilter, fn func(*ExposureRow) error) error {
	q := `SELECT event_id, timestamp_ms, received_at, clamped, context_kind, context_key, flag_key, variation_key,
       flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version
FROM exposures
WHERE environment_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)`
	args := []any{f.EnvironmentID, f.From.Unix(), f.To.Unix()}
	if f.ExperimentKey != "" {
		q += " AND experiment_key = ?"
		args = append(args, f.ExperimentKey)
	}
	if f.FlagKey != "" {
		q += " AND flag_key = ?"
		args = append(args, f.FlagKey)
	}
	q += " LIMIT 1 BY event_id"
	var r ExposureRow
	return each(ctx, conn, "export exposures", q, args, func(rows driver.Rows) error {
		if err := rows.Scan(&r.EventID, &r.TimestampMS, &r.ReceivedAt, &r.Clamped, &r.ContextKind, &r.ContextKey, &r.FlagKey,
			&r.VariationKey, &r.FlagVersion, &r.Reason, &r.RuleID, &r.ExperimentKey, &r.SDKName, &r.SDKVersion); err != nil {
			return err
		}
		return fn(&r)
	})
}

// TrackRow is one exported track event.
type TrackRow struct {
	EventID     uuid.UUID
	TimestampMS uint64
	ReceivedAt  time.Time
	Clamped     uint8
	ContextKind string
	ContextKey  string
	EventKey    string
	Value       float64
	HasValue    uint8
	PropKeys    []string
	PropTypes   []string
	PropValues  []string
	SDKName     string
	SDKVersion  string
}

// tracksWindowSQL keeps the tracks in [from, to) (tracksWindowArgs). The day bounds repeat the
// timestamp's: tracks is sorted by day (migration 6), and 18.16 uses that part of its index
// only for conditions on toDate(timestamp).
const tracksWindowSQL = `timestamp >= toDateTime(?) AND timestamp < toDateTime(?)
  AND toDate(timestamp) >= toDate(toDateTime(?)) AND toDate(timestamp) <= toDate(toDateTime(?))`

// tracksWindowArgs are tracksWindowSQL's parameters. The last day is the one of the last whole
// second before to (a day's window [d, d+1) would otherwise read the whole of d+1 too).
func tracksWindowArgs(from, to time.Time) []any {
	return []any{from.Unix(), to.Unix(), from.Unix(), to.Unix() - 1}
}

// ExportTracks streams the deduplicated track events matching f to fn.
func ExportTracks(ctx context.Context, conn driver.Conn, f ExportFilter, fn func(*TrackRow) error) error {
	q := `SELECT event_id, timestamp_ms, received_at, clamped, context_kind, context_key, event_key, value, has_value,
       properties.key, properties.type, properties.value, sdk_name, sdk_version
FROM tracks
WHERE environment_id = ? AND ` + tracksWindowSQL
	args := append([]any{f.EnvironmentID}, tracksWindowArgs(f.From, f.To)...)
	if f.EventKey != "" {
		q += " AND event_key = ?"
		args = append(args, f.EventKey)
	}
	if f.ExperimentKey != "" {
		// Tracks of the contexts exposed to the experiment (any time in the range).
		q += " AND (context_kind, context_key) IN (SELECT context_kind, context_key FROM experiment_units WHERE environment_id = ? AND experiment_key = ?)"
		args = append(args, f.EnvironmentID, f.ExperimentKey)
	}
	q += " LIMIT 1 BY event_id"
	var r TrackRow
	return each(ctx, conn, "export tracks", q, args, func(rows driver.Rows) error {
		if err := rows.Scan(&r.EventID, &r.TimestampMS, &r.ReceivedAt, &r.Clamped, &r.ContextKind, &r.ContextKey, &r.EventKey,
			&r.Value, &r.HasValue, &r.PropKeys, &r.PropTypes, &r.PropValues, &r.SDKName, &r.SDKVersion); err != nil {
			return err
		}
		return fn(&r)
	})
}
