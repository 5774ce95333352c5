package results

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/stats/internal/chtest"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// boundaryExposure and boundaryTrack write one exposure / one purchase (value 1) at a
// millisecond, as ingest stores them (timestamp in whole seconds, timestamp_ms exact).
func boundaryExposure(t *testing.T, conn driver.Conn, unit, variation, experiment string, at time.Time) {
	t.Helper()
	q := fmt.Sprintf(`INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT 'env-b', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', '%s', 'flag', '%s', 1, 'SPLIT', '', '%s', 'go', '1'`,
		at.Unix(), at.UnixMilli(), at.UnixMilli(), at.Unix(), unit, variation, experiment)
	if err := conn.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func boundaryTrack(t *testing.T, conn driver.Conn, unit string, at time.Time) {
	t.Helper()
	q := fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT 'env-b', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', '%s', 'purchase', 1, 1, 'go', '1'`,
		at.Unix(), at.UnixMilli(), at.UnixMilli(), at.Unix(), unit)
	if err := conn.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

// TestComputeTimeBoundaries: an experiment started mid-day and stopped at 12:00:00.500 two
// days later. Events count from the first exposure (inclusive) to the window's end
// (exclusive), across midnight (first exposure at 23:59:59.999, event at 00:00:00.000, read
// from the next day's fold), and up to the stop time to the millisecond: a unit first exposed
// 400 ms before the stop is a unit, so its purchase 200 ms before the stop counts — read from
// the raw tail of several metrics at once and from one metric's raw read. The same edges hold
// in the raw tail, whose events the results worker joins with the units itself: at a first
// exposure in it, and at the end of a 24 h window that began on a folded day. A context
// exposed only under an earlier experiment on the same flag is not a unit.
func TestComputeTimeBoundaries(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	conn := chtest.Database(t, "bounds")
	day := metricsql.Day(time.Now()).Add(-3 * 24 * time.Hour)
	start := day.Add(10 * time.Hour)
	stop := day.Add(60*time.Hour + 500*time.Millisecond)

	for i := 0; i < 4; i++ { // two units per arm without purchases
		boundaryExposure(t, conn, fmt.Sprintf("quiet%d", i), []string{"off", "on"}[i%2], "bnd", start.Add(time.Duration(i+1)*time.Hour))
	}
	first := start.Add(time.Hour)
	boundaryExposure(t, conn, "edges", "off", "bnd", first)
	boundaryTrack(t, conn, "edges", first)                                    // at the first exposure: counts
	boundaryTrack(t, conn, "edges", first.Add(24*time.Hour-time.Millisecond)) // last ms of a 24h window
	boundaryTrack(t, conn, "edges", first.Add(24*time.Hour))                  // the 24h window's end: only in 168h
	boundaryTrack(t, conn, "edges", first.Add(-time.Millisecond))             // before the first exposure: never
	boundaryExposure(t, conn, "midnight", "on", "bnd", day.Add(24*time.Hour-time.Millisecond))
	boundaryTrack(t, conn, "midnight", day.Add(24*time.Hour))
	boundaryExposure(t, conn, "last", "on", "bnd", stop.Add(-400*time.Millisecond))
	boundaryTrack(t, conn, "last", stop.Add(-200*time.Millisecond))
	boundaryTrack(t, conn, "last", stop) // at the stop: not counted
	boundaryExposure(t, conn, "after", "off", "bnd", stop)
	boundaryTrack(t, conn, "after", stop.Add(time.Second))
	boundaryExposure(t, conn, "tailfirst", "on", "bnd", day.Add(50*time.Hour))  // the stop day, read raw
	boundaryTrack(t, conn, "tailfirst", day.Add(50*time.Hour))                  // counts
	boundaryTrack(t, conn, "tailfirst", day.Add(50*time.Hour-time.Millisecond)) // never
	boundaryExposure(t, conn, "tailend", "off", "bnd", day.Add(30*time.Hour))
	boundaryTrack(t, conn, "tailend", day.Add(54*time.Hour-time.Millisecond)) // last ms of its 24h window, read raw
	boundaryTrack(t, conn, "tailend", day.Add(54*time.Hour))                  // the 24h window's end: only in 168h
	boundaryExposure(t, conn, "previous", "on", "prev", start.Add(2*time.Hour))
	boundaryTrack(t, conn, "previous", start.Add(3*time.Hour))

	defs := map[string]metricsql.Definition{}
	for key, end := range map[string]string{"purchases": "168h", "purchases-24h": "24h"} {
		d := metricsql.Definition{Key: key, Kind: metricsql.Count, EventKey: "purchase", Direction: "increase", Version: 1}
		d.Window.Start, d.Window.End = "0s", end
		defs[key] = d
	}
	w := NewWorker(Config{}, store, conn, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, _ int64) (metricsql.Definition, error) { return defs[key], nil }}
	x := flagsvc.Experiment{ID: uuid.NewString(), Key: "bnd", Project: "shop", EnvironmentID: "env-b", Flag: "flag", Status: "stopped",
		Control: "off", Variations: []flagsvc.Variation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}},
		Analysis: flagsvc.Analysis{Engine: "frequentist", Alpha: 0.05, Sided: "two_sided"}, PlannedDuration: "336h",
		StartedAt: &start, StoppedAt: &stop, MetricVersions: map[string]int64{"purchases": 1, "purchases-24h": 1}}
	x.Metrics.Primary = []string{"purchases", "purchases-24h"}
	w.now = func() time.Time { return stop.Add(2 * time.Hour) }
	snap, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(snap.Exposures) != "map[off:4 on:5]" {
		t.Fatalf("exposures %v, want off 4 (quiet0, quiet2, edges, tailend) and on 5 (quiet1, quiet3, midnight, last, tailfirst)", snap.Exposures)
	}
	// Per arm: purchases (n, total), purchases-24h (n, total).
	want := map[string][2]float64{"purchases/off": {4, 5}, "purchases/on": {5, 3}, "purchases-24h/off": {4, 3}, "purchases-24h/on": {5, 3}}
	for _, m := range snap.Metrics {
		for _, v := range m.Variants {
			k := m.Metric + "/" + v.Key
			if v.Mean == nil || float64(v.N) != want[k][0] || *v.Mean*float64(v.N) != want[k][1] {
				t.Errorf("%s: n %d, mean %v; want n %v, total %v", k, v.N, deref(v.Mean), want[k][0], want[k][1])
			}
		}
	}
	// One metric read raw from the start (rawSQL rather than the combined tail read).
	_, q, err := w.defs.Query(ctx, x.Project, "purchases", x.MetricVersions)
	if err != nil {
		t.Fatal(err)
	}
	units, err := metricsql.MaterializeUnits(ctx, conn, metricsql.Experiment{EnvironmentID: "env-b", Key: "bnd", Start: start}, stop)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = metricsql.DropUnits(ctx, conn, units.ID) }()
	qx := metricsql.Experiment{EnvironmentID: "env-b", Key: "bnd", Start: start}.WithUnits(units)
	raw, err := metricsql.Sums(ctx, conn, qx, q, metricsql.Snapshot{FoldedUpTo: day, Now: stop}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(raw); got != "[{off 4 5 13 0 0 0 0 0 0} {on 5 3 3 0 0 0 0 0 0}]" {
		t.Fatalf("raw sums %s", got)
	}
}

// TestComputeStartJustAfterMidnight: an experiment started 30 s after midnight UTC, with a unit
// whose client clock runs a minute behind — first exposed, and converted, "before" midnight. It
// is a unit and its purchase counts (the analysis starts the day before, within
// metricsql.ClockSkew), read raw minutes after the start and from the folds of both days a day
// later; a unit stamped two days before is not one.
func TestComputeStartJustAfterMidnight(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	conn := chtest.Database(t, "midnight")
	start := metricsql.Day(time.Now()).Add(-3*24*time.Hour + 30*time.Second)
	boundaryExposure(t, conn, "behind", "on", "mid", start.Add(-time.Minute))
	boundaryTrack(t, conn, "behind", start.Add(-45*time.Second))
	boundaryExposure(t, conn, "on-time", "off", "mid", start.Add(time.Minute))
	boundaryTrack(t, conn, "on-time", start.Add(2*time.Minute))
	boundaryExposure(t, conn, "days-behind", "off", "mid", start.Add(-49*time.Hour))

	def := metricsql.Definition{Key: "purchases", Kind: metricsql.Count, EventKey: "purchase", Direction: "increase", Version: 1}
	def.Window.Start, def.Window.End = "0s", "168h"
	w := NewWorker(Config{}, store, conn, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	w.defs = &metricsql.Definitions{Load: func(context.Context, string, string, int64) (metricsql.Definition, error) { return def, nil }}
	x := flagsvc.Experiment{ID: uuid.NewString(), Key: "mid", Project: "shop", EnvironmentID: "env-b", Flag: "flag", Status: "running",
		Control: "off", Variations: []flagsvc.Variation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}},
		Analysis: flagsvc.Analysis{Engine: "frequentist", Alpha: 0.05, Sided: "two_sided"}, PlannedDuration: "336h",
		StartedAt: &start, MetricVersions: map[string]int64{"purchases": 1}}
	x.Metrics.Primary = []string{"purchases"}
	for _, at := range []time.Time{start.Add(10 * time.Minute), start.Add(26 * time.Hour)} { // raw; then both days folded
		w.now = func() time.Time { return at }
		snap, err := w.Compute(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(snap.Exposures) != "map[off:1 on:1]" {
			t.Fatalf("at start + %v: exposures %v, want one unit per arm (not the one stamped two days before)", at.Sub(start), snap.Exposures)
		}
		for _, v := range snap.Metrics[0].Variants {
			if v.N != 1 || v.Mean == nil || *v.Mean != 1 {
				t.Fatalf("at start + %v: %s has n %d, mean %v; want 1 purchase of 1 unit", at.Sub(start), v.Key, v.N, deref(v.Mean))
			}
		}
	}
}
