package results

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// TestMetricAddedAfterTheRawEventsWentFails: once the raw-event retention has deleted the month
// of an experiment's first day, a metric added to it afterwards (never folded for its first
// day) gets an error in the snapshot instead of results that count those days as empty; the
// metrics folded before the deletion are computed from their rollups as before.
func TestMetricAddedAfterTheRawEventsWentFails(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	conn, w, x := f.conn, f.w, f.x
	now := f.start.Add(60 * time.Hour)
	w.now = func() time.Time { return now }
	if _, err := w.Compute(ctx, x); err != nil {
		t.Fatal(err)
	}
	first := metricsql.Day(f.start)
	if gone, err := metricsql.RawEventsGone(ctx, conn, first); err != nil || gone {
		t.Fatalf("raw events gone before any retention: %v (%v)", gone, err)
	}

	// The retention drops the months of the fixture's events (a later month is kept).
	months := partitionsOf(t, f, "tracks")
	later := now.AddDate(0, 3, 0)
	insertLateTrack(t, conn, f.start, now, later, later, 1)
	for _, m := range months {
		if err := conn.Exec(ctx, "ALTER TABLE tracks DROP PARTITION "+m); err != nil {
			t.Fatal(err)
		}
	}
	if gone, err := metricsql.RawEventsGone(ctx, conn, first); err != nil || !gone {
		t.Fatalf("raw events of the first day's month dropped, but gone %v (%v)", gone, err)
	}

	// A metric added now, and the two folded before.
	load := w.defs.Load
	w.defs = &metricsql.Definitions{Load: func(ctx context.Context, project, key string, version int64) (metricsql.Definition, error) {
		if key == "checkout" {
			d := metricsql.Definition{Key: "checkout", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1}
			d.Window.Start, d.Window.End = "0s", "168h"
			return d, nil
		}
		return load(ctx, project, key, version)
	}}
	x.Metrics.Secondary = []string{"checkout"}
	x.MetricVersions = map[string]int64{"conversion": 1, "revenue": 3, "checkout": 1}
	now = now.Add(time.Hour)
	snap, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]MetricResult{}
	for _, m := range snap.Metrics {
		byKey[m.Metric] = m
	}
	for _, k := range []string{"conversion", "revenue"} {
		if m := byKey[k]; m.Error != "" || len(m.Variants) != 2 || m.Variants[0].N == 0 {
			t.Fatalf("%s, folded before the raw events went: %+v", k, m)
		}
	}
	if m := byKey["checkout"]; !strings.Contains(m.Error, "raw-event retention") || len(m.Variants) != 0 || m.Role != "secondary" {
		t.Fatalf("a metric added after the raw events went: %+v, want an error naming the retention", m)
	}
	if done, err := f.store.Folded(ctx, x.ID, "checkout", 1, metricsql.PartMetric); err != nil || len(done) != 0 {
		t.Fatalf("%d folds recorded for the metric that cannot be computed (%v)", len(done), err)
	}
}

// partitionsOf lists a table's active partitions.
func partitionsOf(t *testing.T, f foldFixture, table string) []string {
	t.Helper()
	rows, err := f.conn.Query(context.Background(), `SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase()
		AND table = ? AND active ORDER BY partition`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
