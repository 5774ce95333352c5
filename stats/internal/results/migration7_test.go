package results

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestMigration7ForgetsOnlyFoldsThatWillBeFoldedAgain: the mean-value migration forgets the
// folds of running experiments (and of experiments without a snapshot), which their next
// refresh folds again under the new rule, and keeps a stopped experiment's: it is final once
// its late window closes, and rollup retention finds its rollups by those folds.
func TestMigration7ForgetsOnlyFoldsThatWillBeFoldedAgain(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	up, err := migrations.ReadFile("migrations/00007_mean_value_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql, _, _ := strings.Cut(strings.SplitN(string(up), "-- +goose Up", 2)[1], "-- +goose Down")
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	ids := map[string]string{"running": uuid.NewString(), "stopped": uuid.NewString(), "no snapshot": uuid.NewString(), "was running, now stopped": uuid.NewString()}
	for name, id := range ids {
		if err := store.MarkFolded(ctx, id, "conversion", 1, 0, day, Fold{ID: 7, CheckedAt: day.Add(25 * time.Hour)}); err != nil {
			t.Fatal(name, err)
		}
	}
	snap := func(id, status string, at time.Time) {
		t.Helper()
		if err := store.SaveSnapshot(ctx, id, &Snapshot{Project: "shop", Experiment: "x", Status: status, ComputedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	snap(ids["running"], "stopped", day) // older snapshots do not count, the latest does
	snap(ids["running"], "running", day.Add(time.Hour))
	snap(ids["stopped"], "stopped", day.Add(time.Hour))
	snap(ids["was running, now stopped"], "running", day)
	snap(ids["was running, now stopped"], "stopped", day.Add(time.Hour))
	if _, err := store.Pool.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	for name, keep := range map[string]bool{"running": false, "no snapshot": false, "stopped": true, "was running, now stopped": true} {
		var n int
		if err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM results_folds WHERE experiment_id = $1`, ids[name]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != keep {
			t.Errorf("%s: %d folds left, want kept %t", name, n, keep)
		}
	}
}
