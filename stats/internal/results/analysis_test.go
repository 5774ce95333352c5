package results

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// withDefs makes the fixture's worker read these metric definitions (a missing key is the
// flag service's 404).
func withDefs(f foldFixture, defs map[string]metricsql.Definition) {
	f.w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, _ int64) (metricsql.Definition, error) {
		d, ok := defs[key]
		if !ok {
			return d, flagsvc.ErrNotFound
		}
		if d.Kind != metricsql.Ratio {
			d.Window.Start, d.Window.End = "0s", "168h"
		}
		return d, nil
	}}
}

// rawSums are a metric's per-variant sums read straight from the fixture's raw events up to to.
func rawSums(t *testing.T, f foldFixture, x flagsvc.Experiment, metric string, to time.Time) []metricsql.VariantSums {
	t.Helper()
	_, q, err := f.w.defs.Query(context.Background(), x.Project, metric, x.MetricVersions)
	if err != nil {
		t.Fatal(err)
	}
	qx := metricsql.Experiment{EnvironmentID: fixtureEnv, Key: fixtureKey, Start: f.start}
	sums, err := metricsql.Sums(context.Background(), f.conn, qx, q, metricsql.Snapshot{FoldedUpTo: f.start, Now: to}, false)
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func resultOf(t *testing.T, snap *Snapshot, role, metric string) MetricResult {
	t.Helper()
	for _, m := range snap.Metrics {
		if m.Role == role && m.Metric == metric {
			return m
		}
	}
	t.Fatalf("no %s result for %s in %+v", role, metric, snap.Metrics)
	return MetricResult{}
}

// TestComputeGuardrailsAreTwoSided: an experiment tested one-sided ("greater": the primary
// metric is expected to rise) still reads its guardrails two-sided — a guardrail's harm can
// be a rise or a drop, whichever its direction says, and a one-sided "greater" interval
// would never show a drop of revenue.
func TestComputeGuardrailsAreTwoSided(t *testing.T) {
	f := newFoldFixture(t)
	x := f.x
	x.Analysis.Sided, x.Analysis.CUPED = "greater", false
	x.Metrics.Primary = []string{"conversion"}
	x.Metrics.Guardrails = []flagsvc.Guardrail{{Metric: "revenue", Tolerance: 0.02, Action: "alert"}}
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	snap, err := f.w.Compute(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if ci := resultOf(t, snap, "primary", "conversion").Variants[1].CI; ci == nil || !math.IsInf(ci.High, 1) {
		t.Fatalf("primary metric's interval %+v: want the experiment's one-sided (greater) test", ci)
	}
	g := resultOf(t, snap, "guardrail", "revenue").Variants[1]
	if g.CI == nil || math.IsInf(g.CI.Low, 0) || math.IsInf(g.CI.High, 0) || g.Effect == nil {
		t.Fatalf("guardrail interval %+v: want two-sided", g.CI)
	}
	// The same sums analysed two-sided on their own.
	sums := rawSums(t, f, x, "revenue", snap.DataTo)
	m := engine.Metric{Key: "revenue", Kind: engine.KindMean}
	for _, s := range sums {
		m.Variants = append(m.Variants, s.Engine(s.Variation, false))
	}
	want, err := engine.AnalyzeMetric(m, engine.Options{Engine: engine.Frequentist, Difference: engine.Relative, Alpha: 0.05, Sided: engine.TwoSided})
	if err != nil {
		t.Fatal(err)
	}
	if w := want.Variants[1]; math.Abs(*w.PValue-*g.PValue) > 1e-9 || math.Abs(w.CI.High-g.CI.High) > 1e-9 {
		t.Fatalf("guardrail p %v ci %+v, two-sided p %v ci %+v", *g.PValue, *g.CI, *w.PValue, *w.CI)
	}
}

// TestComputeMDEAtThePlannedSplit: with an uneven split (80/20) the planned sample detects a
// larger effect than with an even one — the control against the small arm — and the SRM check
// compares the exposures with that split.
func TestComputeMDEAtThePlannedSplit(t *testing.T) {
	f := newFoldFixture(t)
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	even, err := f.w.Compute(context.Background(), f.x)
	if err != nil {
		t.Fatal(err)
	}
	x := f.x
	x.Variations = []flagsvc.Variation{{Variation: "on", Weight: 20000}, {Variation: "off", Weight: 80000}}
	uneven, err := f.w.Compute(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	a, b := resultOf(t, even, "primary", "conversion").MDE, resultOf(t, uneven, "primary", "conversion").MDE
	if a == nil || b == nil {
		t.Fatalf("MDE %v, %v", a, b)
	}
	// Power at a fixed total is the control arm against the smallest arm: 0.8/0.2 of the users
	// against 0.5/0.5 makes the standard error about sqrt((1/0.8+1/0.2)/(1/0.5+1/0.5)) = 1.25
	// times larger.
	c := resultOf(t, uneven, "primary", "conversion").Variants[0]
	want, err := engine.Power(engine.PowerRequest{Mean: *c.Mean, Variance: *c.Mean * (1 - *c.Mean), Users: int64(uneven.Progress.UnitsPerDay * 14),
		Variants: 2, Weights: []float64{80000, 20000}, Alpha: 0.05, TargetPower: engine.DefaultTargetPower})
	if err != nil || want.MDE == nil {
		t.Fatal(err)
	}
	if r := *b / *a; r < 1.2 || r > 1.4 || math.Abs(*b-*want.MDE) > 1e-6 {
		t.Fatalf("MDE at 80/20 %v, at 50/50 %v (ratio %v): want %v, about 1.25 times larger", *b, *a, r, *want.MDE)
	}
	srm := uneven.DataQuality.SRM
	if !srm.Flagged || srm.Expected["off"] != 0.8 || srm.Expected["on"] != 0.2 {
		t.Fatalf("SRM of a 50/50 exposure against a planned 80/20: %+v", srm)
	}
	if uneven.Metrics[0].Variants[0].Key != "off" {
		t.Fatalf("the control is not first: %+v", uneven.Metrics[0].Variants)
	}
}

// TestComputeIsolatesAFailingMetric: a metric whose recorded version the flag service no
// longer serves, and one whose sums the engine rejects (a value so large its square
// overflows), each carry an error in the snapshot; the other metrics are computed.
func TestComputeIsolatesAFailingMetric(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	// One unit sent an absurd value.
	q := fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', 'u1', 'bignum', 1e200, 1, 'test', '1'`,
		fixtureEnv, f.start.Add(47*time.Hour).Unix(), f.start.Add(47*time.Hour).UnixMilli(), f.start.Add(47*time.Hour).UnixMilli(),
		f.start.Add(47*time.Hour).Unix())
	if err := f.conn.Exec(ctx, q); err != nil {
		t.Fatal(err)
	}
	withDefs(f, map[string]metricsql.Definition{
		"conversion": {Key: "conversion", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1},
		"revenue":    {Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 3},
		"bignum":     {Key: "bignum", Kind: metricsql.Sum, EventKey: "bignum", Direction: "increase", Version: 1},
	})
	x := f.x
	x.Analysis.CUPED = false
	x.Metrics.Secondary = []string{"gone", "bignum"}
	x.MetricVersions = map[string]int64{"conversion": 1, "revenue": 3, "gone": 2, "bignum": 1}
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	snap, err := f.w.Compute(ctx, x)
	if err != nil {
		t.Fatalf("one failing metric failed the whole snapshot: %v", err)
	}
	for _, k := range []string{"conversion", "revenue"} {
		m := resultOf(t, snap, "primary", k)
		if m.Error != "" || len(m.Variants) != 2 || m.Variants[1].Effect == nil || m.Variants[1].PValueAdjusted == nil {
			t.Fatalf("%s: %+v", k, m)
		}
	}
	gone := resultOf(t, snap, "secondary", "gone")
	if !strings.Contains(gone.Error, "definition") || gone.MetricVersion != 2 || len(gone.Variants) != 0 {
		t.Fatalf("metric without a definition: %+v", gone)
	}
	big := resultOf(t, snap, "secondary", "bignum")
	if !strings.Contains(big.Error, "finite") || big.MetricVersion != 1 || len(big.Variants) != 0 {
		t.Fatalf("metric the engine rejects: %+v", big)
	}
}

// TestSnapshotRecordsMetricVersions: a snapshot names every metric version it used, a ratio's
// parts included, so it stays interpretable after the metrics change; and a metric saved as a
// new version mid-run is still computed at the version the experiment recorded.
func TestSnapshotRecordsMetricVersions(t *testing.T) {
	f := newFoldFixture(t)
	current := map[string]metricsql.Definition{
		"conversion": {Key: "conversion", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1},
		"revenue":    {Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 3},
		"purchases":  {Key: "purchases", Kind: metricsql.Count, EventKey: "purchase", Direction: "increase", Version: 2},
		"aov":        {Key: "aov", Kind: metricsql.Ratio, Numerator: "revenue", Denominator: "purchases", Direction: "increase", Version: 5},
	}
	loaded := map[string]int64{}
	f.w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, version int64) (metricsql.Definition, error) {
		d := current[key]
		if version != 0 && version != d.Version { // an older version: the same definition, as recorded
			d.Version = version
		}
		if d.Kind != metricsql.Ratio {
			d.Window.Start, d.Window.End = "0s", "168h"
		}
		loaded[key] = d.Version
		return d, nil
	}}
	x := f.x
	x.Analysis.CUPED = false
	x.Metrics.Primary = []string{"aov"}
	// "revenue" got version 4 after the start: the experiment keeps version 3.
	current["revenue"] = metricsql.Definition{Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 4}
	x.MetricVersions = map[string]int64{"aov": 5, "revenue": 3, "purchases": 2}
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	snap, err := f.w.Compute(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if loaded["revenue"] != 3 {
		t.Fatalf("revenue computed at version %d, want the recorded 3", loaded["revenue"])
	}
	if got := fmt.Sprint(snap.MetricVersions); got != "map[aov:5 purchases:2 revenue:3]" {
		t.Fatalf("snapshot metric versions %s", got)
	}
	if m := resultOf(t, snap, "primary", "aov"); m.MetricVersion != 5 || m.Variants[1].Effect == nil {
		t.Fatalf("aov: %+v", m)
	}
}

// TestComputeMDEOfAMeanMetric: a mean metric's n is the units that sent an event (about half
// of them here), so the planned sample it is powered on is that share of the planned units,
// as the estimate plans it — not every unit.
func TestComputeMDEOfAMeanMetric(t *testing.T) {
	f := newFoldFixture(t)
	withDefs(f, map[string]metricsql.Definition{
		"order-value": {Key: "order-value", Kind: metricsql.Mean, EventKey: "purchase", Direction: "increase", Version: 1},
	})
	x := f.x
	x.Analysis.CUPED = false
	x.Metrics.Primary = []string{"order-value"}
	x.MetricVersions = map[string]int64{"order-value": 1}
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	snap, err := f.w.Compute(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	m := resultOf(t, snap, "primary", "order-value")
	units := snap.Exposures["off"] + snap.Exposures["on"]
	n := m.Variants[0].N + m.Variants[1].N
	if m.MDE == nil || n >= units*3/4 || n <= units/4 {
		t.Fatalf("MDE %v, n %d of %d units", m.MDE, n, units)
	}
	// The control's per-event mean and variance, over the units with an event of the planned units.
	sums := rawSums(t, f, x, "order-value", snap.DataTo)
	c := sums[0]
	mean := c.Sum / float64(c.N)
	variance := (c.SumSquares - c.Sum*c.Sum/float64(c.N)) / float64(c.N-1)
	users := snap.Progress.UnitsPerDay * 14 * float64(n) / float64(units)
	want, err := engine.Power(engine.PowerRequest{Mean: mean, Variance: variance, Users: int64(users), Variants: 2,
		Weights: []float64{50000, 50000}, Alpha: 0.05, TargetPower: engine.DefaultTargetPower})
	if err != nil || want.MDE == nil {
		t.Fatal(err)
	}
	if math.Abs(*m.MDE-*want.MDE) > 1e-5 {
		t.Fatalf("MDE %v, want %v (powered on the units with an event)", *m.MDE, *want.MDE)
	}
}

// TestComputeAVariationWithoutUnits: a third arm that no unit reached (a broken assignment)
// is in the snapshot with 0 exposures, a per-variant error instead of an effect, below every
// metric's minimum sample and in the SRM check; the other arms are analysed as usual.
func TestComputeAVariationWithoutUnits(t *testing.T) {
	f := newFoldFixture(t)
	withDefs(f, map[string]metricsql.Definition{
		"conversion": {Key: "conversion", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1, MinSampleSize: 100},
		"revenue":    {Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 3, CUPEDPreperiod: "168h"},
	})
	x := f.x
	x.Variations = []flagsvc.Variation{{Variation: "off", Weight: 40000}, {Variation: "on", Weight: 40000}, {Variation: "new", Weight: 20000}}
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }
	snap, err := f.w.Compute(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := snap.Exposures["new"]; !ok || n != 0 {
		t.Fatalf("exposures %v", snap.Exposures)
	}
	if srm := snap.DataQuality.SRM; !srm.Flagged || srm.Expected["new"] != 0.2 {
		t.Fatalf("SRM %+v", srm)
	}
	if got := fmt.Sprint(snap.DataQuality.TooFewUnits); got != "[{conversion new 0 100}]" {
		t.Fatalf("too few units %s", got)
	}
	for _, m := range snap.Metrics {
		if m.Error != "" || len(m.Variants) != 3 {
			t.Fatalf("%s: %+v", m.Metric, m)
		}
		if v := m.Variants[1]; v.Key != "on" || v.Effect == nil {
			t.Fatalf("%s: the arm with units %+v", m.Metric, v)
		}
		if v := m.Variants[2]; v.Key != "new" || v.N != 0 || v.Effect != nil || v.Error == nil {
			t.Fatalf("%s: the arm without units %+v", m.Metric, v)
		}
	}
}

// TestRefreshLockOfACrashedReplica: while a replica holds an experiment's refresh lock another
// replica cannot take it; when the holder dies (its Postgres session ends) the lock is free,
// without waiting for anything.
func TestRefreshLockOfACrashedReplica(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	other := &Store{Pool: store.Pool}
	key := "results:" + uuid.NewString()
	release, ok, err := store.TryLock(ctx, key)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	defer release()
	if _, ok, err := other.TryLock(ctx, key); err != nil || ok {
		t.Fatalf("a second replica took a held lock: %v %v", ok, err)
	}
	// The holder crashes: its session ends.
	if _, err := store.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
		AND objid = (hashtextextended($1, 0) & 4294967295)::oid AND classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid`, key); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the lock of a dead session to be free", func() bool {
		rel, ok, err := other.TryLock(ctx, key)
		if ok {
			rel()
		}
		return ok && err == nil
	})
}

// TestRefreshNobodyWaitsForIsSkipped: an on-demand refresh queued behind a sweep whose caller
// gave up (its request timed out) is not computed when the worker gets to it — a refresh costs
// ClickHouse minutes, and retries would pile them up.
func TestRefreshNobodyWaitsForIsSkipped(t *testing.T) {
	f := newFoldFixture(t)
	x := f.x
	fakeExperiment(t, f.w, x)
	f.w.now = func() time.Time { return f.start.Add(60 * time.Hour) }

	// Queued while the worker is busy (not running yet); the caller gives up.
	gone, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- f.w.Refresh(gone, "shop", "checkout") }()
	testenv.Eventually(t, 5*time.Second, "the refresh to be queued", func() bool { return len(f.w.trigger) == 1 })
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned refresh: %v", err)
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	defer func() { stop(); <-done }()
	// A caller who waits gets its refresh; the worker handles requests in order, so the
	// abandoned one was handled before.
	if err := f.w.Refresh(context.Background(), "shop", "checkout"); err != nil {
		t.Fatal(err)
	}
	snaps, err := f.store.Snapshots(context.Background(), x.ID, 10)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("%d snapshots (%v), want 1: the abandoned refresh was computed", len(snaps), err)
	}
}

// TestAFailedRefreshIsRecordedUntilOneSucceeds: the results API tells readers when the latest
// snapshot is not up to date because a refresh failed (http's TestResultsSayWhenTheLastRefreshFailed).
func TestAFailedRefreshIsRecordedUntilOneSucceeds(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	f.w.defs = &metricsql.Definitions{Load: func(context.Context, string, string, int64) (metricsql.Definition, error) {
		return metricsql.Definition{}, errors.New("flag service unreachable")
	}}
	if err := f.w.refresh(ctx, f.x); err == nil {
		t.Fatal("a refresh without metric definitions succeeded")
	}
	failure, err := f.store.LastFailure(ctx, f.x.ID)
	if err != nil || failure == nil || !strings.Contains(failure.Message, "flag service unreachable") {
		t.Fatalf("recorded failure: %+v %v", failure, err)
	}
	withDefs(f, map[string]metricsql.Definition{
		"conversion": {Key: "conversion", Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1},
		"revenue":    {Key: "revenue", Kind: metricsql.Sum, EventKey: "purchase", Direction: "increase", Version: 3},
	})
	if err := f.w.refresh(ctx, f.x); err != nil {
		t.Fatal(err)
	}
	if failure, err := f.store.LastFailure(ctx, f.x.ID); err != nil || failure != nil {
		t.Fatalf("after a successful refresh: %+v %v", failure, err)
	}
}
