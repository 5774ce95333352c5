package results

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
)

// TestSweepComputesAStoppedExperimentsFinalResults: a sweep refreshes running experiments, and
// an experiment stopped since its last snapshot up to its stop time — its frozen results
// include the data of the interval before the stop — until a sweep has run a settle margin
// after the stop, and not again after that.
func TestSweepComputesAStoppedExperimentsFinalResults(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	x := f.x
	stopped := f.start.Add(60 * time.Hour)
	x.Status, x.StoppedAt = "stopped", &stopped
	var listed atomic.Int32
	fakeFlags(t, f.w, func(r *http.Request) any {
		items := []flagsvc.Experiment{}
		if r.URL.Path == "/api/v1/experiments" && r.URL.Query().Get("status") == "stopped" {
			items = append(items, x)
			listed.Add(1)
		}
		return map[string]any{"items": items}
	})
	// The last snapshot before the stop was taken a day earlier.
	early := x
	early.StoppedAt = nil
	f.w.now = func() time.Time { return stopped.Add(-24 * time.Hour) }
	snap, err := f.w.Compute(ctx, early)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.SaveSnapshot(ctx, x.ID, snap); err != nil {
		t.Fatal(err)
	}

	// Sweeps within the settle margin after the stop compute the results up to the stop time
	// (events of its last minutes may still be on their way to ClickHouse); the first sweep
	// after the margin computes them a last time; later sweeps leave them.
	for i, at := range []time.Duration{10 * time.Minute, 20 * time.Minute, 2 * time.Hour, 3 * time.Hour} {
		f.w.now = func() time.Time { return stopped.Add(at) }
		f.w.sweep(ctx)
		snaps, err := f.store.Snapshots(ctx, x.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := min(i+2, 4)
		if listed.Load() == 0 || len(snaps) != want || !snaps[0].DataTo.Equal(stopped) || snaps[0].Status != "stopped" {
			t.Fatalf("%v after the stop: %d snapshots (listed %d times), newest up to %v; want %d, up to %v",
				at, len(snaps), listed.Load(), snaps[0].DataTo, want, stopped)
		}
	}
	// Long after its stop (past the late window) an experiment without final results is left alone.
	f.w.now = func() time.Time { return stopped.Add(f.w.cfg.LateWindow + time.Hour) }
	x.ID = uuid.NewString()
	f.w.sweep(ctx)
	if snaps, _ := f.store.Snapshots(ctx, x.ID, 10); len(snaps) != 0 {
		t.Fatalf("an experiment stopped long ago was refreshed: %d snapshots", len(snaps))
	}
}
