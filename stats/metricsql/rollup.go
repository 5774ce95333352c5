package metricsql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The rollup table, experiment_metric_rollups, is created by ingest's ClickHouse migrations
// (00004_experiment_metric_rollups.sql, sorted by fold and hash bucket since migration 7):
// one row per experiment x metric version x part x day x fold x context. Every fold writes
// under a fresh fold id; the caller records the id of the one fold of each day that counts
// (the stats workers in Postgres) and passes the recorded ids in Snapshot.Folds. Rows of any
// other fold of the day (a repeated fold after a crash between the insert and the record, or a
// fold interrupted half-way) are never read, so folding is idempotent without deduplication on
// read (no FINAL).

// FoldKey names one part of a metric's rollups.
type FoldKey struct {
	Metric  string
	Version int64
	Part    int
}

// Folds are the recorded fold ids of each metric part's folded days.
type Folds map[FoldKey][]int64

// Add records a fold.
func (f Folds) Add(m *Metric, part int, id int64) {
	k := FoldKey{m.Key, m.Version, part}
	f[k] = append(f[k], id)
}

// newID is a fold or units snapshot id: random, and positive so it fits Postgres' bigint as is.
func newID() int64 { return rand.Int64N(1<<63-1) + 1 }

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// rollupInsert starts a fold's INSERT … SELECT; the select list follows, in the columns' order.
const rollupInsert = `INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT `

// FoldDay writes a metric's per-context totals of the events of one UTC day (conversion
// window part) into the rollup and returns the fold's id. Contexts count whatever cohort they
// belong to.
func FoldDay(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, day time.Time) (int64, error) {
	ids, err := FoldDays(ctx, conn, x, []*Metric{m}, day)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// FoldDays is FoldDay for several metrics in one query: the day's events of all of them are
// read, deduplicated and joined with the units once (rawPartsSQL). Each metric's rows get a
// fold id of their own, returned in the order of ms, so each is recorded as if folded alone.
func FoldDays(ctx context.Context, conn driver.Conn, x Experiment, ms []*Metric, day time.Time) ([]int64, error) {
	if x.rollout() {
		return nil, fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	day = Day(day)
	ids := make([]int64, len(ms))
	parts := make([]rawPart, len(ms))
	keys := make([]any, len(ms))
	var a args
	for i, m := range ms {
		if m.Kind == Ratio {
			return nil, fmt.Errorf("metricsql: fold the parts of ratio %q, not the ratio", m.Key)
		}
		ids[i], parts[i], keys[i] = newID(), rawPart{m, i + 1}, m.Key
	}
	// Each row's metric, version and fold id are picked by its src (1-based, like arrays).
	versions, folds := make([]string, len(ms)), make([]string, len(ms))
	q := rollupInsert + a.add(x.EnvironmentID) + `, ` + a.add(x.Key) + `, [` + placeholders(keys, &a) + `][src], [`
	for i, m := range ms {
		versions[i] = "toUInt64(" + a.add(m.Version) + ")"
	}
	q += strings.Join(versions, ", ") + `][src], toUInt8(` + a.add(PartMetric) + `), toDate(toDateTime(` + a.add(day.Unix()) + `)), [`
	for i, id := range ids {
		folds[i] = "toUInt64(" + a.add(uint64(id)) + ")"
	}
	q += strings.Join(folds, ", ") + `][src], context_kind, context_key, events, value_sum FROM (`
	raw, err := rawPartsSQL(x, parts, day, day.Add(24*time.Hour), false, &a)
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, q+raw+`)`, a...); err != nil {
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = m.Key
		}
		return nil, fmt.Errorf("metricsql: fold %s %s: %w", strings.Join(names, ", "), day.Format(time.DateOnly), err)
	}
	return ids, nil
}

// FoldCovariates writes the CUPED pre-exposure totals of the units whose first exposure fell
// on one UTC day (their cohort): their events in [first exposure - pre-period, first exposure).
// It returns the fold's id.
func FoldCovariates(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, cohort time.Time) (int64, error) {
	if m.CUPEDPreperiod <= 0 {
		return 0, fmt.Errorf("metricsql: metric %q has no CUPED pre-period to fold", m.Key)
	}
	cohort = Day(cohort)
	next := cohort.Add(24 * time.Hour)
	if m.Kind == Ratio {
		return 0, fmt.Errorf("metricsql: fold the parts of ratio %q, not the ratio", m.Key)
	}
	if x.rollout() {
		return 0, fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	id := newID()
	var a args
	head := rollupInsert + a.add(x.EnvironmentID) + `, ` + a.add(x.Key) + `, ` + a.add(m.Key) + `, toUInt64(` + a.add(m.Version) + `), toUInt8(` +
		a.add(PartCovariate) + `), toDate(toDateTime(` + a.add(cohort.Unix()) + `)), toUInt64(` + a.add(id) + `), context_kind, context_key, events, value_sum FROM (`
	raw, err := rawSQL(x, m, PartCovariate, cohort.Add(-m.CUPEDPreperiod), next, cohort.UnixMilli(), next.UnixMilli(), &a)
	if err != nil {
		return 0, err
	}
	if err := conn.Exec(ctx, head+raw+`)`, a...); err != nil {
		return 0, fmt.Errorf("metricsql: fold the covariates of %s for the cohort of %s: %w", m.Key, cohort.Format(time.DateOnly), err)
	}
	return id, nil
}
