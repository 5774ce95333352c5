package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/internal/chtest"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/internal/results"
)

// flagService is a hand-written flag service: one running experiment "checkout" of project
// "shop" in environment "staging" (or a critical "production"), and tokens named after their
// role ("svc" is the stats service's own).
type flagService struct {
	x        flagsvc.Experiment
	critical bool
}

func (f *flagService) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	role := map[string]string{"viewer": "viewer", "developer": "developer", "project_admin": "project_admin", "svc": "admin"}[token]
	if role == "" {
		w.WriteHeader(401)
		return
	}
	var out any
	switch r.URL.Path {
	case "/api/v1/me":
		out = map[string]any{"role": role, "actor": map[string]string{"type": "user", "id": token}}
	case "/api/v1/experiments":
		out = map[string]any{"items": []any{}} // the worker's sweep finds nothing to do
	case "/api/v1/projects/shop/experiments/checkout":
		out = f.x
	case "/api/v1/projects/shop/metrics/conversion/versions":
		out = metricVersions(`{"kind":"proportion","event_key":"buy","window":{"start":"0s","end":"168h"}}`)
	case "/api/v1/projects/shop/metrics/revenue/versions":
		out = metricVersions(`{"kind":"sum","event_key":"buy","window":{"start":"0s","end":"168h"}}`)
	case "/api/v1/projects/shop/metrics/revenue-per-buyer/versions":
		out = metricVersions(`{"kind":"ratio","numerator":"revenue","denominator":"conversion"}`)
	case "/api/v1/projects/shop/environments/" + f.x.Environment:
		out = map[string]any{"id": f.x.EnvironmentID, "project_id": "p-shop", "key": f.x.Environment, "critical": f.critical}
	default:
		w.WriteHeader(404)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// metricVersions is the flag service's list of a metric's versions: version 1, def.
func metricVersions(def string) any {
	return map[string]any{"items": []any{map[string]any{"version": 1, "definition": json.RawMessage(def)}}}
}

type resultsFixture struct {
	app   *fiber.App
	store *results.Store
	flags *flagService
	svc   *ResultsService
}

// newResultsFixture mounts the results routes over a real Postgres store and a real results
// worker (running, on a fresh ClickHouse database) behind the hand-written flag service.
func newResultsFixture(t *testing.T) resultsFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pg.Connect(ctx, testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	store := &results.Store{Pool: pool}
	if err := store.Migrate(ctx, log); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour).UTC()
	x := flagsvc.Experiment{ID: uuid.NewString(), Key: "checkout", Project: "shop", Environment: "staging", EnvironmentID: "env-" + uuid.NewString(),
		Flag: "checkout", Status: "running", Control: "off", Variations: []flagsvc.Variation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}},
		Analysis:  flagsvc.Analysis{Engine: "frequentist", Alpha: 0.05, Sided: "two_sided", Correction: "holm"},
		StartedAt: &started, PlannedDuration: "336h",
		// Metrics the experiment measured once (a secondary metric removed since keeps its
		// recorded version and its history) but no longer computes.
		MetricVersions: map[string]int64{"conversion": 1, "revenue": 1}}
	fs := &flagService{x: x}
	srv := httptest.NewServer(fs)
	client := flagsvc.New(srv.URL, "svc", "")
	conn := chtest.Database(t, "statshttp")
	worker := results.NewWorker(results.Config{Interval: time.Hour}, store, conn, client, log, nil)
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		pool.Close()
	})
	app := httpapi.New(httpapi.Options{Service: "stats", Logger: log, Registry: health.NewRegistry()})
	svc := &ResultsService{Flags: client, Store: store, Worker: worker, Estimator: &results.Estimator{Worker: worker, CH: conn}}
	MountResults(app, svc)
	return resultsFixture{app: app, store: store, flags: fs, svc: svc}
}

func (f resultsFixture) call(t *testing.T, method, path, token string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func errorBody(t *testing.T, body []byte) httpapi.ErrorBody {
	t.Helper()
	var e httpapi.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not the uniform error body: %s", body)
	}
	return e
}

// TestRefreshNeedsWriteAccess: a refresh recomputes in ClickHouse, so only callers who may
// change the experiment's environment may ask for one; readers keep reading results.
func TestRefreshNeedsWriteAccess(t *testing.T) {
	f := newResultsFixture(t)
	const refresh = "/v1/projects/shop/experiments/checkout/refresh"
	status, body := f.call(t, "POST", refresh, "viewer")
	if status != 403 || errorBody(t, body).Error.Code != "permission_denied" {
		t.Fatalf("viewer: %d %s, want 403 permission_denied", status, body)
	}
	if snaps, err := f.store.Snapshots(context.Background(), f.flags.x.ID, 10); err != nil || len(snaps) != 0 {
		t.Fatalf("a viewer's refresh stored snapshots %v (%v)", snaps, err)
	}
	f.flags.critical = true
	if status, body := f.call(t, "POST", refresh, "developer"); status != 403 || !strings.Contains(string(body), "critical") {
		t.Fatalf("developer in a critical environment: %d %s, want 403", status, body)
	}
	if status, body := f.call(t, "POST", refresh, "project_admin"); status != 200 {
		t.Fatalf("project admin in a critical environment: %d %s", status, body)
	}
	f.flags.critical = false
	status, body = f.call(t, "POST", refresh, "developer")
	if status != 200 {
		t.Fatalf("developer: %d %s", status, body)
	}
	var snap results.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil || snap.ExperimentID != f.flags.x.ID {
		t.Fatalf("refresh answered %s (%v)", body, err)
	}
	if status, body := f.call(t, "GET", "/v1/projects/shop/experiments/checkout/results", "viewer"); status != 200 {
		t.Fatalf("a viewer reads results: %d %s", status, body)
	}
}

// TestRefreshWhileAnotherReplicaRefreshes: when another replica holds the experiment's refresh
// lock, a refresh waits for it to end, then recomputes and answers the new snapshot; a caller
// whose wait runs out is told so (503), not handed the last snapshot as if it were fresh, and
// its wait ends with it.
func TestRefreshWhileAnotherReplicaRefreshes(t *testing.T) {
	f := newResultsFixture(t)
	ctx := context.Background()
	const refresh = "/v1/projects/shop/experiments/checkout/refresh"
	old := &results.Snapshot{Project: "shop", Experiment: "checkout", ExperimentID: f.flags.x.ID, ComputedAt: time.Now().Add(-30 * time.Minute).UTC(),
		Metrics: []results.MetricResult{}}
	if err := f.store.SaveSnapshot(ctx, f.flags.x.ID, old); err != nil {
		t.Fatal(err)
	}
	release, ok, err := f.store.TryLock(ctx, "results:"+f.flags.x.ID) // the other replica
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	var once sync.Once
	unlock := func() { once.Do(release) }
	defer unlock() // before the pool closes, even when the test fails
	waiting := func() int {
		var n int
		if err := f.store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	f.svc.RefreshWait = 500 * time.Millisecond
	status, body := f.call(t, "POST", refresh, "developer")
	if status != 503 {
		t.Fatalf("refresh whose wait ran out: %d %s, want 503", status, body)
	}
	if e := errorBody(t, body); e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, "no new snapshot within 500ms") {
		t.Fatalf("error %+v", e.Error)
	}
	testenv.Eventually(t, 30*time.Second, "the abandoned wait for the lock to end", func() bool { return waiting() == 0 })

	f.svc.RefreshWait = 0
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		req := httptest.NewRequest("POST", refresh, nil)
		req.Header.Set("Authorization", "Bearer developer")
		resp, err := f.app.Test(req, -1)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, body, err}
	}()
	testenv.Eventually(t, 30*time.Second, "the refresh to wait for the other replica's lock", func() bool { return waiting() == 1 })
	select {
	case a := <-answered:
		t.Fatalf("answered while the other replica held the lock: %d %s %v", a.status, a.body, a.err)
	default:
	}
	unlock()
	a := <-answered
	var snap results.Snapshot
	if a.err != nil || a.status != 200 || json.Unmarshal(a.body, &snap) != nil || !snap.ComputedAt.After(old.ComputedAt) {
		t.Fatalf("refresh after the other replica's: %d %s %v", a.status, a.body, a.err)
	}
}

// TestTimeseriesCoversTheWholeHistory: 3,000 snapshots (over 10 days at the 5-minute interval)
// give a series from the first snapshot to the latest, at most MaxSeriesSnapshots of them
// spread evenly; from and to select a stretch; bad bounds are 400 naming the parameter.
func TestTimeseriesCoversTheWholeHistory(t *testing.T) {
	f := newResultsFixture(t)
	ctx := context.Background()
	id := f.flags.x.ID
	first := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	times := make([]time.Time, n)
	var batch pgx.Batch
	for i := range times {
		times[i] = first.Add(time.Duration(i) * 5 * time.Minute)
		effect, low, high := float64(i), float64(i)-1, float64(i)+1
		snap := results.Snapshot{Project: "shop", Experiment: "checkout", ExperimentID: id, ComputedAt: times[i], Metrics: []results.MetricResult{
			{Metric: "revenue", Variants: []engine.VariantResult{{Key: "off", N: 10, Control: true}, {Key: "on", N: 10, Effect: &effect}}},
			{Metric: "conversion", Variants: []engine.VariantResult{{Key: "off", N: int64(i), Control: true},
				{Key: "on", N: int64(i), Effect: &effect, CI: &engine.Interval{Low: low, High: high}}}},
		}}
		body, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		batch.Queue(`INSERT INTO results_snapshots (experiment_id, project_key, experiment_key, computed_at, body) VALUES ($1, 'shop', 'checkout', $2, $3)`,
			id, times[i], body)
	}
	if err := f.store.Pool.SendBatch(ctx, &batch).Close(); err != nil {
		t.Fatal(err)
	}
	series := func(query string) []results.Point {
		t.Helper()
		status, body := f.call(t, "GET", "/v1/projects/shop/experiments/checkout/timeseries?metric=conversion"+query, "viewer")
		if status != 200 {
			t.Fatalf("timeseries%s: %d %s", query, status, body)
		}
		var out struct {
			Metric string          `json:"metric"`
			Points []results.Point `json:"points"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Metric != "conversion" {
			t.Fatalf("timeseries%s: %s (%v)", query, body, err)
		}
		return out.Points
	}
	check := func(name string, points []results.Point, from, to, count int) {
		t.Helper()
		if len(points) != count {
			t.Fatalf("%s: %d points, want %d", name, len(points), count)
		}
		firstP, lastP := points[0], points[len(points)-1]
		if !firstP.ComputedAt.Equal(times[from]) || !lastP.ComputedAt.Equal(times[to]) || *firstP.Effect != float64(from) || *lastP.Effect != float64(to) {
			t.Fatalf("%s: from %v (effect %v) to %v (effect %v), want snapshots %d to %d", name, firstP.ComputedAt, *firstP.Effect,
				lastP.ComputedAt, *lastP.Effect, from, to)
		}
		for i, p := range points {
			if p.Variation != "on" || p.N != int64(*p.Effect) || *p.CILower != *p.Effect-1 || (i > 0 && !p.ComputedAt.After(points[i-1].ComputedAt)) {
				t.Fatalf("%s: point %d %+v", name, i, p)
			}
		}
	}
	all := series("")
	check("whole history", all, 0, n-1, results.MaxSeriesSnapshots)
	// Spread evenly: no gap is more than one snapshot longer than another.
	minGap, maxGap := n, 0
	for i := 1; i < len(all); i++ {
		gap := int(*all[i].Effect - *all[i-1].Effect)
		minGap, maxGap = min(minGap, gap), max(maxGap, gap)
	}
	if maxGap-minGap > 1 {
		t.Fatalf("gaps between points from %d to %d snapshots", minGap, maxGap)
	}
	q := func(from, to int) string {
		return "&from=" + url.QueryEscape(times[from].Format(time.RFC3339)) + "&to=" + url.QueryEscape(times[to].Format(time.RFC3339))
	}
	check("a day", series(q(1000, 1287)), 1000, 1287, 288)
	check("from only", series("&from="+url.QueryEscape(times[2900].Format(time.RFC3339))), 2900, n-1, 100)
	check("to only", series("&to="+times[99].Add(time.Minute).Format(time.RFC3339)), 0, 99, 100)
	if got := series(q(10, 10)); len(got) != 1 {
		t.Fatalf("from = to: %d points", len(got))
	}
	for _, tc := range []struct{ query, field string }{
		{"&from=yesterday", "from"},
		{"&to=2026-11-01", "to"},
		{q(20, 10), "to"},
	} {
		status, body := f.call(t, "GET", "/v1/projects/shop/experiments/checkout/timeseries?metric=conversion"+tc.query, "viewer")
		if e := errorBody(t, body); status != 400 || e.Error.Field != tc.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.query, status, e.Error, tc.field)
		}
	}
	if status, body := f.call(t, "GET", "/v1/projects/shop/experiments/checkout/timeseries", "viewer"); status != 400 || errorBody(t, body).Error.Field != "metric" {
		t.Errorf("no metric: %d %s", status, body)
	}
}

// TestBadQueryParametersAre400NamingThem: a time series of a metric the experiment never
// measured, or an estimate for an effect that is not a number, is the caller's mistake: 400
// naming the parameter, not an empty series or a 500.
func TestBadQueryParametersAre400NamingThem(t *testing.T) {
	f := newResultsFixture(t)
	const base = "/v1/projects/shop/experiments/checkout/"
	for _, tc := range []struct{ path, field string }{
		{"timeseries?metric=no-such-metric", "metric"},
		{"estimate?effect=NaN", "effect"},
		{"estimate?effect=-0.1", "effect"},
		{"snapshots?limit=many", "limit"},
	} {
		status, body := f.call(t, "GET", base+tc.path, "viewer")
		var e httpapi.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || status != 400 || e.Error.Field != tc.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.path, status, body, tc.field)
		}
	}
	// A metric the experiment recorded (removed since) still has its history.
	if status, body := f.call(t, "GET", base+"timeseries?metric=revenue", "viewer"); status != 200 {
		t.Errorf("a recorded metric's series: %d %s", status, body)
	}
}

// TestEstimateRefusalsNameWhatIsMissing: an estimate that cannot be made is 422 naming what
// is missing — the primary metric (none, or a ratio), the effect (too small to detect), or no
// field when the flag has no traffic to plan from — never a 500 or a blame on a valid effect.
func TestEstimateRefusalsNameWhatIsMissing(t *testing.T) {
	f := newResultsFixture(t)
	const path = "/v1/projects/shop/experiments/checkout/estimate"
	for _, tc := range []struct {
		name, primary, query, field, says string
	}{
		{"no primary metric", "", "", "metrics.primary", "no primary metric"},
		{"a ratio primary metric", "revenue-per-buyer", "", "metrics.primary", "ratio"},
		{"no traffic on the flag", "conversion", "?effect=0.05", "", "no baseline"},
	} {
		f.flags.x.Metrics.Primary = nil
		if tc.primary != "" {
			f.flags.x.Metrics.Primary = []string{tc.primary}
		}
		status, body := f.call(t, "GET", path+tc.query, "viewer")
		e := errorBody(t, body)
		if status != 422 || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.says) {
			t.Errorf("%s: %d %s, want 422 naming %q and saying %q", tc.name, status, body, tc.field, tc.says)
		}
	}
}

// TestResultsSayWhenTheLastRefreshFailed: a refresh that failed after the latest snapshot is
// part of the latest results (refresh_error), so nobody reads old results as current; an older
// failure is not, a successful refresh clears it, and without any snapshot the 404 says why.
func TestResultsSayWhenTheLastRefreshFailed(t *testing.T) {
	f := newResultsFixture(t)
	ctx := context.Background()
	const path = "/v1/projects/shop/experiments/checkout/results"
	id := f.flags.x.ID
	if err := f.store.RecordFailure(ctx, id, time.Now().Add(-time.Hour).UTC(), errors.New("clickhouse: memory limit exceeded")); err != nil {
		t.Fatal(err)
	}
	if status, body := f.call(t, "GET", path, "viewer"); status != 404 || !strings.Contains(errorBody(t, body).Error.Message, "memory limit exceeded") {
		t.Fatalf("no snapshot, a failed refresh: %d %s", status, body)
	}
	snapAt := time.Now().Add(-30 * time.Minute).UTC()
	if err := f.store.SaveSnapshot(ctx, id, &results.Snapshot{Project: "shop", Experiment: "checkout", ExperimentID: id, ComputedAt: snapAt,
		Metrics: []results.MetricResult{}}); err != nil {
		t.Fatal(err)
	}
	latest := func() results.Snapshot {
		t.Helper()
		status, body := f.call(t, "GET", path, "viewer")
		var snap results.Snapshot
		if status != 200 || json.Unmarshal(body, &snap) != nil {
			t.Fatalf("results: %d %s", status, body)
		}
		return snap
	}
	if s := latest(); s.RefreshError != nil {
		t.Fatalf("a failure before the latest snapshot is old news: %+v", s.RefreshError)
	}
	failedAt := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	if err := f.store.RecordFailure(ctx, id, failedAt, errors.New("clickhouse: timeout")); err != nil {
		t.Fatal(err)
	}
	if s := latest(); s.RefreshError == nil || !s.RefreshError.At.Equal(failedAt) || s.RefreshError.Message != "clickhouse: timeout" {
		t.Fatalf("the latest results after a failed refresh: %+v", s.RefreshError)
	}
	if status, body := f.call(t, "POST", "/v1/projects/shop/experiments/checkout/refresh", "developer"); status != 200 {
		t.Fatalf("refresh: %d %s", status, body)
	}
	if s := latest(); s.RefreshError != nil {
		t.Fatalf("a successful refresh clears the failure: %+v", s.RefreshError)
	}
}
