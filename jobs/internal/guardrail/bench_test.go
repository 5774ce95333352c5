package guardrail_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/guardrail"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// benchFlags is an in-memory flag service with n running experiments, each with one guardrail.
type benchFlags struct {
	guardrails  []flagsvc.Guardrail
	experiments map[string]flagsvc.Experiment
}

func (f *benchFlags) Guardrails(context.Context, string) ([]flagsvc.Guardrail, error) {
	return f.guardrails, nil
}
func (f *benchFlags) EnvironmentGuardrails(context.Context, string, string) ([]flagsvc.Guardrail, error) {
	return f.guardrails, nil
}
func (f *benchFlags) ReportBreach(context.Context, flagsvc.Guardrail, flagsvc.BreachReport) (flagsvc.Guardrail, error) {
	return flagsvc.Guardrail{}, errs.Invalid("", "no breach expected in the benchmark")
}
func (f *benchFlags) Experiment(_ context.Context, _, key string) (flagsvc.Experiment, error) {
	return f.experiments[key], nil
}
func (f *benchFlags) Experiments(context.Context, string, string, string) ([]flagsvc.Experiment, error) {
	out := make([]flagsvc.Experiment, 0, len(f.experiments))
	for _, x := range f.experiments {
		out = append(out, x)
	}
	return out, nil
}
func (f *benchFlags) Projects(context.Context) ([]flagsvc.Project, error) {
	return []flagsvc.Project{{Key: "shop"}}, nil
}
func (f *benchFlags) MetricVersion(_ context.Context, _, key string, version int64) (flagsvc.Metric, error) {
	m := flagsvc.Metric{Key: key, Name: "Error rate", Kind: "proportion", EventKey: "error", Direction: "decrease", Version: 1}
	m.Window.End = "168h"
	return m, nil
}
func (f *benchFlags) Flag(context.Context, string, string) (flagsvc.FlagDetail, error) {
	return flagsvc.FlagDetail{}, nil
}
func (f *benchFlags) Members(context.Context) ([]flagsvc.Member, error) { return nil, nil }

// benchStore stands in for Postgres: a healthy sweep writes nothing.
type benchStore struct{}

func (benchStore) StartBreach(context.Context, postgres.Breach) (int64, bool, error) {
	return 0, false, nil
}
func (benchStore) ReportingBreaches(context.Context) ([]postgres.Breach, error) { return nil, nil }
func (benchStore) CompleteBreach(context.Context, int64, time.Time, string, alert.Alert) (bool, error) {
	return false, nil
}
func (benchStore) AbandonBreach(context.Context, int64) error         { return nil }
func (benchStore) Enqueue(context.Context, alert.Alert) (bool, error) { return false, nil }

// BenchmarkSweep100Guardrails measures one guardrail sweep over 100 active guardrails on real
// ClickHouse data: per guardrail the metric's per-variant sums (stats/metricsql over
// experiment_units and raw tracks) and the sequential test, plus the SRM check of the 100
// running experiments. Each experiment has JOBS_BENCH_UNITS units per arm (default 2,000) and
// a 5% error rate in both arms (healthy: nothing is reported, so every run does the same work).
func BenchmarkSweep100Guardrails(b *testing.B) {
	units := 2000
	if v, err := strconv.Atoi(os.Getenv("JOBS_BENCH_UNITS")); err == nil && v > 0 {
		units = v
	}
	conn, _ := chtest.Database(b)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	fs := &benchFlags{experiments: map[string]flagsvc.Experiment{}}
	for i := 0; i < 100; i++ {
		key, flag := fmt.Sprintf("exp-%03d", i), fmt.Sprintf("flag-%03d", i)
		st := start
		fs.experiments[key] = flagsvc.Experiment{Key: key, Flag: flag, Environment: "production", EnvironmentID: "env-prod", Status: "running",
			Control: "off", StartedAt: &st, MetricVersions: map[string]int64{"error-rate": 1},
			Variations: []flagsvc.ExperimentVariation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}}}
		fs.guardrails = append(fs.guardrails, flagsvc.Guardrail{ID: fmt.Sprintf("g-%03d", i), Project: "shop", Environment: "production",
			EnvironmentID: "env-prod", Flag: flag, Experiment: key, Metric: "error-rate", Tolerance: 0.02, Action: "rollback",
			Control: "off", Treatments: []string{"on"}, Status: "active"})
		seedExperiment(b, conn, "env-prod", flag, key, "error", start, arm{"off", units, units / 20}, arm{"on", units, units / 20})
	}
	sw := guardrail.NewSweeper(fs, benchStore{}, conn, slog.New(slog.DiscardHandler), nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := sw.Sweep(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Checked != 100 || res.Errors != 0 || res.Breached != 0 {
			b.Fatalf("sweep: %+v", res)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "guardrails/s")
	// Where a sweep's time goes: one guardrail's sums query and one experiment's exposure
	// count (the SRM check), each run alone.
	b.StopTimer()
	x := metricsql.Experiment{EnvironmentID: "env-prod", Key: "exp-000", Start: start}
	m := &metricsql.Metric{Key: "error-rate", Version: 1, Kind: "proportion", EventKey: "error", WindowEnd: 168 * time.Hour}
	now := time.Now()
	t0 := time.Now()
	for range 10 {
		if _, err := metricsql.Sums(ctx, conn, x, m, metricsql.Snapshot{FoldedUpTo: metricsql.Day(start), Now: now}, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds())/10, "sums-ms/query")
	t0 = time.Now()
	for range 10 {
		if _, err := metricsql.Exposures(ctx, conn, x, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds())/10, "exposures-ms/query")
}
