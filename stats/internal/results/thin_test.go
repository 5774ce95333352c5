package results

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestThinGoesOneExperimentAtATimeAndStopsWhenCancelled: Thin thins each experiment with the
// retention rules in its own statement. While it waits on a row of the second experiment
// (locked by someone else), cancelling its context makes it return at once with the first
// experiment's deletions committed and the others untouched; a later Thin finishes the job
// and each experiment keeps exactly what the rules say.
func TestThinGoesOneExperimentAtATimeAndStopsWhenCancelled(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(30*24*time.Hour + 12*time.Hour)
	ret := Retention{KeepAll: 7 * 24 * time.Hour, KeepHourly: 14 * 24 * time.Hour}
	h0 := midnight(now.Add(-10 * 24 * time.Hour)) // in the hourly range
	// Thin goes through the experiments in id order: daily, hourly, then running.
	daily, hourly, running := "1"+uuid.NewString()[1:], "2"+uuid.NewString()[1:], "3"+uuid.NewString()[1:]
	insertSnapshots(t, store, []snapshotSeries{
		// daily: 3 days running long ago (daily range), stopped an hour later.
		{daily, "running", t0.Add(time.Minute), t0.Add(3*24*time.Hour - 4*time.Minute)},
		{daily, "stopped", t0.Add(3*24*time.Hour + time.Hour), t0.Add(3*24*time.Hour + time.Hour)},
		// hourly: 1 day running 10 days ago (hourly range), stopped 10 minutes later.
		{hourly, "running", h0.Add(time.Minute), h0.Add(24*time.Hour - 4*time.Minute)},
		{hourly, "stopped", h0.Add(24*time.Hour + 10*time.Minute), h0.Add(24*time.Hour + 10*time.Minute)},
		// running: 3 days running long ago, no stop.
		{running, "running", t0.Add(time.Minute), t0.Add(3*24*time.Hour - 4*time.Minute)},
	})
	const dailyAll, hourlyAll, runningAll = 3*288 + 1, 288 + 1, 3 * 288

	// Someone else holds a row of the second experiment that Thin must delete.
	release := lockRows(t, store, `SELECT 1 FROM results_snapshots WHERE experiment_id = $1 AND computed_at = $2 FOR UPDATE`,
		hourly, h0.Add(6*time.Minute))
	thinCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := store.Thin(thinCtx, ret, now)
		done <- result{n, err}
	}()
	testenv.Eventually(t, 20*time.Second, "the thinning to wait for the locked row", func() bool {
		var n int
		err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM results_snapshots%'`).Scan(&n)
		return err == nil && n == 1
	})
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Thin did not stop within 10s of its context being cancelled")
	}
	if !errors.Is(res.err, context.Canceled) {
		t.Errorf("cancelled Thin returned %v, want context.Canceled", res.err)
	}
	if got := snapshotCount(t, store, daily); got != 5 || res.n != dailyAll-5 {
		t.Fatalf("after the cancelled Thin (reported %d deleted): the first experiment has %d snapshots, want 5 (its deletions committed)", res.n, got)
	}
	if h, r := snapshotCount(t, store, hourly), snapshotCount(t, store, running); h != hourlyAll || r != runningAll {
		t.Fatalf("after the cancelled Thin: %d and %d snapshots of the later experiments, want them untouched (%d, %d)", h, r, hourlyAll, runningAll)
	}

	release()
	var want = map[string][]time.Time{
		daily: {t0.Add(time.Minute), t0.Add(24*time.Hour - 4*time.Minute), t0.Add(48*time.Hour - 4*time.Minute),
			t0.Add(72*time.Hour - 4*time.Minute), t0.Add(72*time.Hour + time.Hour)},
		running: {t0.Add(time.Minute), t0.Add(24*time.Hour - 4*time.Minute), t0.Add(48*time.Hour - 4*time.Minute),
			t0.Add(72*time.Hour - 4*time.Minute)},
	}
	want[hourly] = []time.Time{h0.Add(time.Minute)} // the first, each hour's latest, the stop
	for h := range 24 {
		want[hourly] = append(want[hourly], h0.Add(time.Duration(h)*time.Hour+56*time.Minute))
	}
	want[hourly] = append(want[hourly], h0.Add(24*time.Hour+10*time.Minute))
	// The cancelled DELETE may still run on the server once the lock is free (cancelling the
	// client does not always reach it first): whatever it deleted by the rules stays deleted.
	testenv.Eventually(t, 20*time.Second, "the cancelled thinning to end on the server", func() bool {
		var n int
		err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%DELETE FROM results_snapshots%'`).Scan(&n)
		return err == nil && n == 0
	})
	left := snapshotCount(t, store, hourly) + snapshotCount(t, store, running)
	n, err := store.Thin(ctx, ret, now)
	if err != nil {
		t.Fatal(err)
	}
	if wantN := int64(left - len(want[hourly]) - len(want[running])); n != wantN {
		t.Errorf("second Thin deleted %d, want %d", n, wantN)
	}
	for id, w := range want {
		rows, err := store.Pool.Query(ctx, `SELECT computed_at FROM results_snapshots WHERE experiment_id = $1 ORDER BY computed_at`, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []time.Time
		var at time.Time
		if _, err := pgxForEach(rows, &at, func() { got = append(got, at.UTC()) }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(w) {
			t.Fatalf("experiment %s kept %v, want %v", id, got, w)
		}
		for i := range got {
			if !got[i].Equal(w[i]) {
				t.Fatalf("experiment %s kept %v, want %v", id, got, w)
			}
		}
	}
	if n, err := store.Thin(ctx, ret, now); err != nil || n != 0 {
		t.Fatalf("third Thin deleted %d (%v), want 0", n, err)
	}
}
