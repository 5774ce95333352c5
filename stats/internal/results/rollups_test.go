package results

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// rollupRows counts an experiment's rollup rows in ClickHouse (in the fixture's environment),
// and the sum of a hash of them.
func rollupRows(t *testing.T, f foldFixture, key, where string) (n, sum uint64) {
	t.Helper()
	return envRollupRows(t, f, fixtureEnv, key, where)
}

// envRollupRows is rollupRows in another environment.
func envRollupRows(t *testing.T, f foldFixture, env, key, where string) (n, sum uint64) {
	t.Helper()
	if err := f.conn.QueryRow(context.Background(), `SELECT count(), sum(cityHash64(metric_key, part, day, fold_id, context_key, events, value_sum))
		FROM experiment_metric_rollups WHERE environment_id = ? AND experiment_key = ? AND `+where, env, key).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

func foldRows(t *testing.T, s *Store, experimentID string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM results_folds WHERE experiment_id = $1`, experimentID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeAll serves xs in the flag service's lists by their status.
func fakeAll(t *testing.T, w *Worker, xs ...flagsvc.Experiment) {
	t.Helper()
	fakeFlags(t, w, func(r *http.Request) any { return listedByStatus(r, xs) })
}

// listedByStatus is the flag service's answer to an experiment list request: those of xs with
// the status asked for.
func listedByStatus(r *http.Request, xs []flagsvc.Experiment) map[string]any {
	items := []flagsvc.Experiment{}
	for _, x := range xs {
		if r.URL.Path == "/api/v1/experiments" && r.URL.Query().Get("status") == x.Status {
			items = append(items, x)
		}
	}
	return map[string]any{"items": items}
}

// stoppedFixture: the fold fixture with a 30-day rollup retention and its experiment in status
// (stopped or concluded), stopped 60 hours after its start.
func stoppedFixture(t *testing.T, status string) (foldFixture, flagsvc.Experiment, time.Time) {
	t.Helper()
	f := newFoldFixture(t)
	f.w.cfg.RollupRetention = 30 * 24 * time.Hour
	stopped := f.start.Add(60 * time.Hour)
	x := f.x
	x.Status, x.StoppedAt = status, &stopped
	return f, x, stopped
}

// TestRollupsOfAFinishedExperimentAreDropped: an experiment stopped LateWindow + the rollup
// retention ago loses its rollup partitions and its recorded folds (not a minute earlier, not
// while it is being refreshed, and no other experiment's rows); running the maintenance
// again changes nothing; a refresh afterwards is refused (ErrFinal): the final snapshot stands.
func TestRollupsOfAFinishedExperimentAreDropped(t *testing.T) {
	ctx := context.Background()
	f, x, stopped := stoppedFixture(t, "stopped")
	w := f.w
	// Another experiment's rollups in the same environment and months.
	other := x
	other.ID, other.Key, other.Status, other.StoppedAt = "00000000-0000-4000-8000-000000000001", "other", "running", nil
	if err := f.conn.Exec(ctx, `INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT ?, 'other', 'conversion', toUInt64(1), toUInt8(0), toDate(toDateTime(?)) + number % 3, toUInt64(7), 'user', toString(number), 1, 1
		FROM numbers(1000)`, fixtureEnv, f.start.Unix()); err != nil {
		t.Fatal(err)
	}
	fakeAll(t, w, x, other)

	w.now = func() time.Time { return stopped.Add(2 * time.Hour) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatal(err)
	}
	final, err := f.store.Snapshots(ctx, x.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	if rows == 0 || foldRows(t, f.store, x.ID) != 6 {
		t.Fatalf("before the maintenance: %d rollup rows, %d recorded folds", rows, foldRows(t, f.store, x.ID))
	}
	expires := stopped.Add(w.cfg.LateWindow + w.cfg.RollupRetention)

	maintainAt(ctx, w, expires.Add(-time.Minute))
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != rows || foldRows(t, f.store, x.ID) != 6 {
		t.Fatalf("a minute before the retention ends: %d rollup rows (want %d), %d folds", n, rows, foldRows(t, f.store, x.ID))
	}

	// Being refreshed (its lock held): left for the next run.
	w.now = func() time.Time { return expires }
	release, ok, err := f.store.TryLock(ctx, "results:"+x.ID)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	w.maintainRollups(ctx)
	release()
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != rows {
		t.Fatalf("dropped while being refreshed: %d rollup rows, want %d", n, rows)
	}

	otherRows, otherSum := rollupRows(t, f, "other", "1")
	for range 2 {
		w.maintainRollups(ctx)
		if n, _ := rollupRows(t, f, fixtureKey, "1"); n != 0 || foldRows(t, f.store, x.ID) != 0 {
			t.Fatalf("after the retention: %d rollup rows, %d recorded folds, want none", n, foldRows(t, f.store, x.ID))
		}
		if n, sum := rollupRows(t, f, "other", "1"); n != otherRows || sum != otherSum || n != 1000 {
			t.Fatalf("the other experiment's rollups: %d rows (sum %d), want %d (sum %d)", n, sum, otherRows, otherSum)
		}
	}

	// Its results are final now: a refresh is refused (the raw events may be gone too), and
	// neither the final snapshot nor the (dropped) rollups change.
	if err := w.refresh(ctx, x); !errors.Is(err, ErrFinal) {
		t.Fatalf("a refresh after the drop: %v, want ErrFinal", err)
	}
	again, err := f.store.Snapshots(ctx, x.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(final[0])
	b, _ := json.Marshal(again[0])
	if string(a) != string(b) || len(final[0].Metrics) != 2 {
		t.Fatalf("the final snapshot changed after the drop:\n%s\n%s", a, b)
	}
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != 0 || foldRows(t, f.store, x.ID) != 0 {
		t.Fatalf("after the refused refresh: %d rollup rows, %d folds, want none", n, foldRows(t, f.store, x.ID))
	}
}

// TestRollupRetentionZeroKeepsRollups: -results-rollup-retention 0 keeps them forever.
func TestRollupRetentionZeroKeepsRollups(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	w, x := f.w, f.x
	stopped := f.start.Add(60 * time.Hour)
	x.Status, x.StoppedAt = "stopped", &stopped
	fakeAll(t, w, x)
	w.now = func() time.Time { return stopped.Add(2 * time.Hour) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatal(err)
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	maintainAt(ctx, w, stopped.Add(10*365*24*time.Hour))
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != rows || rows == 0 {
		t.Fatalf("retention 0: %d rollup rows left of %d", n, rows)
	}
}

// TestClosedMonthsLoseReplacedFolds: once a month of an experiment is closed (its last day
// LateWindow + Settle past its end), its rollups are rewritten without the rows of folds that
// are not recorded (a day folded again), the recorded folds' rows are kept exactly, the results
// do not change, and the month is not rewritten again until a fold of it is recorded.
func TestClosedMonthsLoseReplacedFolds(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	w, x := f.w, f.x
	now := f.start.Add(60 * time.Hour)
	w.now = func() time.Time { return now }
	fakeAll(t, w, x)
	first, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	folds := recordedFolds(t, f.store, x.ID)
	recorded := "fold_id IN ("
	for _, id := range folds {
		recorded += "toUInt64(" + jsonNumber(id) + "),"
	}
	recorded = recorded[:len(recorded)-1] + ")"
	keptRows, keptSum := rollupRows(t, f, fixtureKey, recorded)
	// Day 0 folded again behind the worker's back: rows nobody reads.
	qx := metricsql.Experiment{EnvironmentID: fixtureEnv, Key: fixtureKey, Start: f.start}
	for _, k := range []string{"conversion", "revenue"} {
		_, q, _ := w.defs.Query(ctx, x.Project, k, x.MetricVersions)
		if _, err := metricsql.FoldDay(ctx, f.conn, qx, q, f.start); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := rollupRows(t, f, fixtureKey, "NOT "+recorded); n == 0 {
		t.Fatal("no replaced rows to delete")
	}

	// Not closed yet: kept.
	w.maintainRollups(ctx)
	if n, _ := rollupRows(t, f, fixtureKey, "NOT "+recorded); n == 0 {
		t.Fatal("replaced rows deleted before their month closed")
	}

	maintainAt(ctx, w, now.Add(62*24*time.Hour))
	if n, _ := rollupRows(t, f, fixtureKey, "NOT "+recorded); n != 0 {
		t.Fatalf("%d rows of replaced folds left", n)
	}
	if n, sum := rollupRows(t, f, fixtureKey, "1"); n != keptRows || sum != keptSum {
		t.Fatalf("after the compaction %d rows (sum %d), want the recorded folds' %d (sum %d)", n, sum, keptRows, keptSum)
	}
	var left uint64
	if err := f.conn.QueryRow(ctx, `SELECT count() FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'experiment_metric_rollups_compact_')`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d staging tables left (%v)", left, err)
	}
	w.now = func() time.Time { return now }
	second, err := w.Compute(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(first.Metrics)
	b, _ := json.Marshal(second.Metrics)
	if string(a) != string(b) {
		t.Fatalf("results changed by the compaction:\n%s\n%s", a, b)
	}
	todo, err := f.store.MonthsToCompact(ctx, metricsql.Day(now.Add(62*24*time.Hour)))
	if err != nil || len(todo) != 0 {
		t.Fatalf("months still to compact after the compaction: %v %v", todo, err)
	}
}

func jsonNumber(id int64) string {
	b, _ := json.Marshal(uint64(id))
	return string(b)
}

// TestRollupDropInterruptedAfterForgettingFolds: a maintenance interrupted after it forgot an
// expired experiment's folds and before its rollups were dropped (a crash, a shutdown, ClickHouse
// refusing the drop) leaves the experiment final all the same: a refresh meanwhile is refused
// (it would fold every day again from raw events the raw-event retention may have deleted, and
// replace the final snapshot), and the next maintenance finishes the drop.
func TestRollupDropInterruptedAfterForgettingFolds(t *testing.T) {
	ctx := context.Background()
	f, x, stopped := stoppedFixture(t, "stopped")
	w := f.w
	fakeAll(t, w, x)
	// Its last snapshot stops short of the stop (its final refreshes failed, say), so only the
	// mark makes it final: past the late window, results reaching the stop are final anyway.
	w.now = func() time.Time { return stopped.Add(-time.Hour) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatal(err)
	}
	final, err := f.store.Snapshots(ctx, x.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")

	w.now = func() time.Time { return stopped.Add(w.cfg.LateWindow + w.cfg.RollupRetention) }
	w.afterForget = func() error { return errors.New("crashed after forgetting the folds") }
	w.maintainRollups(ctx)
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != rows || foldRows(t, f.store, x.ID) != 0 {
		t.Fatalf("interrupted: %d rollup rows (want %d), %d folds (want 0)", n, rows, foldRows(t, f.store, x.ID))
	}
	if err := w.refresh(ctx, x); !errors.Is(err, ErrFinal) {
		t.Fatalf("a refresh between the steps: %v, want ErrFinal", err)
	}
	again, err := f.store.Snapshots(ctx, x.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(final[0]), jsonOf(again[0]); a != b {
		t.Fatalf("the final snapshot changed:\n%s\n%s", a, b)
	}

	w.afterForget = nil
	for range 2 {
		w.maintainRollups(ctx)
		if n, _ := rollupRows(t, f, fixtureKey, "1"); n != 0 || foldRows(t, f.store, x.ID) != 0 {
			t.Fatalf("the next maintenance: %d rollup rows, %d folds, want none", n, foldRows(t, f.store, x.ID))
		}
	}
	if err := w.refresh(ctx, x); !errors.Is(err, ErrFinal) {
		t.Fatalf("a refresh after the drop: %v, want ErrFinal", err)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCompactionKeepsFoldsStampedInTheServersZone: a fold's rows carry day =
// toDate(toDateTime(day)) in the ClickHouse server's time zone, the UTC day before on a server
// west of UTC, so a fold of the 1st of a month (a UTC day in results_folds) lies in the previous
// month's partition there. Compacting that month keeps its rows, and still deletes the rows of
// replaced folds. (The shared test server runs in UTC: the rows are written as a server in
// America/New_York writes them.)
func TestCompactionKeepsFoldsStampedInTheServersZone(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	w, x := f.w, f.x
	fakeAll(t, w, x)
	sep15 := time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)
	oct1 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	write := func(day time.Time, fold uint64) {
		if err := f.conn.Exec(ctx, `INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
			context_kind, context_key, events, value_sum)
			SELECT ?, ?, 'conversion', toUInt64(1), toUInt8(0), toDate(toDateTime(?, 'America/New_York')), toUInt64(?), 'user', toString(number), 1, 1
			FROM numbers(100)`, fixtureEnv, fixtureKey, day.Unix(), fold); err != nil {
			t.Fatal(err)
		}
	}
	write(sep15, 11)
	write(sep15, 12) // replaced by fold 11: nobody reads it
	write(oct1, 13)  // stamped 2026-09-30: in September's partition
	for _, r := range []struct {
		day  time.Time
		fold int64
	}{{sep15, 11}, {oct1, 13}} {
		if err := f.store.MarkFolded(ctx, x.ID, "conversion", 1, 0, r.day, Fold{ID: r.fold, CheckedAt: r.day.Add(300 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	maintainAt(ctx, w, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC))
	if n, _ := rollupRows(t, f, fixtureKey, "fold_id = 12"); n != 0 {
		t.Fatalf("%d rows of the replaced fold left", n)
	}
	for _, fold := range []string{"11", "13"} {
		if n, _ := rollupRows(t, f, fixtureKey, "fold_id = "+fold); n != 100 {
			t.Fatalf("recorded fold %s: %d rows left, want 100", fold, n)
		}
	}
}

// TestStoppedExperimentIsFinalAfterItsLateWindow: once nothing received can count any more
// (LateWindow + Settle after the stop), a stopped experiment whose last snapshot reaches the
// stop is not recomputed (ErrFinal; the raw-event retention may have deleted its stop day,
// which is always read raw). Before that, or without results that reach the stop, it is.
func TestStoppedExperimentIsFinalAfterItsLateWindow(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	w, x := f.w, f.x
	stopped := f.start.Add(60 * time.Hour)
	x.Status, x.StoppedAt = "stopped", &stopped
	fakeAll(t, w, x)
	closes := stopped.Add(w.cfg.LateWindow + w.cfg.Settle)

	// Results short of the stop: recomputed even past the late window.
	w.now = func() time.Time { return stopped.Add(-time.Hour) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return closes.Add(time.Hour) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatalf("results short of the stop, past the late window: %v, want a refresh", err)
	}
	// Now they reach the stop: a minute before the window closes still refreshed, then final.
	w.now = func() time.Time { return closes.Add(-time.Minute) }
	if err := w.refresh(ctx, x); err != nil {
		t.Fatalf("within the late window: %v, want a refresh", err)
	}
	last, err := f.store.Snapshots(ctx, x.ID, 1)
	if err != nil || !last[0].DataTo.Equal(stopped) {
		t.Fatalf("last snapshot %+v (%v): want it up to the stop %v", last, err, stopped)
	}
	w.now = func() time.Time { return closes }
	if err := w.refresh(ctx, x); !errors.Is(err, ErrFinal) {
		t.Fatalf("past the late window with results up to the stop: %v, want ErrFinal", err)
	}
	if again, _ := f.store.Snapshots(ctx, x.ID, 1); jsonOf(again[0]) != jsonOf(last[0]) {
		t.Fatalf("the final snapshot changed")
	}
}

// TestRollupsWithoutARecordedFoldAreDropped: an experiment whose only fold crashed before it was
// recorded (rows under a fold id nobody recorded, no snapshot) and that never refreshed again
// still has its rollups dropped once it is finished plus the retention.
func TestRollupsWithoutARecordedFoldAreDropped(t *testing.T) {
	ctx := context.Background()
	f, x, stopped := stoppedFixture(t, "stopped")
	w := f.w
	fakeAll(t, w, x)
	// What a refresh does before its first fold, then the fold, then nothing (a crash).
	if err := f.store.RememberExperiment(ctx, x.ID, x.EnvironmentID, x.Project, x.Key); err != nil {
		t.Fatal(err)
	}
	q := &metricsql.Metric{Key: "conversion", Version: 1, Kind: metricsql.Proportion, EventKey: "purchase", WindowEnd: 7 * 24 * time.Hour}
	if _, err := metricsql.FoldDay(ctx, f.conn, metricsql.Experiment{EnvironmentID: fixtureEnv, Key: fixtureKey, Start: f.start}, q,
		metricsql.Day(f.start)); err != nil {
		t.Fatal(err)
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	if rows == 0 || foldRows(t, f.store, x.ID) != 0 {
		t.Fatalf("before the maintenance: %d rollup rows, %d recorded folds; want rows and no fold", rows, foldRows(t, f.store, x.ID))
	}
	expires := stopped.Add(w.cfg.LateWindow + w.cfg.RollupRetention)
	maintainAt(ctx, w, expires.Add(-time.Minute))
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != rows {
		t.Fatalf("a minute before the retention ends: %d rollup rows, want %d", n, rows)
	}
	maintainAt(ctx, w, expires)
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != 0 {
		t.Fatalf("after the retention: %d rollup rows, want none", n)
	}
	if ids, err := f.store.ExperimentsWithRollups(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("after the drop the maintenance still looks at %v (%v)", ids, err)
	}
}
