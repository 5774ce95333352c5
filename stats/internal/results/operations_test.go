package results

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// fakeFlags points the worker at a fake flag service answering every request with what
// answer returns, as JSON.
func fakeFlags(t *testing.T, w *Worker, answer func(r *http.Request) any) {
	t.Helper()
	flags := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(rw).Encode(answer(r))
	}))
	t.Cleanup(flags.Close)
	w.flags = &flagsvc.Client{Base: flags.URL, Token: "sy_service", HTTP: flags.Client()}
}

// fakeListed serves the flag service's experiment lists: xs as the experiments with the
// status, none with any other.
func fakeListed(t *testing.T, w *Worker, status string, xs ...flagsvc.Experiment) {
	t.Helper()
	fakeFlags(t, w, func(r *http.Request) any {
		items := []flagsvc.Experiment{}
		if r.URL.Path == "/api/v1/experiments" && r.URL.Query().Get("status") == status {
			items = xs
		}
		return map[string]any{"items": items}
	})
}

// fakeRunning serves xs as the running experiments.
func fakeRunning(t *testing.T, w *Worker, xs ...flagsvc.Experiment) {
	t.Helper()
	fakeListed(t, w, "running", xs...)
}

// fakeExperiment serves x as the experiment shop/checkout, and empty lists.
func fakeExperiment(t *testing.T, w *Worker, x flagsvc.Experiment) {
	t.Helper()
	fakeFlags(t, w, func(r *http.Request) any {
		if r.URL.Path == "/api/v1/projects/shop/experiments/checkout" {
			return x
		}
		return map[string]any{"items": []any{}}
	})
}

func snapshotCount(t *testing.T, s *Store, id string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM results_snapshots WHERE experiment_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSweepRefreshesOnlyDueExperiments: a sweep leaves an experiment refreshed (on demand) a
// minute ago until its interval has passed, and one whose refreshes failed twice in a row
// until twice the interval after the last failure; it refreshes one last computed an interval ago.
func TestSweepRefreshesOnlyDueExperiments(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	now := f.start.Add(60 * time.Hour)
	f.w.now = func() time.Time { return now }
	recent, old, failing := f.x, f.x, f.x
	recent.ID, old.ID, failing.ID = uuid.NewString(), uuid.NewString(), uuid.NewString()
	for id, at := range map[string]time.Time{recent.ID: now.Add(-time.Minute), old.ID: now.Add(-f.w.cfg.Interval)} {
		if err := f.store.SaveSnapshot(ctx, id, &Snapshot{ComputedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Duration{16 * time.Minute, 6 * time.Minute} {
		if err := f.store.RecordFailure(ctx, failing.ID, now.Add(-at), errors.New("code: 241, Memory limit (for query) exceeded")); err != nil {
			t.Fatal(err)
		}
	}
	fakeRunning(t, f.w, recent, old, failing)
	f.w.sweep(ctx)
	for _, c := range []struct {
		name string
		id   string
		want int
	}{{"refreshed a minute ago", recent.ID, 1}, {"refreshed an interval ago", old.ID, 2}, {"failed twice, 6 min ago", failing.ID, 0}} {
		if got := snapshotCount(t, f.store, c.id); got != c.want {
			t.Errorf("%s: %d snapshots after the sweep, want %d", c.name, got, c.want)
		}
	}
	// Ten minutes after its second failure the failing experiment is due again.
	now = now.Add(4 * time.Minute)
	fakeRunning(t, f.w, failing)
	f.w.sweep(ctx)
	if got := snapshotCount(t, f.store, failing.ID); got != 1 {
		t.Errorf("failing experiment after its backoff: %d snapshots, want 1", got)
	}
	if fl, err := f.store.LastFailure(ctx, failing.ID); err != nil || fl != nil {
		t.Errorf("failure after a successful refresh: %+v (%v)", fl, err)
	}
}

// TestSweepIsolatesASlowExperiment: an experiment whose refresh hangs (a metric read that never
// answers) holds one slot until its refresh timeout, and is recorded as a timed-out failure;
// the other experiment of the sweep is refreshed meanwhile.
func TestSweepIsolatesASlowExperiment(t *testing.T) {
	f := newFoldFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.w.cfg.RefreshTimeout = 20 * time.Second
	now := f.start.Add(60 * time.Hour)
	f.w.now = func() time.Time { return now }
	load := f.w.defs.Load
	var slowDone atomic.Bool
	f.w.defs = &metricsql.Definitions{Load: func(ctx context.Context, project, key string, version int64) (metricsql.Definition, error) {
		if key == "slow" {
			<-ctx.Done()
			slowDone.Store(true)
			return metricsql.Definition{}, ctx.Err()
		}
		return load(ctx, project, key, version)
	}}
	slow, fast := f.x, f.x
	slow.ID, fast.ID = uuid.NewString(), uuid.NewString()
	slow.Metrics.Primary = []string{"slow"}
	fakeRunning(t, f.w, slow, fast)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		f.w.sweep(ctx)
	}()
	testenv.Eventually(t, 15*time.Second, "the fast experiment's snapshot", func() bool { return snapshotCount(t, f.store, fast.ID) == 1 })
	if slowDone.Load() {
		t.Fatal("the slow refresh ended before the fast one's snapshot: not isolated")
	}
	select {
	case <-swept:
	case <-time.After(time.Minute):
		t.Fatal("the sweep did not end: the slow refresh was not timed out")
	}
	fl, err := f.store.LastFailure(context.Background(), slow.ID)
	if err != nil || fl == nil || !strings.Contains(fl.Message, "timed out after 20s") {
		t.Fatalf("slow experiment's recorded failure %+v (%v), want a timeout", fl, err)
	}
}

// TestThinKeepsRecentHourlyDailyAndTheEnds: of 40 days of 5-minute snapshots (11,500), Thin
// keeps every one of the last 7 days, the latest of each hour before that up to 30 days, of
// each day before that, the first, and the snapshots around the stop; of an experiment
// concluded long ago its first, each day's latest and its final one. A second Thin deletes nothing.
func TestThinKeepsRecentHourlyDailyAndTheEnds(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(40*24*time.Hour + 12*time.Hour)
	a, b := uuid.NewString(), uuid.NewString()
	// a: running every 5 minutes from t0+1m for 39 days, stopped at t0+39d (final snapshots
	// 10, 15, 20 and 70 minutes after the stop); b: 2 days running, its final snapshot an hour after.
	insertSnapshots(t, store, []snapshotSeries{
		{a, "running", t0.Add(time.Minute), t0.Add(39*24*time.Hour - 4*time.Minute)},
		{a, "stopped", t0.Add(39*24*time.Hour + 10*time.Minute), t0.Add(39*24*time.Hour + 20*time.Minute)},
		{a, "stopped", t0.Add(39*24*time.Hour + 70*time.Minute), t0.Add(39*24*time.Hour + 70*time.Minute)},
		{b, "running", t0.Add(time.Minute), t0.Add(48*time.Hour - 4*time.Minute)},
		{b, "stopped", t0.Add(49 * time.Hour), t0.Add(49 * time.Hour)},
	})
	before := snapshotCount(t, store, a)
	var bytes int64
	if err := store.Pool.QueryRow(ctx, `SELECT pg_total_relation_size('results_snapshots')`).Scan(&bytes); err != nil {
		t.Fatal(err)
	}
	ret := Retention{KeepAll: 7 * 24 * time.Hour, KeepHourly: 30 * 24 * time.Hour}
	n, err := store.Thin(ctx, ret, now)
	if err != nil {
		t.Fatal(err)
	}
	keepAll, hourly := midnight(now.Add(-ret.KeepAll)), midnight(now.Add(-ret.KeepHourly))
	times := func(id string) []time.Time {
		rows, err := store.Pool.Query(ctx, `SELECT computed_at FROM results_snapshots WHERE experiment_id = $1 ORDER BY computed_at`, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []time.Time
		var at time.Time
		if _, err := pgxForEach(rows, &at, func() { out = append(out, at.UTC()) }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ta := times(a)
	t.Logf("thinned %d of %d snapshots (table %d bytes before): %d of experiment a kept", n, before+49*12+1, bytes, len(ta))
	// Expected for a: the first; the latest of each day before `hourly`; of each hour until
	// keepAll; every one after.
	var want []time.Time
	for at := t0.Add(time.Minute); at.Before(t0.Add(39 * 24 * time.Hour)); at = at.Add(5 * time.Minute) {
		next := at.Add(5 * time.Minute)
		switch {
		case at.Equal(t0.Add(time.Minute)), !at.Before(keepAll),
			at.Before(hourly) && !midnight(next).Equal(midnight(at)),
			!at.Before(hourly) && next.Truncate(time.Hour) != at.Truncate(time.Hour),
			!next.Before(t0.Add(39 * 24 * time.Hour)): // the last while running
			want = append(want, at)
		}
	}
	want = append(want, t0.Add(39*24*time.Hour+10*time.Minute), t0.Add(39*24*time.Hour+15*time.Minute), t0.Add(39*24*time.Hour+20*time.Minute), t0.Add(39*24*time.Hour+70*time.Minute))
	for i := range min(len(ta), len(want)) {
		if !ta[i].Equal(want[i]) {
			t.Fatalf("experiment a: snapshot %d at %v, want %v", i, ta[i], want[i])
		}
	}
	if len(ta) != len(want) {
		t.Fatalf("experiment a: %d snapshots kept, want %d", len(ta), len(want))
	}
	tb := times(b)
	wantB := []time.Time{t0.Add(time.Minute), t0.Add(24*time.Hour - 4*time.Minute), t0.Add(48*time.Hour - 4*time.Minute), t0.Add(49 * time.Hour)}
	if len(tb) != len(wantB) {
		t.Fatalf("experiment b kept %v, want %v", tb, wantB)
	}
	for i := range tb {
		if !tb[i].Equal(wantB[i]) {
			t.Fatalf("experiment b kept %v, want %v", tb, wantB)
		}
	}
	if n, err := store.Thin(ctx, ret, now); err != nil || n != 0 {
		t.Fatalf("second thin deleted %d (%v), want 0", n, err)
	}
}

func pgxForEach(rows pgx.Rows, at *time.Time, fn func()) (pgconn.CommandTag, error) {
	return pgx.ForEachRow(rows, []any{at}, func() error { fn(); return nil })
}

// snapshotSeries is a stretch of snapshots of one experiment: every 5 minutes from from to to,
// each with the given status.
type snapshotSeries struct {
	id, status string
	from, to   time.Time
}

// insertSnapshots writes the series' snapshots straight into results_snapshots.
func insertSnapshots(t *testing.T, store *Store, series []snapshotSeries) {
	t.Helper()
	for _, r := range series {
		if _, err := store.Pool.Exec(context.Background(), `INSERT INTO results_snapshots (experiment_id, project_key, experiment_key, computed_at, body)
			SELECT $1, 'shop', 'x', t, jsonb_build_object('status', $2::text, 'computed_at', t)
			FROM generate_series($3::timestamptz, $4::timestamptz, interval '5 minutes') t`, r.id, r.status, r.from, r.to); err != nil {
			t.Fatal(err)
		}
	}
}
