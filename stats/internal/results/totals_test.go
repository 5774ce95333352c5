package results

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// TestRefreshesKeepTotals: the first refresh that folds adds the folds up into the experiment's
// totals and keeps them; refreshes that fold nothing read them as they are; a refresh that folds
// a day again (late events) writes them anew from the previous ones, taking the replaced fold
// away, and its results are those of totals written from nothing; totals whose partition went
// are written from nothing; the sweep drops totals no refresh read for a while, and a
// compaction forgets totals that still add up a fold no longer recorded.
func TestRefreshesKeepTotals(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	store, conn, w, x := f.store, f.conn, f.w, f.x
	start := metricsql.Day(f.start)
	now := start.Add(60 * time.Hour)
	w.now = func() time.Time { return now }
	refresh := func() *Snapshot {
		t.Helper()
		snap, err := w.Compute(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	totals := func() metricsql.Totals {
		t.Helper()
		tt, ok, err := store.Totals(ctx, x.ID)
		if err != nil || !ok {
			t.Fatalf("no totals recorded (%v)", err)
		}
		return tt
	}
	// revenue is the sum of every unit's purchases in its window: n × mean over the variations.
	revenue := func(s *Snapshot) float64 {
		total := 0.0
		for _, m := range s.Metrics {
			if m.Metric == "revenue" {
				for _, v := range m.Variants {
					total += float64(v.N) * *v.Mean
				}
			}
		}
		return total
	}

	first := refresh()
	t1 := totals()
	if len(t1.Parts) != 3 || !t1.Current(folds(t, store, x.ID)) || t1.Rows == 0 {
		t.Fatalf("totals %+v, want the 3 parts' recorded folds", t1)
	}
	totalsPartitions(t, conn, t1.ID)

	// Nothing folded since: the same totals, the same results.
	now = now.Add(10 * time.Minute)
	if second := refresh(); fmt.Sprint(results(second)) != fmt.Sprint(results(first)) || totals().ID != t1.ID {
		t.Fatalf("nothing new, but the totals or the results changed:\n%v\n%v", results(first), results(second))
	}

	// They are what the sums read: with the rollups set aside, the same results.
	for _, q := range []string{"RENAME TABLE experiment_metric_rollups TO rollups_aside", "CREATE TABLE experiment_metric_rollups AS rollups_aside"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	aside := refresh()
	for _, q := range []string{"DROP TABLE experiment_metric_rollups", "RENAME TABLE rollups_aside TO experiment_metric_rollups"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(results(aside)) != fmt.Sprint(results(first)) {
		t.Fatalf("the totals current, but the results changed without the rollups:\n%v\n%v", results(first), results(aside))
	}

	// A purchase of day 0 received late (1,000 in a day-0 unit's window): day 0 folded again,
	// the totals written anew from the previous ones, which are dropped. Counted once.
	insertLateTrack(t, conn, start, start.Add(23*time.Hour), start.Add(24*time.Hour-time.Second), now.Add(30*time.Minute), 1000)
	now = now.Add(12 * time.Hour)
	third := refresh()
	t2 := totals()
	if t2.ID == t1.ID || !t2.Current(folds(t, store, x.ID)) {
		t.Fatalf("a day folded again, but the totals were not written anew (%d, then %d)", t1.ID, t2.ID)
	}
	totalsPartitions(t, conn, t2.ID)
	for from, want := range map[string]float64{"from_nothing": 1, "from_previous": 1} {
		if got := testutil.ToFloat64(w.totalsUpdates.WithLabelValues(from)); got != want {
			t.Fatalf("%v totals written %s, want %v", got, from, want)
		}
	}
	if got := revenue(third) - revenue(first); math.Abs(got-1000) > 1e-6 {
		t.Fatalf("a late purchase of 1,000 moved the revenue by %v", got)
	}
	// The same results from totals written from nothing.
	if _, err := store.Forget(ctx, KeptTotals, x.ID, t2.ID); err != nil {
		t.Fatal(err)
	}
	if err := metricsql.DropTotals(ctx, conn, t2.ID); err != nil {
		t.Fatal(err)
	}
	if fourth := refresh(); fmt.Sprint(results(fourth)) != fmt.Sprint(results(third)) {
		t.Fatalf("totals updated and written from nothing give different results:\n%v\n%v", results(third), results(fourth))
	}
	t3 := totals()
	if t3.ID == t2.ID {
		t.Fatal("forgotten totals were read")
	}

	// Their partition gone behind the worker's back: written from nothing, the same results.
	if err := metricsql.DropTotals(ctx, conn, t3.ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	if fifth := refresh(); fmt.Sprint(results(fifth)) != fmt.Sprint(results(third)) {
		t.Fatalf("after the totals went: %v, want %v", results(fifth), results(third))
	}
	t4 := totals()
	if t4.ID == t3.ID {
		t.Fatal("totals whose partition went were read")
	}

	// Totals adding up a fold no longer recorded (a refresh failed between folding a day again
	// and writing them) are forgotten when a compaction may have deleted that fold's rows.
	stale := t4
	stale.Folds = metricsql.Folds{}
	for k, ids := range t4.Folds {
		stale.Folds[k] = append([]int64{42}, ids...)
	}
	if _, err := store.SetTotals(ctx, x.ID, stale, now); err != nil {
		t.Fatal(err)
	}
	if err := w.forgetStaleTotals(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store.Totals(ctx, x.ID); err != nil || ok {
		t.Fatalf("stale totals still recorded (%v)", err)
	}
	totalsPartitions(t, conn)

	// Not read for a while (the experiment stopped, say): the sweep drops them.
	refresh()
	t5 := totals()
	now = now.Add(w.idleUnits() - time.Minute)
	w.dropIdleKept(ctx)
	totalsPartitions(t, conn, t5.ID)
	now = now.Add(2 * time.Minute)
	w.dropIdleKept(ctx)
	totalsPartitions(t, conn)
	if _, ok, err := store.Totals(ctx, x.ID); err != nil || ok {
		t.Fatalf("idle totals still recorded (%v)", err)
	}
}

// TestTheDayJustEndedIsFoldedAfterTheSnapshot: the first refresh past a day's settle margin reads
// that day raw and folds it only once its snapshot is computed (then the totals), and its results
// are those of a refresh reading the day from the rollups; a refresh whose raw tail from the
// unfolded day would be too long for one read (metricsql.OneReadTail) folds the day first.
func TestTheDayJustEndedIsFoldedAfterTheSnapshot(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	store, w, x := f.store, f.w, f.x
	day0 := metricsql.Day(f.start)
	now := day0.Add(49*time.Hour + 30*time.Minute) // day 1 ended 1.5 h ago: a 25.5 h tail from its start
	w.now = func() time.Time { return now }
	// folded says which days every part has folded (all three parts must agree).
	folded := func() []string {
		t.Helper()
		var days []string
		for i, k := range fixtureParts {
			done, err := store.Folded(ctx, x.ID, k.Metric, k.Version, k.Part)
			if err != nil {
				t.Fatalf("folds of %+v: %v", k, err)
			}
			var these []string
			for d := range done {
				these = append(these, d.Format(time.DateOnly))
			}
			slices.Sort(these)
			if i > 0 && !slices.Equal(days, these) {
				t.Fatalf("%+v folded %v, another part %v", k, these, days)
			}
			days = these
		}
		return days
	}
	name := func(ds ...time.Time) (out []string) {
		for _, d := range ds {
			out = append(out, d.Format(time.DateOnly))
		}
		return out
	}
	day1, day2 := day0.Add(24*time.Hour), day0.Add(48*time.Hour)

	snap, after, err := w.compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if got := folded(); !slices.Equal(got, name(day0)) {
		t.Fatalf("days folded when the snapshot is computed: %v, want day 0 only (day 1 read raw)", got)
	}
	if err := after(ctx); err != nil {
		t.Fatal(err)
	}
	if got := folded(); !slices.Equal(got, name(day0, day1)) {
		t.Fatalf("days folded after the snapshot: %v, want days 0 and 1", got)
	}
	if tt, ok, err := store.Totals(ctx, x.ID); err != nil || !ok || !tt.Current(folds(t, store, x.ID)) {
		t.Fatalf("totals after the day's fold: %+v %v %v, want them current", tt, ok, err)
	}
	// The same clock, day 1 now read from the totals: the same results.
	again, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(results(snap)) == 0 || fmt.Sprint(results(again)) != fmt.Sprint(results(snap)) {
		t.Fatalf("day 1 read raw and from the rollups give different results:\n%v\n%v", results(snap), results(again))
	}

	// Three hours past day 2's end: its tail would be 27 h, so it is folded before the snapshot.
	now = day0.Add(75 * time.Hour)
	if _, after, err = w.compute(ctx, x); err != nil {
		t.Fatal(err)
	}
	if got := folded(); !slices.Equal(got, name(day0, day1, day2)) {
		t.Fatalf("days folded when the snapshot is computed: %v, want days 0 to 2", got)
	}
	if err := after(ctx); err != nil {
		t.Fatal(err)
	}
}

// folds are an experiment's recorded folds, as a refresh passes them to the sums.
func folds(t *testing.T, s *Store, experimentID string) metricsql.Folds {
	t.Helper()
	out := metricsql.Folds{}
	for _, k := range fixtureParts {
		done, err := s.Folded(context.Background(), experimentID, k.Metric, k.Version, k.Part)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range done {
			out[k] = append(out[k], f.ID)
		}
	}
	return out
}

// fixtureParts are the metric parts the fold fixture's experiment folds.
var fixtureParts = []metricsql.FoldKey{{Metric: "conversion", Version: 1}, {Metric: "revenue", Version: 3},
	{Metric: "revenue", Version: 3, Part: metricsql.PartCovariate}}

// results are a snapshot's per-variation n and mean of every metric, rounded to 9 digits.
func results(s *Snapshot) []string {
	var out []string
	for _, m := range s.Metrics {
		for _, v := range m.Variants {
			out = append(out, fmt.Sprintf("%s/%s: n %d mean %.9g", m.Metric, v.Key, v.N, *v.Mean))
		}
	}
	return out
}

// totalsPartitions asserts which totals partitions ClickHouse holds.
func totalsPartitions(t *testing.T, conn driver.Conn, want ...int64) {
	t.Helper()
	idsIn(t, conn, "experiment_metric_totals", "totals_id", want)
}

// TestOnDemandRefreshAnswersOnceItsSnapshotIsStored: an on-demand refresh that folds (the first
// one) answers its caller when its snapshot is stored, while its totals are still being written;
// the refresh goes on and records them. A second one asked for meanwhile is not refused as busy:
// it waits for the first to end and, the first having read the data up to its ask, is answered
// by its snapshot. One asked for later, while another replica holds the experiment, waits for
// it, then recomputes.
func TestOnDemandRefreshAnswersOnceItsSnapshotIsStored(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	x := f.x
	var clock atomic.Int64
	clock.Store(metricsql.Day(f.start).Add(60 * time.Hour).UnixNano())
	f.w.now = func() time.Time { return time.Unix(0, clock.Load()) }
	fakeExperiment(t, f.w, x)
	held, release := make(chan struct{}), make(chan struct{})
	var heldOnce, releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	f.w.beforeTotals = func() { heldOnce.Do(func() { close(held) }); <-release }

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.w.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	t.Cleanup(let) // runs first: Run waits for a held refresh

	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := f.w.Refresh(rctx, "shop", "checkout"); err != nil {
		t.Fatalf("on-demand refresh: %v (it waited for the totals?)", err)
	}
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("%d snapshots when the refresh answered, want 1", n)
	}
	<-held // the refresh is at its totals, which it has not written
	if _, ok, err := f.store.Totals(ctx, x.ID); err != nil || ok {
		t.Fatalf("totals recorded before the refresh wrote them (%v)", err)
	}
	// slots is how many refresh slots are taken while the second refresh waits: the waiting one
	// takes none, so other experiments' refreshes go on meanwhile.
	waitsThenAnswers := func(what string, slots int, unblock func()) {
		t.Helper()
		answered := make(chan error, 1)
		go func() { answered <- f.w.Refresh(rctx, "shop", "checkout") }()
		testenv.Eventually(t, 30*time.Second, what+" to wait for the experiment", func() bool {
			return testutil.ToFloat64(f.w.waiting) == 1
		})
		select {
		case err := <-answered:
			t.Fatalf("%s answered while the experiment was held: %v", what, err)
		default:
		}
		if n := len(f.w.slots); n != slots {
			t.Fatalf("%s: %d refresh slots taken while it waits, want %d (the waiting refresh holds none)", what, n, slots)
		}
		unblock()
		if err := <-answered; err != nil {
			t.Fatalf("%s: %v, want it to wait and be answered", what, err)
		}
	}
	waitsThenAnswers("a refresh asked for while the first wrote its totals", 1, let)
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("%d snapshots after the second refresh, want the first's only: it read the data up to the ask", n)
	}
	// Counted as the waiting refresh ends, which may be just after its caller was answered.
	testenv.Eventually(t, 30*time.Second, "the waiting refresh to be counted as answered by the one it waited for", func() bool {
		return testutil.ToFloat64(f.w.refreshes.WithLabelValues("joined")) == 1
	})
	testenv.Eventually(t, 30*time.Second, "the refresh to record its totals", func() bool {
		tt, ok, err := f.store.Totals(ctx, x.ID)
		return err == nil && ok && tt.Current(folds(t, f.store, x.ID))
	})

	clock.Add(int64(5 * time.Minute))
	other, ok, err := f.store.TryLock(ctx, "results:"+x.ID) // another replica
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	var otherOnce sync.Once
	t.Cleanup(func() { otherOnce.Do(other) })
	waitsThenAnswers("a refresh asked for while another replica held the experiment", 0, func() { otherOnce.Do(other) })
	if n := snapshotCount(t, f.store, x.ID); n != 2 {
		t.Fatalf("%d snapshots after a refresh asked for past the last one's data, want 2", n)
	}
}

// TestOnDemandRefreshesWaitingAreBounded: at most -results-concurrency on-demand refreshes wait
// for their experiment at once (each may hold a Postgres connection); the others queue for a
// place, and every one is answered once the experiment is free.
func TestOnDemandRefreshesWaitingAreBounded(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	x := f.x
	start := metricsql.Day(f.start).Add(60 * time.Hour)
	f.w.now = func() time.Time { return start }
	fakeExperiment(t, f.w, x)
	f.w.waiters = make(chan struct{}, 1)                    // the bound of -results-concurrency 1, before Run reads it
	other, ok, err := f.store.TryLock(ctx, "results:"+x.ID) // another replica refreshes it
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	var otherOnce sync.Once
	t.Cleanup(func() { otherOnce.Do(other) })

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.w.Run(runCtx) }()
	var stopOnce sync.Once
	stopWorker := func() { stopOnce.Do(func() { stop(); <-done }) }
	t.Cleanup(stopWorker)

	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	ask := func() <-chan error {
		answered := make(chan error, 2)
		for range 2 {
			go func() { answered <- f.w.Refresh(rctx, "shop", "checkout") }()
		}
		testenv.Eventually(t, 30*time.Second, "one refresh to wait for the experiment and the other to queue for a place", func() bool {
			return testutil.ToFloat64(f.w.waiting) == 1 && testutil.ToFloat64(f.w.queued) == 1
		})
		return answered
	}
	answered := ask()
	otherOnce.Do(other)
	for range 2 {
		if err := <-answered; err != nil {
			t.Fatalf("on-demand refresh: %v, want it answered once the experiment was free", err)
		}
	}
	if q, w := testutil.ToFloat64(f.w.queued), testutil.ToFloat64(f.w.waiting); q != 0 || w != 0 {
		t.Fatalf("%v queued and %v waiting after both were answered", q, w)
	}

	// The worker stopping ends both waits with an error: neither caller is told a snapshot
	// was stored.
	// (The refresh that recomputed may still hold it, writing its totals.)
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	defer lcancel()
	other, err = f.store.Lock(lctx, "results:"+x.ID)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer other()
	answered = ask()
	stopWorker()
	for range 2 {
		if err := <-answered; err == nil {
			t.Fatal("an on-demand refresh waiting when the worker stopped was answered as stored")
		}
	}
}
