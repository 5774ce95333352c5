package results

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// goneFlags is a fake flag service whose answers the test changes: the experiments it lists
// (by status), and what GET /api/v1/projects/shop/experiments/checkout answers — nil a 404, as
// for an experiment whose project was deleted. It counts those lookups.
type goneFlags struct {
	mu      sync.Mutex
	listed  []flagsvc.Experiment
	found   *flagsvc.Experiment
	lookups int
}

func (g *goneFlags) serve(t *testing.T, w *Worker) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.URL.Path == "/api/v1/projects/shop/experiments/"+fixtureKey {
			g.lookups++
			if g.found == nil {
				http.Error(rw, `{"error":"not found"}`, http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(rw).Encode(g.found)
			return
		}
		_ = json.NewEncoder(rw).Encode(listedByStatus(r, g.listed))
	}))
	t.Cleanup(srv.Close)
	w.flags = &flagsvc.Client{Base: srv.URL, Token: "sy_service", HTTP: srv.Client()}
}

// set changes what the fake lists and answers.
func (g *goneFlags) set(found *flagsvc.Experiment, listed ...flagsvc.Experiment) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.found, g.listed = found, listed
}

func (g *goneFlags) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookups
}

// logBuffer collects a worker's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines counts the logged lines containing s.
func (l *logBuffer) lines(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func captureLog(w *Worker) *logBuffer {
	l := &logBuffer{}
	w.log = slog.New(slog.NewTextHandler(l, nil))
	return l
}

// goneSince reads an experiment's gone mark (zero: none).
func goneSince(t *testing.T, s *Store, id string) time.Time {
	t.Helper()
	recs, err := s.ExperimentRecords(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return recs[id].GoneSince
}

// maintainAt runs the rollup maintenance with the worker's clock at at.
func maintainAt(ctx context.Context, w *Worker, at time.Time) {
	w.now = func() time.Time { return at }
	w.maintainRollups(ctx)
}

// goneFixture: the fold fixture's experiment, running, refreshed once (6 recorded folds, its
// rollups, a snapshot) with a 30-day rollup retention, and a fake flag service listing it.
func goneFixture(t *testing.T) (foldFixture, *goneFlags, time.Time) {
	t.Helper()
	f := newFoldFixture(t)
	f.w.cfg.RollupRetention = 30 * 24 * time.Hour
	g := &goneFlags{}
	g.serve(t, f.w)
	x := f.x
	g.set(&x, x)
	now := f.start.Add(60 * time.Hour)
	f.w.now = func() time.Time { return now }
	if err := f.w.refresh(context.Background(), f.x); err != nil {
		t.Fatal(err)
	}
	if rows, _ := rollupRows(t, f, fixtureKey, "1"); rows == 0 || foldRows(t, f.store, f.x.ID) != 6 || snapshotCount(t, f.store, f.x.ID) != 1 {
		t.Fatalf("after the refresh: %d rollup rows, %d folds, %d snapshots", rows, foldRows(t, f.store, f.x.ID), snapshotCount(t, f.store, f.x.ID))
	}
	return f, g, now
}

// TestRollupsOfADeletedProjectsExperimentAreDropped: an experiment whose project was deleted (the
// flag service answers 404) is marked gone at the first maintenance that misses it (logged once),
// keeps its rollups for the rollup retention after that, then has its partitions dropped and
// its folds forgotten (logged once), and is not looked up again. Its snapshot stays.
func TestRollupsOfADeletedProjectsExperimentAreDropped(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	logs := captureLog(w)
	rows, sum := rollupRows(t, f, fixtureKey, "1")

	g.set(nil) // the project is deleted
	seen := now.Add(time.Hour)
	for i, at := range []time.Duration{0, 2 * time.Hour, w.cfg.RollupRetention - time.Minute} {
		maintainAt(ctx, w, seen.Add(at))
		if got := goneSince(t, f.store, x.ID); !got.Equal(seen) {
			t.Fatalf("%v after it went: gone since %v, want %v (its first sighting)", at, got, seen)
		}
		expectRollups(t, f, x.ID, rows, sum, 6, fmt.Sprintf("%v after it went (within the retention)", at))
		if g.count() != i+1 {
			t.Fatalf("%d lookups after %d maintenance runs", g.count(), i+1)
		}
	}
	if n := logs.lines("experiment gone from the flag service"); n != 1 {
		t.Fatalf("the gone experiment was logged %d times, want once:\n%s", n, logs.buf.String())
	}

	months, err := metricsql.RollupMonths(ctx, f.conn, fixtureEnv, fixtureKey)
	if err != nil || len(months) == 0 {
		t.Fatalf("rollup months %v (%v)", months, err)
	}
	maintainAt(ctx, w, seen.Add(w.cfg.RollupRetention))
	expectRollups(t, f, x.ID, 0, 0, 0, "gone for the retention")
	if dropped, err := f.store.RollupsDropped(ctx, []string{x.ID}); err != nil || !dropped[x.ID] {
		t.Fatalf("drop not recorded as done: %v %v", dropped, err)
	}
	lookups := g.count()
	for range 2 {
		w.maintainRollups(ctx)
	}
	if g.count() != lookups {
		t.Fatalf("a dropped gone experiment was looked up again: %d lookups, want %d", g.count(), lookups)
	}
	if n := logs.lines("dropped the rollups of an experiment gone from the flag service"); n != 1 || !strings.Contains(logs.buf.String(), fmt.Sprintf("experiment=%s months=%d", fixtureKey, len(months))) {
		t.Fatalf("the drop was logged %d times, want once with its months:\n%s", n, logs.buf.String())
	}
	if n := snapshotCount(t, f.store, x.ID); n != 1 {
		t.Fatalf("%d snapshots left, want its 1 kept", n)
	}
}

// TestGoneExperimentComingBackKeepsItsRollups: an experiment gone from the flag service that
// comes back (restored from a backup) before the retention ends has its mark cleared and keeps
// its rollups; gone again later, its retention counts from then.
func TestGoneExperimentComingBackKeepsItsRollups(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	logs := captureLog(w)
	rows, sum := rollupRows(t, f, fixtureKey, "1")

	g.set(nil)
	first := now.Add(time.Hour)
	maintainAt(ctx, w, first)
	if got := goneSince(t, f.store, x.ID); !got.Equal(first) {
		t.Fatalf("gone since %v, want %v", got, first)
	}

	g.set(&x, x) // restored
	maintainAt(ctx, w, first.Add(24*time.Hour))
	if got := goneSince(t, f.store, x.ID); !got.IsZero() {
		t.Fatalf("back in the flag service: still gone since %v", got)
	}
	if logs.lines("experiment back in the flag service") != 1 {
		t.Fatalf("its return not logged:\n%s", logs.buf.String())
	}

	g.set(nil) // gone again, ten days after it first went
	again := first.Add(10 * 24 * time.Hour)
	maintainAt(ctx, w, again)
	maintainAt(ctx, w, first.Add(w.cfg.RollupRetention+time.Hour)) // the first disappearance's retention has passed, not the second's
	expectRollups(t, f, x.ID, rows, sum, 6, "gone again for less than the retention")
	maintainAt(ctx, w, again.Add(w.cfg.RollupRetention))
	expectRollups(t, f, x.ID, 0, 0, 0, "gone again for the retention")
}

// TestExperimentKeyReusedIsGone: the project deleted and made again, the experiment's key names
// another experiment (another id, in the new project's environment): the old one is gone, its
// rollups are dropped after the retention, and the new one's rollups — same key, another
// environment — are untouched.
func TestExperimentKeyReusedIsGone(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	const newEnv = "env-2"
	if err := f.conn.Exec(ctx, `INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT ?, ?, 'conversion', toUInt64(1), toUInt8(0), toDate(toDateTime(?)) + number % 3, toUInt64(7), 'user', toString(number), 1, 1
		FROM numbers(1000)`, newEnv, fixtureKey, f.start.Unix()); err != nil {
		t.Fatal(err)
	}
	newRows, newSum := envRollupRows(t, f, newEnv, fixtureKey, "1")
	reused := x
	reused.ID, reused.EnvironmentID = uuid.NewString(), newEnv
	g.set(&reused, reused)

	first := now.Add(time.Hour)
	maintainAt(ctx, w, first)
	if got := goneSince(t, f.store, x.ID); !got.Equal(first) {
		t.Fatalf("key reused: gone since %v, want %v", got, first)
	}
	if n, _ := rollupRows(t, f, fixtureKey, "1"); n == 0 {
		t.Fatal("dropped before the retention")
	}
	maintainAt(ctx, w, first.Add(w.cfg.RollupRetention))
	expectRollups(t, f, x.ID, 0, 0, 0, "key reused, gone for the retention")
	if n, s := envRollupRows(t, f, newEnv, fixtureKey, "1"); n != newRows || s != newSum || n != 1000 {
		t.Fatalf("the new experiment's rollups: %d rows (sum %d), want %d (sum %d)", n, s, newRows, newSum)
	}
}

// TestGoneExperimentWithoutRetentionKeepsRollups: with -results-rollup-retention 0 a gone
// experiment's rollups are kept forever, as a stopped one's are (it is still marked, once).
func TestGoneExperimentWithoutRetentionKeepsRollups(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	w.cfg.RollupRetention = 0
	logs := captureLog(w)
	rows, sum := rollupRows(t, f, fixtureKey, "1")
	g.set(nil)
	// Its months closed: the maintenance (compactions) has it in its work.
	first := now.Add(70 * 24 * time.Hour)
	for _, at := range []time.Time{first, first.Add(time.Hour), first.Add(10 * 365 * 24 * time.Hour)} {
		maintainAt(ctx, w, at)
	}
	if got := goneSince(t, f.store, x.ID); !got.Equal(first) || logs.lines("rollups are kept (rollup retention 0)") != 1 {
		t.Fatalf("gone since %v (want %v); logged:\n%s", got, first, logs.buf.String())
	}
	expectRollups(t, f, x.ID, rows, sum, 6, "retention 0")
}

// TestGoneExperimentOfUnknownEnvironment: an experiment that folded before its environment was
// recorded (results_experiments is newer) gets it recorded by the maintenance while the flag
// service lists it; one gone before that has it found from the rollup rows of one of its
// recorded folds, and its rollups are dropped after the retention like any gone experiment's;
// when no rollup row has its folds, nothing names its partitions and they are kept.
func TestGoneExperimentOfUnknownEnvironment(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	forget := func() {
		t.Helper()
		if _, err := f.store.Pool.Exec(ctx, `DELETE FROM results_experiments WHERE experiment_id = $1`, x.ID); err != nil {
			t.Fatal(err)
		}
	}
	forget()
	maintainAt(ctx, w, now.Add(time.Hour))
	recs, err := f.store.ExperimentRecords(ctx, []string{x.ID})
	if err != nil || recs[x.ID] != (ExperimentRecord{EnvironmentID: fixtureEnv, Project: "shop", Key: fixtureKey}) {
		t.Fatalf("listed: recorded %+v (%v), want its environment", recs[x.ID], err)
	}

	// Gone before its environment was recorded: the rollups of its folds name it.
	forget()
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	g.set(nil)
	first := now.Add(2 * time.Hour)
	maintainAt(ctx, w, first)
	recs, err = f.store.ExperimentRecords(ctx, []string{x.ID})
	if err != nil || recs[x.ID] != (ExperimentRecord{EnvironmentID: fixtureEnv, Project: "shop", Key: fixtureKey, GoneSince: first}) {
		t.Fatalf("gone, environment not recorded: recorded %+v (%v), want it found from the rollups", recs[x.ID], err)
	}
	expectRollups(t, f, x.ID, rows, 0, 6, "within the retention")
	maintainAt(ctx, w, first.Add(w.cfg.RollupRetention))
	expectRollups(t, f, x.ID, 0, 0, 0, "gone for the retention")
}

// TestGoneExperimentWhoseRollupsNameNoEnvironment: a gone experiment whose environment was never
// recorded and whose recorded folds match no rollup row (nothing names its partitions) is marked
// gone and its rollups are kept, however long it has been gone.
func TestGoneExperimentWhoseRollupsNameNoEnvironment(t *testing.T) {
	ctx := context.Background()
	f, g, now := goneFixture(t)
	w, x := f.w, f.x
	if _, err := f.store.Pool.Exec(ctx, `DELETE FROM results_experiments WHERE experiment_id = $1`, x.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Pool.Exec(ctx, `UPDATE results_folds SET fold_id = fold_id + 1 WHERE experiment_id = $1`, x.ID); err != nil {
		t.Fatal(err)
	}
	rows, _ := rollupRows(t, f, fixtureKey, "1")
	g.set(nil)
	first := now.Add(2 * time.Hour)
	maintainAt(ctx, w, first)
	maintainAt(ctx, w, first.Add(2*w.cfg.RollupRetention))
	recs, err := f.store.ExperimentRecords(ctx, []string{x.ID})
	if err != nil || recs[x.ID] != (ExperimentRecord{Project: "shop", Key: fixtureKey, GoneSince: first}) {
		t.Fatalf("gone, environment unknown: recorded %+v (%v)", recs[x.ID], err)
	}
	expectRollups(t, f, x.ID, rows, 0, 6, "environment unknown")
}

// TestMarkGoneKeepsTheFirstSighting: marking an experiment gone again keeps the first time; a
// cleared mark is set anew; the recorded environment survives both.
func TestMarkGoneKeepsTheFirstSighting(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id, t0 := uuid.NewString(), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := s.RememberExperiment(ctx, id, "env-1", "shop", "checkout"); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Hour)} {
		if err := s.MarkGone(ctx, id, "shop", "checkout", at); err != nil {
			t.Fatal(err)
		}
		if got := goneSince(t, s, id); !got.Equal(t0) {
			t.Fatalf("after mark %d: gone since %v, want %v", i+1, got, t0)
		}
	}
	if err := s.ClearGone(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkGone(ctx, id, "shop", "checkout", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ExperimentRecords(ctx, []string{id})
	if err != nil || recs[id] != (ExperimentRecord{EnvironmentID: "env-1", Project: "shop", Key: "checkout", GoneSince: t0.Add(2 * time.Hour)}) {
		t.Fatalf("cleared, then gone again: %+v (%v)", recs[id], err)
	}
}

// expectRollups fails unless the fixture's experiment has rows rollup rows (of value sum, unless
// sum is 0) and folds recorded folds.
func expectRollups(t *testing.T, f foldFixture, experimentID string, rows, sum uint64, folds int, when string) {
	t.Helper()
	n, s := rollupRows(t, f, fixtureKey, "1")
	if got := foldRows(t, f.store, experimentID); n != rows || (sum != 0 && s != sum) || got != folds {
		t.Fatalf("%s: %d rollup rows of sum %d (want %d of %d), %d folds (want %d)", when, n, s, rows, sum, got, folds)
	}
}
