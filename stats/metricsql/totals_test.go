package metricsql

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Totals add up folds per context; the sums read them and only the folds they lack (added) or
// hold but no longer count (a day folded again: taken away). Whatever the totals are behind by —
// days folded since, a day folded again with events that arrived late, a metric added, a metric
// removed — the sums must be the independent computation's, for every metric kind, CUPED,
// absolute and percentile caps, ratios, and in passes that slice the contexts differently from
// the totals'.
func TestTotalsGiveTheSumsOfTheRollups(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(13, 17))
	units, events, exposures := population(r, start, 3000)
	insert(t, conn, "env1", events, exposures)
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: start}
	week := 7 * 24 * time.Hour
	now := start.Add(20 * 24 * time.Hour)
	u, err := MaterializeUnits(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	defer DropUnits(ctx, conn, u.ID)
	xu := x.WithUnits(u)
	if !xu.HashedUnits() {
		t.Fatal("the units' hashes are distinct, but the experiment says they are not")
	}
	// The sums are added up in the worker (GroupInWorker), in passes of 1,000 units: the totals'
	// rows are read per pass too.
	saved := WorkerUnitsPerPass
	WorkerUnitsPerPass = 1000
	defer func() { WorkerUnitsPerPass = saved }()

	fifty := 50.0
	conv := &Metric{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week}
	count := &Metric{Key: "orders", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week}
	sum := &Metric{Key: "revenue", Version: 2, Kind: Sum, EventKey: "purchase", WindowEnd: week, CUPEDPreperiod: week}
	mean := &Metric{Key: "aov-eur", Version: 1, Kind: Mean, EventKey: "purchase", WindowStart: time.Hour, WindowEnd: 72 * time.Hour,
		Filters: []Filter{{Property: "currency", Op: "in", Values: []any{"EUR"}}}}
	capped := &Metric{Key: "rev-capped", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, Winsorize: Winsorize{Type: "absolute", Upper: &fifty}}
	p90 := &Metric{Key: "rev-p90", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, Winsorize: Winsorize{Type: "percentile", Upper: ptr(0.9)}}
	ratio := &Metric{Key: "rpo", Version: 1, Kind: Ratio, Numerator: sum, Denominator: count}
	reqs := []SumsRequest{{Metric: conv}, {Metric: count}, {Metric: sum, CUPED: true}, {Metric: mean}, {Metric: capped}, {Metric: p90}, {Metric: ratio}}
	check := func(t *testing.T, s Snapshot, events []event) {
		t.Helper()
		all, err := SumsOf(ctx, conn, xu, reqs, s)
		if err != nil {
			t.Fatal(err)
		}
		for i, req := range reqs {
			m := req.Metric
			var upper *float64
			switch m.Winsorize.Type {
			case "absolute":
				upper = m.Winsorize.Upper
			case "percentile":
				capValue, err := Percentile(ctx, conn, xu, m, s, *m.Winsorize.Upper)
				if err != nil {
					t.Fatal(err)
				}
				plain := *m
				plain.Winsorize = Winsorize{}
				if want, err := Percentile(ctx, conn, xu, &plain, Snapshot{FoldedUpTo: x.FirstDay(), Now: s.Now}, *m.Winsorize.Upper); err != nil || !near(capValue, want) {
					t.Fatalf("%s: p90 cap %v with the totals, %v (%v) from raw events", m.Key, capValue, want, err)
				}
				upper = &capValue
				m = &plain
			}
			compare(t, all[i], expected(units, events, m, s.Now.UnixMilli(), req.CUPED, nil, upper))
		}
	}
	folded := func(ms []*Metric, from, until time.Time, folds Folds) { foldDays(t, conn, xu, ms, from, until, folds) }
	metrics := []*Metric{conv, count, sum, mean, capped, p90}

	// Totals of the first 8 days, written in 3 slices; the sums read them in 2.
	day8, day12 := start.Add(8*24*time.Hour), start.Add(12*24*time.Hour)
	folds8 := Folds{}
	folded(metrics, start, day8, folds8)
	gone := &Metric{Key: "removed", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week}
	withGone := maps.Clone(folds8)
	folded([]*Metric{gone}, start, day8, withGone) // a metric later removed from the experiment
	t8, err := UpdateTotals(ctx, conn, xu, nil, withGone, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(t8.Parts) != 8 || !t8.Current(withGone) || t8.Current(folds8) {
		t.Fatalf("totals of %d parts (current %v), want the 8 folded", len(t8.Parts), t8.Current(withGone))
	}
	t.Run("totals current", func(t *testing.T) {
		check(t, Snapshot{FoldedUpTo: day8, Folds: folds8, Now: now, Passes: 2, Totals: &t8}, events)
	})
	// A refresh a day and a half after the last fold, inside the conversion windows of the
	// last units: the raw tail is short enough to be read for every metric at once
	// (rawPartsSQL), its rows naming the contexts by their hash as the totals do.
	t.Run("a short raw tail", func(t *testing.T) {
		check(t, Snapshot{FoldedUpTo: day8, Folds: folds8, Now: day8.Add(36 * time.Hour), Passes: 2, Totals: &t8}, events)
	})
	// Under a day, the worker reads it in one query, not in the passes.
	t.Run("a raw tail under a day", func(t *testing.T) {
		check(t, Snapshot{FoldedUpTo: day8, Folds: folds8, Now: day8.Add(20 * time.Hour), Passes: 2, Totals: &t8}, events)
	})

	// Four more days folded, a metric added (its folds not in the totals at all), and day 3
	// folded again after events for it arrived late: the totals hold its first fold.
	late := lateEvents(r, units, start.Add(3*24*time.Hour), 40)
	insertEvents(t, conn, "env1", late)
	events = append(events, late...)
	folds12 := Folds{}
	for k, ids := range folds8 {
		folds12[k] = append([]int64(nil), ids...)
	}
	folded(metrics, day8, day12, folds12)
	added := &Metric{Key: "big-orders", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week}
	folded([]*Metric{added}, start, day12, folds12)
	day3 := start.Add(3 * 24 * time.Hour)
	again, err := FoldDays(ctx, conn, xu, metrics, day3)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range metrics {
		k := FoldKey{m.Key, m.Version, PartMetric}
		folds12[k][3] = again[i] // the day's recorded fold, replaced
	}
	reqs = append(reqs, SumsRequest{Metric: added})
	check12 := func(t *testing.T, totals *Totals, passes int) {
		t.Helper()
		check(t, Snapshot{FoldedUpTo: day12, Folds: folds12, Now: now, Passes: passes, Totals: totals}, events)
	}
	t.Run("totals behind", func(t *testing.T) { check12(t, &t8, 3) })
	// Taking the replaced fold away is what makes them right: without it day 3 counts twice.
	t.Run("the replaced fold is taken away", func(t *testing.T) {
		stale := t8
		stale.Folds = maps.Clone(t8.Folds)
		for i, m := range metrics {
			k := FoldKey{m.Key, m.Version, PartMetric}
			stale.Folds[k] = append(append([]int64(nil), t8.Folds[k]...), again[i]) // as if it held the new fold too
		}
		all, err := SumsOf(ctx, conn, xu, reqs[:2], Snapshot{FoldedUpTo: day12, Folds: folds12, Now: now, Passes: 1, Totals: &stale})
		if err != nil {
			t.Fatal(err)
		}
		want := expected(units, events, count, now.UnixMilli(), false, nil, nil)
		if fmt.Sprint(all[1]) == fmt.Sprint(want) {
			t.Fatal("totals said to hold the new fold of day 3 but not its old one give the right sums: the totals are not read")
		}
	})

	// Brought up to date from the previous totals, and from nothing: the same sums.
	t12, err := UpdateTotals(ctx, conn, xu, &t8, folds12, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(t12.Parts) != len(folds12) || !t12.Current(folds12) || t12.index(FoldKey{gone.Key, gone.Version, PartMetric}) != 0 {
		t.Fatalf("updated totals hold %v, want the %d parts of the folds without the removed metric's", t12.Parts, len(folds12))
	}
	fresh, err := UpdateTotals(ctx, conn, xu, nil, folds12, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Rows > t12.Rows {
		t.Fatalf("totals from nothing hold %d contexts, from the previous ones %d", fresh.Rows, t12.Rows)
	}
	for name, tt := range map[string]*Totals{"updated": &t12, "from nothing": &fresh} {
		t.Run(name, func(t *testing.T) { check12(t, tt, 2) })
	}
	// The same with the units grouped by strings (a hash collision): the totals are not read.
	byStrings := u
	byStrings.distinctHashes = false
	if x.WithUnits(byStrings).HashedUnits() {
		t.Fatal("units without distinct hashes read totals")
	}
	if all, err := SumsOf(ctx, conn, x.WithUnits(byStrings), reqs[:1], Snapshot{FoldedUpTo: day12, Folds: folds12, Now: now, Totals: &t12}); err != nil {
		t.Fatal(err)
	} else {
		compare(t, all[0], expected(units, events, conv, now.UnixMilli(), false, nil, nil))
	}

	// A dropped partition is reported, and the sums that would read it are wrong (they read it).
	if err := CheckTotals(ctx, conn, t12); err != nil {
		t.Fatal(err)
	}
	if n, err := DropStaleTotals(ctx, conn, -time.Hour, map[int64]bool{t12.ID: true, fresh.ID: true}); err != nil || n != 1 {
		t.Fatalf("DropStaleTotals dropped %d (%v), want t8's partition only", n, err)
	}
	if err := DropTotals(ctx, conn, t12.ID); err != nil {
		t.Fatal(err)
	}
	if err := CheckTotals(ctx, conn, t12); !errors.Is(err, ErrTotalsGone) {
		t.Fatalf("checking dropped totals: %v, want ErrTotalsGone", err)
	}
	all, err := SumsOf(ctx, conn, xu, reqs[1:2], Snapshot{FoldedUpTo: day12, Folds: folds12, Now: now, Totals: &t12})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(all[0]) == fmt.Sprint(expected(units, events, count, now.UnixMilli(), false, nil, nil)) {
		t.Fatal("sums on dropped totals are right: the totals are not read")
	}
	_ = DropTotals(ctx, conn, fresh.ID)
}

// lateEvents are n purchases on one day by units first exposed before it, inside their
// conversion window, as if received after the day was folded.
func lateEvents(r *rand.Rand, units []unit, day time.Time, n int) []event {
	var out []event
	for _, u := range units {
		if len(out) == n {
			break
		}
		ts := day.Add(time.Duration(r.Int64N(int64(24 * time.Hour)))).UnixMilli()
		if u.multiple || ts <= u.firstMs || ts >= u.firstMs+(7*24*time.Hour).Milliseconds() {
			continue
		}
		out = append(out, event{id: uuid.New(), kind: "user", key: u.key, ts: ts, value: float64(1 + r.IntN(90)), currency: "EUR"})
	}
	return out
}
