package metricsql

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The rollup table, experiment_metric_days, is created by ingest's ClickHouse migrations
// (00003_experiment_rollups.sql): one row per experiment x metric version x part x context x
// day; refolding a day writes identical keys, which ReplacingMergeTree collapses (reads use
// FINAL), so folding is idempotent.

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// FoldDay writes a metric's per-context totals of the events of one UTC day (conversion
// window part) into the rollup. Contexts count whatever cohort they belong to.
func FoldDay(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, day time.Time) error {
	day = Day(day)
	return fold(ctx, conn, x, m, PartMetric, day, day, day.Add(24*time.Hour), 0, 0)
}

// FoldCovariates writes the CUPED pre-exposure totals of the units whose first exposure fell
// on one UTC day (their cohort): their events in [first exposure - pre-period, first exposure).
func FoldCovariates(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, cohort time.Time) error {
	if m.CUPEDPreperiod <= 0 {
		return nil
	}
	cohort = Day(cohort)
	next := cohort.Add(24 * time.Hour)
	return fold(ctx, conn, x, m, PartCovariate, cohort, cohort.Add(-m.CUPEDPreperiod), next, cohort.UnixMilli(), next.UnixMilli())
}

func fold(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, part int, day, from, to time.Time, cohortFrom, cohortTo int64) error {
	if m.Kind == Ratio {
		return fmt.Errorf("metricsql: fold the parts of ratio %q, not the ratio", m.Key)
	}
	if x.rollout() {
		return fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	var a args
	head := `INSERT INTO experiment_metric_days (environment_id, experiment_key, metric_key, metric_version, part, context_kind,
		context_key, day, events, value_sum, folded_at)
		SELECT ` + a.add(x.EnvironmentID) + `, ` + a.add(x.Key) + `, ` + a.add(m.Key) + `, toUInt64(` + a.add(m.Version) + `), toUInt8(` +
		a.add(part) + `), context_kind, context_key, toDate(toDateTime(` + a.add(day.Unix()) + `)), events, value_sum, now() FROM (`
	raw, err := rawSQL(x, m, part, from, to, cohortFrom, cohortTo, &a)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, head+raw+`)`, a...); err != nil {
		return fmt.Errorf("metricsql: fold %s part %d %s: %w", m.Key, part, day.Format(time.DateOnly), err)
	}
	return nil
}
