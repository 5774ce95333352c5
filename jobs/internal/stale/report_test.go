package stale

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// fakeFlags is a hand-written flag service.
type fakeFlags struct {
	flags       []flagsvc.Flag
	configs     map[string]map[string]flagsvc.FlagEnvironment // flag → env → config
	envs        []flagsvc.Environment
	rulesets    map[string]flagsvc.Ruleset
	experiments []flagsvc.Experiment
	detailCalls int
}

func (f *fakeFlags) Flags(context.Context, string) ([]flagsvc.Flag, error) { return f.flags, nil }
func (f *fakeFlags) Flag(_ context.Context, _, key string) (flagsvc.FlagDetail, error) {
	f.detailCalls++
	for _, fl := range f.flags {
		if fl.Key == key {
			return flagsvc.FlagDetail{Flag: fl, Configs: f.configs[key]}, nil
		}
	}
	return flagsvc.FlagDetail{}, errs.NotFound("flag not found")
}
func (f *fakeFlags) Environments(context.Context, string) ([]flagsvc.Environment, error) {
	return f.envs, nil
}
func (f *fakeFlags) Ruleset(_ context.Context, _, env string) (flagsvc.Ruleset, error) {
	return f.rulesets[env], nil
}
func (f *fakeFlags) Experiments(_ context.Context, _, status, _ string) ([]flagsvc.Experiment, error) {
	var out []flagsvc.Experiment
	for _, x := range f.experiments {
		if x.Status == status {
			out = append(out, x)
		}
	}
	return out, nil
}
func (f *fakeFlags) Members(context.Context) ([]flagsvc.Member, error) {
	return []flagsvc.Member{{ID: "u1", Name: "Alice", Email: "alice@example.com"}}, nil
}

type fakeSettings struct {
	project settings.Project
	flags   map[string]settings.Flag
}

func (s fakeSettings) ProjectSettings(context.Context, string) (settings.Project, error) {
	return s.project, nil
}
func (s fakeSettings) FlagSettings(context.Context, string) (map[string]settings.Flag, error) {
	return s.flags, nil
}

// seed writes evaluation summaries (one per flag x variation x day, as an SDK would send) for
// the days from..to ago; the ingest schema's materialized view rolls them up by day. Each
// summary is written twice, as a retried delivery would be.
func seed(t *testing.T, conn driver.Conn, env, flag string, counts map[string]uint64, from, to int) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO evaluation_summaries (environment_id, event_id, timestamp, received_at, clamped,
		window_start, window_end, flag_key, variation_key, flag_version, count, context_kind, context_key, sdk_name, sdk_version)`)
	if err != nil {
		t.Fatal(err)
	}
	for d := from; d >= to; d-- {
		at := daysAgo(d).Add(10 * time.Hour)
		for v, n := range counts {
			id := uuid.New()
			for range 2 {
				if err := b.Append(env, id, at, at, uint8(0), at, at.Add(time.Minute), flag, v, uint64(1), n, "", "", "go", "1.0"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func rolloutFlag(key, experiment string) flagsvc.RulesetFlag {
	return flagsvc.RulesetFlag{Key: key, On: true, Fallthrough: flagsvc.Serve{Rollout: &flagsvc.Rollout{ExperimentKey: experiment,
		Variations: []flagsvc.Weighted{{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}}}
}

// TestReportFromSeededEvaluationCounts: the report finds each kind of stale flag in the
// evaluation counts ClickHouse holds, with its evidence, honours per-flag overrides, and
// leaves healthy, young and recently changed flags alone.
func TestReportFromSeededEvaluationCounts(t *testing.T) {
	conn, _ := chtest.Database(t)
	both := map[string]uint64{"on": 60, "off": 40}
	onlyOn := map[string]uint64{"on": 100}
	// production
	seed(t, conn, "env-prod", "dead-flag", both, 50, 45)
	seed(t, conn, "env-prod", "all-on", onlyOn, 20, 0)
	seed(t, conn, "env-prod", "recently-changed", onlyOn, 20, 0)
	seed(t, conn, "env-prod", "temp-overdue", both, 20, 0)
	seed(t, conn, "env-prod", "concluded-exp", both, 20, 0)
	seed(t, conn, "env-prod", "quiet-10-days", both, 30, 10)
	seed(t, conn, "env-prod", "healthy", both, 40, 0)
	seed(t, conn, "env-prod", "ignored", both, 90, 80)
	// staging: only the healthy flag is used there; another environment's counts never leak.
	seed(t, conn, "env-stg", "healthy", both, 5, 0)
	seed(t, conn, "env-other-project", "dead-flag", both, 3, 0)

	old := daysAgo(100)
	flag := func(key string, created time.Time) flagsvc.Flag {
		return flagsvc.Flag{Key: key, Name: key, OwnerID: "u1", CreatedAt: created, Lifecycle: "active"}
	}
	temp := flag("temp-overdue", old)
	temp.Temporary, temp.RemovalDate = true, daysAgo(10).Format(time.DateOnly)
	fs := &fakeFlags{
		flags: []flagsvc.Flag{flag("dead-flag", old), flag("fresh-flag", daysAgo(5)), flag("all-on", old), flag("recently-changed", old),
			temp, flag("concluded-exp", old), flag("quiet-10-days", old), flag("healthy", old), flag("ignored", old)},
		configs: map[string]map[string]flagsvc.FlagEnvironment{
			"all-on":           {"production": {Version: 4, UpdatedAt: daysAgo(30)}},
			"recently-changed": {"production": {Version: 9, UpdatedAt: daysAgo(3)}},
		},
		envs: []flagsvc.Environment{{ID: "env-prod", Key: "production", Critical: true}, {ID: "env-stg", Key: "staging"}},
		rulesets: map[string]flagsvc.Ruleset{
			"production": {Flags: []flagsvc.RulesetFlag{rolloutFlag("concluded-exp", "exp-1"), rolloutFlag("healthy", "exp-running")}},
		},
		experiments: []flagsvc.Experiment{
			{Key: "exp-1", Status: "concluded", Flag: "concluded-exp", Decision: &struct {
				Outcome   string `json:"outcome"`
				Variation string `json:"variation"`
			}{"ship", "on"}},
			{Key: "exp-running", Status: "running", Flag: "healthy"},
		},
	}
	seven := 7
	st := fakeSettings{project: settings.Project{Project: "shop", DigestEnabled: true},
		flags: map[string]settings.Flag{"ignored": {Flag: "ignored", Ignore: true}, "quiet-10-days": {Flag: "quiet-10-days", NoEvaluationsDays: &seven}}}
	r := &Reporter{Settings: st, CH: conn, Defaults: settings.DefaultThresholds, Now: func() time.Time { return now }}

	rep, err := r.Report(context.Background(), fs, Query{Project: "shop", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]FlagReport{}
	for _, it := range rep.Items {
		got[it.Flag] = it
	}
	want := map[string][]string{
		"dead-flag":     {NoEvaluations},
		"all-on":        {SingleVariation},
		"temp-overdue":  {PastRemovalDate},
		"concluded-exp": {ExperimentConcluded},
		"quiet-10-days": {NoEvaluations},
	}
	if len(got) != len(want) {
		b, _ := json.MarshalIndent(rep, "", " ")
		t.Fatalf("stale flags: %d, want %d:\n%s", len(got), len(want), b)
	}
	for flag, codesWant := range want {
		t.Run(flag, func(t *testing.T) {
			it, ok := got[flag]
			if !ok {
				t.Fatalf("%s is not reported", flag)
			}
			all := append(codes(it.FlagReasons), func() []string {
				var c []string
				for _, e := range it.Environment {
					if e.Environment != "production" {
						t.Fatalf("environment %s in a production report", e.Environment)
					}
					c = append(c, codes(e.Reasons)...)
				}
				return c
			}()...)
			if len(all) != len(codesWant) || all[0] != codesWant[0] {
				t.Fatalf("reasons %v, want %v", all, codesWant)
			}
			if it.Owner.Email != "alice@example.com" {
				t.Fatalf("owner %+v", it.Owner)
			}
		})
	}
	if r := got["temp-overdue"].Reason; r != "temporary flag past its planned removal date "+daysAgo(10).Format(time.DateOnly)+" (10 days ago)" {
		t.Fatalf("temp-overdue summary: %q", r)
	}
	if r := got["dead-flag"].Reason; r != "production: no evaluations for 30 days (last on "+daysAgo(45).Format(time.DateOnly)+")" {
		t.Fatalf("dead-flag summary: %q", r)
	}
	if ev := got["dead-flag"].Environment[0].Reasons[0].Evidence; ev["last_evaluated"] != daysAgo(45).Format(time.DateOnly) {
		t.Fatalf("dead-flag evidence: %v", ev)
	}
	// Summaries were stored twice; the rollup counts both, which cannot make a flag stale or
	// change the variation it served.
	if ev := got["all-on"].Environment[0].Reasons[0].Evidence; ev["variation"] != "on" || ev["evaluations"] != uint64(14*2*100) {
		t.Fatalf("all-on evidence: %v", ev)
	}
	if th := got["quiet-10-days"].Thresholds; th.NoEvaluationsDays != 7 {
		t.Fatalf("override not applied: %+v", th)
	}
	if fs.detailCalls != 2 {
		t.Fatalf("flag details read %d times; only the two single-variation candidates need them", fs.detailCalls)
	}

	// Every environment: staging adds the flags nobody evaluates there.
	all, err := r.Report(context.Background(), fs, Query{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var dead FlagReport
	for _, it := range all.Items {
		if it.Flag == "dead-flag" {
			dead = it
		}
		if it.Flag == "healthy" {
			t.Fatalf("healthy flag reported: %+v", it)
		}
	}
	if len(dead.Environment) != 2 || dead.Environment[1].Environment != "staging" ||
		dead.Environment[1].Reasons[0].Message != "no evaluations for 30 days (none on record)" {
		t.Fatalf("dead-flag across environments: %+v", dead.Environment)
	}
	lines := DigestFlags(all)
	if len(lines) == 0 || lines[0].Flag != "all-on" {
		t.Fatalf("digest: %+v", lines)
	}
}
