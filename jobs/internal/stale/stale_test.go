package stale

import (
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/settings"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return day(now).AddDate(0, 0, -n) }

// every returns daily counts from `from` to `to` days ago (inclusive) for the variations.
func every(from, to int, counts map[string]uint64) map[time.Time]map[string]uint64 {
	out := map[time.Time]map[string]uint64{}
	for d := from; d >= to; d-- {
		out[daysAgo(d)] = counts
	}
	return out
}

func codes(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestEnvReasons(t *testing.T) {
	th := settings.DefaultThresholds
	old := FlagFacts{Key: "f", CreatedAt: daysAgo(100)}
	window := daysAgo(60)
	cases := []struct {
		name  string
		flag  FlagFacts
		env   EnvFacts
		th    settings.Thresholds
		want  []string
		check func(t *testing.T, rs []Reason)
	}{
		{name: "evaluated yesterday is not stale", flag: old,
			env: EnvFacts{Days: every(40, 1, map[string]uint64{"on": 5, "off": 5}), WindowStart: window}, th: th},
		{name: "last evaluated 45 days ago", flag: old,
			env: EnvFacts{Days: every(50, 45, map[string]uint64{"on": 5}), WindowStart: window}, th: th,
			want: []string{NoEvaluations}, check: func(t *testing.T, rs []Reason) {
				if rs[0].Evidence["last_evaluated"] != daysAgo(45).Format(time.DateOnly) {
					t.Fatalf("evidence: %v", rs[0].Evidence)
				}
			}},
		{name: "last evaluation before the window comes from LastBefore", flag: old,
			env: EnvFacts{LastBefore: daysAgo(200), WindowStart: window}, th: th,
			want: []string{NoEvaluations}, check: func(t *testing.T, rs []Reason) {
				if rs[0].Evidence["last_evaluated"] != daysAgo(200).Format(time.DateOnly) {
					t.Fatalf("evidence: %v", rs[0].Evidence)
				}
			}},
		{name: "never evaluated", flag: old, env: EnvFacts{WindowStart: window}, th: th, want: []string{NoEvaluations},
			check: func(t *testing.T, rs []Reason) {
				if _, ok := rs[0].Evidence["last_evaluated"]; ok || rs[0].Message != "no evaluations for 30 days (none on record)" {
					t.Fatalf("reason: %+v", rs[0])
				}
			}},
		{name: "exactly 30 days without evaluations", flag: old,
			env: EnvFacts{Days: every(31, 30, map[string]uint64{"on": 1}), WindowStart: window}, th: th, want: []string{NoEvaluations}},
		{name: "29 days without evaluations is not yet stale", flag: old,
			env: EnvFacts{Days: every(31, 29, map[string]uint64{"on": 1}), WindowStart: window}, th: th},
		{name: "a young flag is not stale for lack of evaluations", flag: FlagFacts{Key: "f", CreatedAt: daysAgo(5)},
			env: EnvFacts{WindowStart: window}, th: th},
		{name: "one variation for 20 days with an old configuration", flag: old,
			env: EnvFacts{Days: every(20, 0, map[string]uint64{"on": 100, "off": 0}), WindowStart: window, ConfigUpdatedAt: daysAgo(30)}, th: th,
			want: []string{SingleVariation}, check: func(t *testing.T, rs []Reason) {
				ev := rs[0].Evidence
				if ev["variation"] != "on" || ev["evaluations"] != uint64(1400) || ev["days"] != 14 {
					t.Fatalf("evidence: %v", ev)
				}
			}},
		{name: "one variation but the configuration changed inside the window", flag: old,
			env: EnvFacts{Days: every(20, 0, map[string]uint64{"on": 100}), WindowStart: window, ConfigUpdatedAt: daysAgo(3)}, th: th},
		{name: "two variations served", flag: old,
			env: EnvFacts{Days: every(20, 0, map[string]uint64{"on": 100, "off": 1}), WindowStart: window, ConfigUpdatedAt: daysAgo(30)}, th: th},
		{name: "one variation on a flag younger than the window", flag: FlagFacts{Key: "f", CreatedAt: daysAgo(7)},
			env: EnvFacts{Days: every(6, 0, map[string]uint64{"on": 100}), WindowStart: window, ConfigUpdatedAt: daysAgo(7)}, th: th},
		{name: "a per-flag threshold of 7 days", flag: old,
			env: EnvFacts{Days: every(20, 8, map[string]uint64{"on": 1, "off": 1}), WindowStart: window}, th: settings.Thresholds{NoEvaluationsDays: 7, SingleVariationDays: 14},
			want: []string{NoEvaluations}},
		{name: "concluded experiment still carried", flag: old,
			env: EnvFacts{Days: every(20, 0, map[string]uint64{"on": 1, "off": 1}), WindowStart: window,
				CarriedExperiments: []Concluded{{Key: "exp-1", Outcome: "ship", Variation: "on"}}}, th: th,
			want: []string{ExperimentConcluded}, check: func(t *testing.T, rs []Reason) {
				if rs[0].Message != `experiment "exp-1" was concluded (ship on) but the flag still serves its rollout` {
					t.Fatalf("message: %q", rs[0].Message)
				}
			}},
		{name: "several reasons at once", flag: old,
			env: EnvFacts{WindowStart: window, CarriedExperiments: []Concluded{{Key: "x"}}}, th: th,
			want: []string{NoEvaluations, ExperimentConcluded}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := EnvReasons(tc.flag, tc.env, tc.th, now)
			got := codes(rs)
			if len(got) != len(tc.want) {
				t.Fatalf("reasons %v, want %v (%+v)", got, tc.want, rs)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("reasons %v, want %v", got, tc.want)
				}
			}
			if tc.check != nil {
				tc.check(t, rs)
			}
		})
	}
}

func TestFlagReasons(t *testing.T) {
	cases := []struct {
		name string
		flag FlagFacts
		want int
	}{
		{"temporary past its removal date", FlagFacts{Temporary: true, RemovalDate: daysAgo(10).Format(time.DateOnly)}, 1},
		{"removal date is today", FlagFacts{Temporary: true, RemovalDate: daysAgo(0).Format(time.DateOnly)}, 0},
		{"removal date ahead", FlagFacts{Temporary: true, RemovalDate: daysAgo(-3).Format(time.DateOnly)}, 0},
		{"permanent flag", FlagFacts{RemovalDate: daysAgo(10).Format(time.DateOnly)}, 0},
		{"unparseable date", FlagFacts{Temporary: true, RemovalDate: "soon"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := FlagReasons(tc.flag, now)
			if len(rs) != tc.want {
				t.Fatalf("%+v", rs)
			}
			if tc.want == 1 && (rs[0].Code != PastRemovalDate || rs[0].Evidence["days_overdue"] != 10) {
				t.Fatalf("%+v", rs[0])
			}
		})
	}
}
