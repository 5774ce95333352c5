package results

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestDueBacksOffWithoutOverflow: the backoff after failures doubles up to an hour, and an
// interval longer than that is the backoff itself — also one so long that shifting it
// overflows (a shifted 2^48 ns + 50 ms wraps round to 55 minutes).
func TestDueBacksOffWithoutOverflow(t *testing.T) {
	failed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		interval time.Duration
		failures int
		want     time.Duration // after the failure
	}{
		{"first failure", 5 * time.Minute, 1, 5*time.Minute - 30*time.Second},
		{"third failure", 5 * time.Minute, 3, 20*time.Minute - 30*time.Second},
		{"capped", 5 * time.Minute, 40, time.Hour - 30*time.Second},
		{"interval over the cap", 2 * time.Hour, 5, 2*time.Hour - 12*time.Minute},
		{"interval whose shift overflows", 1<<48 + 50*time.Millisecond, 17, (1<<48 + 50*time.Millisecond) * 9 / 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := NewWorker(Config{Interval: c.interval}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			got := w.dueAt(RefreshState{FailedAt: failed, Failures: c.failures})
			if d := got.Sub(failed); d < c.want-time.Millisecond || d > c.want+time.Millisecond {
				t.Fatalf("due %v after the failure, want %v", d, c.want)
			}
		})
	}
}

// TestFinalResultsBackOffAfterFailures: a stopped experiment whose final refreshes keep failing
// is retried on the running experiments' backoff, not at every sweep.
func TestFinalResultsBackOffAfterFailures(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	x := f.x
	stopped := f.start.Add(60 * time.Hour)
	x.Status, x.StoppedAt = "stopped", &stopped
	fakeListed(t, f.w, "stopped", x)
	now := stopped.Add(30 * time.Minute)
	f.w.now = func() time.Time { return now }
	for _, ago := range []time.Duration{16 * time.Minute, 6 * time.Minute} {
		if err := f.store.RecordFailure(ctx, x.ID, now.Add(-ago), errors.New("code: 241, Memory limit (for query) exceeded")); err != nil {
			t.Fatal(err)
		}
	}
	f.w.sweep(ctx)
	if n := snapshotCount(t, f.store, x.ID); n != 0 {
		t.Fatalf("final results refreshed 6 minutes after a second failure in a row: %d snapshots, want 0 (backoff 10 minutes)", n)
	}
	now = now.Add(4 * time.Minute)
	f.w.sweep(ctx)
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("final results after the backoff: %d snapshots, want 1", n)
	}
}

// TestThinningDoesNotHoldUpOnDemandRefreshes: while the worker's thinning is stuck (its first
// run over a big table, here a row it must delete locked by someone else), an on-demand
// refresh is computed; the thinning ends once the row is free.
func TestThinningDoesNotHoldUpOnDemandRefreshes(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	x := f.x
	now := f.start.Add(60 * time.Hour)
	f.w.now = func() time.Time { return now }
	f.w.cfg.Retention = Retention{KeepAll: 24 * time.Hour, KeepHourly: 24 * time.Hour}
	fakeExperiment(t, f.w, x)

	// Five snapshots of one day, ten days ago: thinning deletes the three in the middle.
	old := uuid.NewString()
	for i := range 5 {
		if err := f.store.SaveSnapshot(ctx, old, &Snapshot{Status: "running", ComputedAt: now.Add(-10*24*time.Hour + time.Duration(i)*time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	release := lockRows(t, f.store, `SELECT 1 FROM results_snapshots WHERE experiment_id = $1 ORDER BY computed_at OFFSET 2 LIMIT 1 FOR UPDATE`, old)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.w.Run(runCtx) }()
	defer func() { stop(); <-done }()
	testenv.Eventually(t, 20*time.Second, "the thinning to wait for the locked row", func() bool {
		var n int
		err := f.store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM results_snapshots%'`).Scan(&n)
		return err == nil && n == 1
	})
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := f.w.Refresh(rctx, "shop", "checkout"); err != nil {
		t.Fatalf("on-demand refresh while thinning: %v", err)
	}
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("%d snapshots after the refresh, want 1", n)
	}
	release()
	testenv.Eventually(t, 20*time.Second, "the thinning to end", func() bool { return snapshotCount(t, f.store, old) == 2 })
}

// TestRefreshAfterTheWorkerStopped: a refresh asked for while the service shuts down (Run has
// returned) answers at once that the worker stopped, instead of waiting for its caller's
// timeout (two minutes for the API) and holding up the shutdown.
func TestRefreshAfterTheWorkerStopped(t *testing.T) {
	f := newFoldFixture(t)
	fakeRunning(t, f.w) // no experiments
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.w.Refresh(wait, "shop", "checkout"); !errors.Is(err, ErrStopped) {
		t.Fatalf("refresh after the worker stopped: %v, want ErrStopped", err)
	}
}

// lockRows locks the rows query (a SELECT … FOR UPDATE) selects, from a connection of its own,
// until release is called (or the test ends).
func lockRows(t *testing.T, store *Store, query string, args ...any) (release func()) {
	t.Helper()
	ctx := context.Background()
	blocker, err := pg.Connect(ctx, store.Pool.Config().ConnString(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(blocker.Close)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, query, args...); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
