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

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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
	f := newFoldFixture(t)
	store, conn, w, x, start, now := f.store, f.conn, f.w, f.x, f.start, f.start.Add(60*time.Hour)
	const env, key = fixtureEnv, fixtureKey
	w.now = func() time.Time { return now }

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

// TestComputeRefoldsLateDays: a day folded before some of its events arrived is folded again
// when they arrive (metric part and the CUPED cohorts whose pre-period holds the day), the
// rollups then give the same sums as raw events; a check that finds no late events keeps
// every fold; an event arriving after its day's late window closed is not counted (the
// documented limit).
func TestComputeRefoldsLateDays(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	store, conn, w, x := f.store, f.conn, f.w, f.x
	start := metricsql.Day(f.start) // day 0 (the experiment started an hour into it)
	var now time.Time
	w.now = func() time.Time { return now }
	compute := func(at time.Time) {
		t.Helper()
		now = at
		if _, err := w.Compute(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	day0End := start.Add(24*time.Hour - time.Second)

	// Days 0 and 1 folded at 12:00 on day 2.
	now0 := start.Add(60 * time.Hour)
	compute(now0)
	folds := recordedFolds(t, store, x.ID)
	if len(folds) != 6 {
		t.Fatalf("recorded folds %v, want 6", folds)
	}
	assertRollupsMatchRaw(t, f, now0, true)

	// Ten hours later both days are due a check (day 0 every 9 h at its age); nothing arrived
	// late: the check keeps every fold and moves their checked time.
	now1 := now0.Add(10 * time.Hour)
	compute(now1)
	if got := recordedFolds(t, store, x.ID); fmt.Sprint(got) != fmt.Sprint(folds) {
		t.Fatalf("folds changed without late events: %v, then %v", folds, got)
	}
	checked, err := store.Folded(ctx, x.ID, "revenue", 3, metricsql.PartCovariate)
	if err != nil {
		t.Fatal(err)
	}
	if c := checked[start].CheckedAt; !c.Equal(now1) {
		t.Errorf("revenue's cohort of day 0 checked at %v, want %v", c, now1)
	}

	// Two purchases of day 0 received half an hour later: one in the conversion window of a
	// unit of day 0's cohort, one in the CUPED pre-period of a unit of day 1's cohort. The next
	// check of day 0 is 11.5 h after the last.
	insertLateTrack(t, conn, start, start.Add(23*time.Hour), day0End, now1.Add(30*time.Minute), 1000)
	insertLateTrack(t, conn, start.Add(25*time.Hour), start.Add(48*time.Hour), day0End, now1.Add(30*time.Minute), 500)
	compute(now1.Add(12 * time.Hour))
	got := recordedFolds(t, store, x.ID)
	d0, d1 := start.Format(time.DateOnly), start.Add(24*time.Hour).Format(time.DateOnly)
	for k, id := range folds {
		refolded := k == "conversion/0/"+d0 || k == "revenue/0/"+d0 || k == "revenue/1/"+d0 || k == "revenue/1/"+d1
		if changed := got[k] != id; changed != refolded {
			t.Errorf("%s: fold %d, then %d (want refolded: %v)", k, id, got[k], refolded)
		}
	}
	assertRollupsMatchRaw(t, f, now.Add(-w.cfg.Settle), true)

	// A unit's first exposure, on day 1, received late; its purchase an hour later was on time.
	// Days from 1 on are folded again (its events, its cohort), day 0 is not.
	now2 := now
	folds = recordedFolds(t, store, x.ID)
	lateUnit := fmt.Sprintf(`INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', 'late-unit', 'flag', 'on', 1, 'SPLIT', '', '%s', 'test', '1'`,
		fixtureEnv, start.Add(40*time.Hour).Unix(), start.Add(40*time.Hour).UnixMilli(), start.Add(40*time.Hour).UnixMilli(), now2.Add(30*time.Minute).Unix(), fixtureKey)
	lateUnitTrack := fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', 'late-unit', 'purchase', 300, 1, 'test', '1'`,
		fixtureEnv, start.Add(41*time.Hour).Unix(), start.Add(41*time.Hour).UnixMilli(), start.Add(41*time.Hour).UnixMilli(), start.Add(41*time.Hour).Unix())
	for _, q := range []string{lateUnit, lateUnitTrack} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	compute(now2.Add(9 * time.Hour))
	got = recordedFolds(t, store, x.ID)
	for k, id := range folds {
		if changed := got[k] != id; changed != (k[len(k)-10:] > d0) {
			t.Errorf("after a late exposure of day 1: %s: fold %d, then %d", k, id, got[k])
		}
	}
	assertRollupsMatchRaw(t, f, now.Add(-w.cfg.Settle), true)

	// Day 1's late window closes at day 2 + 168h + the 1 h settle; a refresh after that checks
	// it a last time. An event of day 1 received later is never counted.
	closed := start.Add(48*time.Hour + w.cfg.LateWindow + w.cfg.Settle + time.Hour)
	compute(closed)
	folds = recordedFolds(t, store, x.ID)
	assertRollupsMatchRaw(t, f, closed, true)
	insertLateTrack(t, conn, start.Add(24*time.Hour), start.Add(47*time.Hour), start.Add(48*time.Hour-time.Second), closed.Add(time.Hour), 700)
	compute(closed.Add(3 * time.Hour))
	for k, id := range recordedFolds(t, store, x.ID) {
		if k[len(k)-10:] <= d1 && folds[k] != id {
			t.Errorf("%s folded again after its late window closed: %d, then %d", k, folds[k], id)
		}
	}
	assertRollupsMatchRaw(t, f, closed.Add(3*time.Hour), false)
}

// TestDue: when a folded day is checked for late events (Settle 1 h, late window 168 h).
func TestDue(t *testing.T) {
	w := NewWorker(Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	end := day.Add(24 * time.Hour)
	closes := end.Add(169 * time.Hour)
	for _, c := range []struct {
		name         string
		checked, now time.Time
		want         bool
	}{
		{"just folded", end.Add(time.Hour), end.Add(90 * time.Minute), false},
		{"young day, settle elapsed", end.Add(time.Hour), end.Add(2 * time.Hour), true},
		{"old day, within a quarter of its age", end.Add(40 * time.Hour), end.Add(49 * time.Hour), false},
		{"old day, a quarter of its age elapsed", end.Add(40 * time.Hour), end.Add(50 * time.Hour), true},
		{"window closed since the last check", closes.Add(-time.Hour), closes, true},
		{"checked after the close: final", closes, closes.Add(100 * time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := w.due(day, c.checked, c.now); got != c.want {
				t.Fatalf("due(checked %v, now %v) = %v, want %v", c.checked, c.now, got, c.want)
			}
		})
	}
}

// insertLateTrack inserts a purchase of value at ts, received at received, for the first
// unit (by key) whose first exposure is in [from, to).
func insertLateTrack(t *testing.T, conn driver.Conn, from, to, ts, received time.Time, value float64) {
	t.Helper()
	q := fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', context_key, 'purchase', %g, 1, 'test', '1'
		FROM (SELECT context_key, min(timestamp_ms) AS first FROM exposures WHERE experiment_key = '%s' GROUP BY context_key
		      HAVING first >= %d AND first < %d ORDER BY context_key LIMIT 1)`,
		fixtureEnv, ts.Unix(), ts.UnixMilli(), ts.UnixMilli(), received.Unix(), value, fixtureKey, from.UnixMilli(), to.UnixMilli())
	if err := conn.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

// assertRollupsMatchRaw compares each metric's sums from the recorded folds (days before
// now - settle, raw after) with the sums from raw events only; equal says so, or that they differ.
func assertRollupsMatchRaw(t *testing.T, f foldFixture, now time.Time, equal bool) {
	t.Helper()
	ctx := context.Background()
	qx := metricsql.Experiment{EnvironmentID: fixtureEnv, Key: fixtureKey, Start: f.start}
	until := metricsql.Day(now.Add(-f.w.cfg.Settle))
	differ := false
	for _, k := range []string{"conversion", "revenue"} {
		_, q, err := f.w.defs.Query(ctx, f.x.Project, k, f.x.MetricVersions)
		if err != nil {
			t.Fatal(err)
		}
		folds := metricsql.Folds{}
		for part := range 2 {
			days, err := f.store.Folded(ctx, f.x.ID, q.Key, q.Version, part)
			if err != nil {
				t.Fatal(err)
			}
			for d, fold := range days {
				if d.Before(until) {
					folds.Add(q, part, fold.ID)
				}
			}
		}
		rolled, err := metricsql.Sums(ctx, f.conn, qx, q, metricsql.Snapshot{FoldedUpTo: until, Folds: folds, Now: now}, true)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := metricsql.Sums(ctx, f.conn, qx, q, metricsql.Snapshot{FoldedUpTo: f.start, Now: now}, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2 || raw[0].N == 0 {
			t.Fatalf("%s: raw sums %+v", k, raw)
		}
		same := sameSums(rolled, raw)
		if equal && !same {
			t.Errorf("%s: sums from the rollups %+v, from raw events %+v", k, rolled, raw)
		}
		differ = differ || !same
	}
	if !equal && !differ {
		t.Errorf("the sums from the rollups count an event that arrived after its day's late window")
	}
}

// sameSums: the same variations, n and sums (to rounding).
func sameSums(a, b []metricsql.VariantSums) bool {
	if len(a) != len(b) {
		return false
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	for i := range a {
		x, y := a[i], b[i]
		if x.Variation != y.Variation || x.N != y.N || !near(x.Sum, y.Sum) || !near(x.SumSquares, y.SumSquares) ||
			!near(x.CovSum, y.CovSum) || !near(x.CovSumSquares, y.CovSumSquares) || !near(x.MainCovProduct, y.MainCovProduct) {
			return false
		}
	}
	return true
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
		for d, f := range days {
			if f.ID == 0 {
				t.Fatalf("%s part %d %s: fold id 0", k.metric, k.part, d.Format(time.DateOnly))
			}
			out[fmt.Sprintf("%s/%d/%s", k.metric, k.part, d.Format(time.DateOnly))] = f.ID
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

const fixtureEnv, fixtureKey = "env-1", "checkout"

type foldFixture struct {
	store *Store
	conn  driver.Conn
	w     *Worker
	x     flagsvc.Experiment
	start time.Time
}

// newStore is a results store on a fresh, migrated Postgres database.
func newStore(t *testing.T) *Store {
	t.Helper()
	pool, err := pg.Connect(context.Background(), testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := &Store{Pool: pool}
	if err := store.Migrate(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return store
}

// newFoldFixture: an experiment started three days ago (2,000 units first exposed over its
// first two days, "off" and "on"), its events, and a worker on a fresh Postgres schema and
// ClickHouse database. The worker's clock is the test's to set.
func newFoldFixture(t *testing.T) foldFixture {
	t.Helper()
	ctx := context.Background()
	store := newStore(t)
	conn := chtest.Database(t, "results")

	// Started an hour after midnight, so the analysis starts on the start's day
	// (metricsql.ClockSkew) and its two days are the ones folded.
	start := metricsql.Day(time.Now()).Add(-3*24*time.Hour + metricsql.ClockSkew)
	const env, key = fixtureEnv, fixtureKey
	// 2,000 units first exposed over the rest of the first two days (a second exposure later);
	// every third buys within hours, "on" units twice as often; every fourth bought in the week
	// before.
	startMs, span := start.UnixMilli(), int64((48*time.Hour-metricsql.ClockSkew)/time.Millisecond)
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
	w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, _ int64) (metricsql.Definition, error) {
		return defs[key], nil
	}}
	x := flagsvc.Experiment{ID: uuid.NewString(), Key: key, Project: "shop", EnvironmentID: env, Flag: "flag", Status: "running",
		Control: "off", Variations: []flagsvc.Variation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}},
		Analysis:        flagsvc.Analysis{Engine: "frequentist", Alpha: 0.05, Sided: "two_sided", CUPED: true, Correction: "holm"},
		PlannedDuration: "336h", StartedAt: &start, MetricVersions: map[string]int64{"conversion": 1, "revenue": 3}}
	x.Metrics.Primary = []string{"conversion", "revenue"}

	return foldFixture{store: store, conn: conn, w: w, x: x, start: start}
}
