package metricsql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The rollup table, experiment_metric_rollups, is created by ingest's ClickHouse migrations
// (00004_experiment_metric_rollups.sql): one row per experiment x metric version x part x day x
// fold x context. Every fold writes under a fresh fold id; the caller records the id of the one
// fold of each day that counts (the stats workers in Postgres) and passes the recorded ids in
// Snapshot.Folds. Rows of any other fold of the day (a repeated fold after a crash between the
// insert and the record, or a fold interrupted half-way) are never read, so folding is
// idempotent without deduplication on read (no FINAL).

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

// FoldDay writes a metric's per-context totals of the events of one UTC day (conversion
// window part) into the rollup and returns the fold's id. Contexts count whatever cohort they
// belong to.
func FoldDay(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, day time.Time) (int64, error) {
	day = Day(day)
	return fold(ctx, conn, x, m, PartMetric, day, day, day.Add(24*time.Hour), 0, 0)
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
	return fold(ctx, conn, x, m, PartCovariate, cohort, cohort.Add(-m.CUPEDPreperiod), next, cohort.UnixMilli(), next.UnixMilli())
}

func fold(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, part int, day, from, to time.Time, cohortFrom, cohortTo int64) (int64, error) {
	if m.Kind == Ratio {
		return 0, fmt.Errorf("metricsql: fold the parts of ratio %q, not the ratio", m.Key)
	}
	if x.rollout() {
		return 0, fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	id := newID()
	var a args
	head := `INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT ` + a.add(x.EnvironmentID) + `, ` + a.add(x.Key) + `, ` + a.add(m.Key) + `, toUInt64(` + a.add(m.Version) + `), toUInt8(` +
		a.add(part) + `), toDate(toDateTime(` + a.add(day.Unix()) + `)), toUInt64(` + a.add(id) + `), context_kind, context_key, events, value_sum FROM (`
	raw, err := rawSQL(x, m, part, from, to, cohortFrom, cohortTo, &a)
	if err != nil {
		return 0, err
	}
	if err := conn.Exec(ctx, head+raw+`)`, a...); err != nil {
		return 0, fmt.Errorf("metricsql: fold %s part %d %s: %w", m.Key, part, day.Format(time.DateOnly), err)
	}
	return id, nil
}
