package results

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
)

// boundedFlags is a fake flag service that honours stopped_after like the real one and records
// what it was asked: a list of stopped or concluded experiments without stopped_after (every
// experiment ever stopped), whether the ancient experiment was ever listed, the stopped_after
// times asked, and the experiments read one by one.
type boundedFlags struct {
	mu        sync.Mutex
	unbounded []string
	ancient   bool
	after     map[string][]time.Time // by status
	lookups   int
}

func (b *boundedFlags) serve(t *testing.T, w *Worker, ancient flagsvc.Experiment, xs ...flagsvc.Experiment) {
	t.Helper()
	b.after = map[string][]time.Time{}
	fakeFlags(t, w, func(r *http.Request) any {
		b.mu.Lock()
		defer b.mu.Unlock()
		q := r.URL.Query()
		if r.URL.Path == "/api/v1/projects/shop/experiments/"+fixtureKey {
			b.lookups++
			return xs[0]
		}
		items := []flagsvc.Experiment{}
		if r.URL.Path != "/api/v1/experiments" {
			return items
		}
		status := q.Get("status")
		var after *time.Time
		if s := q.Get("stopped_after"); s != "" {
			a, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Errorf("stopped_after=%q: %v", s, err)
			}
			after = &a
			b.after[status] = append(b.after[status], a)
		} else if status != "running" {
			b.unbounded = append(b.unbounded, r.URL.RawQuery)
		}
		for _, x := range append([]flagsvc.Experiment{ancient}, xs...) {
			if x.Status != status || (after != nil && (x.StoppedAt == nil || x.StoppedAt.Before(*after))) {
				continue
			}
			if x.ID == ancient.ID {
				b.ancient = true
			}
			items = append(items, x)
		}
		return map[string]any{"items": items}
	})
}

// TestStoppedExperimentsAreListedWithinTheirWindowOnly: the sweep's final results and the
// hourly rollup maintenance never list every stopped or concluded experiment ever: finalize
// asks for those stopped within the late window, the maintenance for those stopped within the
// late window plus the rollup retention, and a concluded experiment stopped long ago is never
// listed. An expired experiment (not in those lists any more) whose rollups remain is still
// found — from its recorded folds, read by itself — and its rollups dropped.
func TestStoppedExperimentsAreListedWithinTheirWindowOnly(t *testing.T) {
	ctx := context.Background()
	f, x, stopped := stoppedFixture(t, "concluded")
	w := f.w
	long := stopped.Add(-2 * 365 * 24 * time.Hour)
	ancient := x
	ancient.ID, ancient.Key, ancient.StoppedAt = "00000000-0000-4000-8000-0000000000aa", "ancient", &long
	var fl boundedFlags
	fl.serve(t, w, ancient, x)

	// Within the late window: the sweep computes its final results, asking only for the
	// experiments stopped since now - LateWindow.
	now := stopped.Add(2 * time.Hour)
	w.now = func() time.Time { return now }
	w.sweep(ctx)
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("final results within the late window: %d snapshots, want 1", n)
	}
	for _, status := range []string{"stopped", "concluded"} {
		if a := fl.after[status]; len(a) != 1 || !a[0].Equal(now.Add(-w.cfg.LateWindow)) {
			t.Fatalf("finalize listed %s experiments stopped after %v, want once after %v", status, a, now.Add(-w.cfg.LateWindow))
		}
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	if rows == 0 || foldRows(t, f.store, x.ID) == 0 {
		t.Fatalf("after the final refresh: %d rollup rows, %d folds", rows, foldRows(t, f.store, x.ID))
	}

	// An hour past its retention: no list holds it any more, yet its rollups are dropped.
	now = stopped.Add(w.cfg.LateWindow + w.cfg.RollupRetention + time.Hour)
	fl.after = map[string][]time.Time{}
	w.sweep(ctx)
	w.maintainRollups(ctx)
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n != 0 || foldRows(t, f.store, x.ID) != 0 {
		t.Fatalf("past the retention: %d rollup rows, %d folds, want none", n, foldRows(t, f.store, x.ID))
	}
	if fl.lookups == 0 {
		t.Fatal("the expired experiment was not read by itself")
	}
	want := now.Add(-w.cfg.LateWindow - w.cfg.RollupRetention)
	for _, status := range []string{"stopped", "concluded"} {
		a := fl.after[status]
		if len(a) != 2 || !a[0].Equal(now.Add(-w.cfg.LateWindow)) || !a[1].Equal(want) {
			t.Fatalf("%s experiments listed stopped after %v; want after %v (finalize) and %v (maintenance)", status, a,
				now.Add(-w.cfg.LateWindow), want)
		}
	}
	if len(fl.unbounded) > 0 || fl.ancient {
		t.Fatalf("stopped or concluded experiments listed without stopped_after: %q; the ancient one listed: %v", fl.unbounded, fl.ancient)
	}
	// Dropped: it leaves the maintenance's work, and is not read again.
	lookups := fl.lookups
	w.maintainRollups(ctx)
	if fl.lookups != lookups {
		t.Fatalf("a dropped experiment was read again: %d lookups, want %d", fl.lookups, lookups)
	}
}
