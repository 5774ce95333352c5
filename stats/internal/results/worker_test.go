package results

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/stats/internal/chtest"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// TestComputeFoldsEachDayOnce runs the worker's refresh over three days of events: the two
// finished days are folded into the rollups and recorded in Postgres, the results equal the
// same sums read from raw events only, and a day folded a second time behind the worker's back
// (a crash between the insert and the record) changes nothing.
func TestComputeFoldsEachDayOnce(t *testing.T) {
	ctx := context.Background()
	pool, err := pg.Connect(ctx, testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := &Store{Pool: pool}
	if err := store.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Database(t, "results")

	start := metricsql.Day(time.Now()).Add(-3 * 24 * time.Hour)
	now := start.Add(60 * time.Hour) // day 0 and day 1 are finished, day 2 is read raw
	const env, key = "env-1", "checkout"
	// 2,000 units first exposed over the first two days (a second exposure later); every third
	// buys within hours, "on" units twice as often; every fourth bought in the week before.
	startMs, span := start.UnixMilli(), int64(48*time.Hour/time.Millisecond)
	exposures := fmt.Sprintf(`INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(intDiv(ts, 1000)), ts, toInt64(ts), toDateTime(intDiv(ts, 1000)), 0, 'user',
		       concat('u', toString(u)), 'flag', if(u %% 2 = 0, 'off', 'on'), 1, 'SPLIT', '', '%s', 'test', '1'
		FROM (SELECT number %% 2000 AS u, toUInt64(%d + cityHash64(u) %% %d + intDiv(number, 2000) * 3600000) AS ts FROM numbers(4000))`,
		env, key, startMs, span)
	tracks := fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(intDiv(ts, 1000)), ts, toInt64(ts), toDateTime(intDiv(ts, 1000)), 0, 'user',
		       concat('u', toString(u)), 'purchase', toFloat64(10 + u %% 7), 1, 'test', '1'
		FROM (SELECT number AS u, toUInt64(%d + cityHash64(u) %% %d) AS first FROM numbers(2000))
		ARRAY JOIN [if(u %% 3 = 0 OR (u %% 2 = 1 AND u %% 3 = 1), toUInt64(first + 7200000), toUInt64(0)),
		            if(u %% 4 = 0, toUInt64(first - 86400000), toUInt64(0))] AS ts
		WHERE ts > 0`, env, startMs, span)
	for _, q := range []string{exposures, tracks} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	defs := map[string]metricsql.Definition{
		"conversion": {Key: "conversion", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1},
		"revenue":    {Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 3, CUPEDPreperiod: "168h"},
	}
	for k, d := range defs {
		d.Window.Start, d.Window.End = "0s", "168h"
		defs[k] = d
	}
	w := NewWorker(Config{}, store, conn, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	w.now = func() time.Time { return now }
	w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, _ int64) (metricsql.Definition, error) {
		return defs[key], nil
	}}
	x := flagsvc.Experiment{ID: uuid.NewString(), Key: key, Project: "shop", EnvironmentID: env, Flag: "flag", Status: "running",
		Control: "off", Variations: []flagsvc.Variation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}},
		Analysis:        flagsvc.Analysis{Engine: "frequentist", Alpha: 0.05, Sided: "two_sided", CUPED: true, Correction: "holm"},
		PlannedDuration: "336h", StartedAt: &start, MetricVersions: map[string]int64{"conversion": 1, "revenue": 3}}
	x.Metrics.Primary = []string{"conversion", "revenue"}

	first, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	folds := recordedFolds(t, store, x.ID)
	if len(folds) != 6 { // conversion days 0-1, revenue days 0-1, revenue's CUPED cohorts 0-1
		t.Fatalf("recorded folds %v, want 6", folds)
	}

	// The same sums from raw events only.
	qx := metricsql.Experiment{EnvironmentID: env, Key: key, Start: start}
	for _, m := range first.Metrics {
		_, q, err := w.defs.Query(ctx, x.Project, m.Metric, x.MetricVersions)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := metricsql.Sums(ctx, conn, qx, q, metricsql.Snapshot{FoldedUpTo: start, Now: now}, m.CUPED)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2 || len(m.Variants) != 2 {
			t.Fatalf("%s: raw sums %+v, variants %+v", m.Metric, raw, m.Variants)
		}
		for i, v := range m.Variants {
			if v.Key != raw[i].Variation || v.N != raw[i].N || v.Mean == nil || math.Abs(*v.Mean-raw[i].Sum/float64(raw[i].N)) > 1e-9 {
				t.Fatalf("%s/%s: n %d mean %v from the rollups, n %d mean %v from raw events", m.Metric, v.Key, v.N, deref(v.Mean),
					raw[i].N, raw[i].Sum/float64(raw[i].N))
			}
		}
		if raw[0].N == 0 || raw[0].Sum == 0 {
			t.Fatalf("%s: no data in the control: %+v", m.Metric, raw[0])
		}
	}

	// Day 0 folded again behind the worker's back: rows under fold ids nobody recorded.
	for _, k := range []string{"conversion", "revenue"} {
		_, q, _ := w.defs.Query(ctx, x.Project, k, x.MetricVersions)
		if _, err := metricsql.FoldDay(ctx, conn, qx, q, start); err != nil {
			t.Fatal(err)
		}
	}
	second, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if got := recordedFolds(t, store, x.ID); fmt.Sprint(got) != fmt.Sprint(folds) {
		t.Fatalf("folds changed on the second refresh: %v, then %v", folds, got)
	}
	a, _ := json.Marshal(first.Metrics)
	b, _ := json.Marshal(second.Metrics)
	if string(a) != string(b) {
		t.Fatalf("results changed after a day was folded twice:\n%s\n%s", a, b)
	}
}

func recordedFolds(t *testing.T, s *Store, experimentID string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, k := range []struct {
		metric  string
		version int64
		part    int
	}{{"conversion", 1, 0}, {"revenue", 3, 0}, {"revenue", 3, 1}} {
		days, err := s.Folded(context.Background(), experimentID, k.metric, k.version, k.part)
		if err != nil {
			t.Fatal(err)
		}
		for d, id := range days {
			if id == 0 {
				t.Fatalf("%s part %d %s: fold id 0", k.metric, k.part, d.Format(time.DateOnly))
			}
			out[fmt.Sprintf("%s/%d/%s", k.metric, k.part, d.Format(time.DateOnly))] = id
		}
	}
	return out
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
