package schedule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestPlan(t *testing.T) {
	on := true
	cases := []struct {
		name     string
		in       CreateInput
		wantErr  string // field
		describe []string
	}{
		{name: "ramp 5 25 50 100", in: CreateInput{Ramp: &RampInput{Variation: "on", Rest: "off", Steps: []RampStepInput{
			{At: t0.Add(time.Hour), Percent: 5}, {At: t0.Add(2 * time.Hour), Percent: 25}, {At: t0.Add(3 * time.Hour), Percent: 50}, {At: t0.Add(4 * time.Hour), Percent: 100}}}},
			describe: []string{"turn on, rollout on 5%, off 95%", "turn on, rollout on 25%, off 75%", "turn on, rollout on 50%, off 50%", "turn on, rollout on 100%, off 0%"}},
		{name: "fractional percent", in: CreateInput{Ramp: &RampInput{Variation: "on", Rest: "off", Steps: []RampStepInput{{At: t0.Add(time.Hour), Percent: 0.125}}}},
			describe: []string{"turn on, rollout on 0.125%, off 99.875%"}},
		{name: "too many decimals", in: CreateInput{Ramp: &RampInput{Variation: "on", Rest: "off", Steps: []RampStepInput{{At: t0.Add(time.Hour), Percent: 0.0001}}}},
			wantErr: "ramp.steps[0].percent"},
		{name: "toggle", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionToggle, On: &on}}}},
			describe: []string{"turn on"}},
		{name: "patch", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionPatch, Patch: json.RawMessage(`{"rules": [], "on": false}`)}}}},
			describe: []string{"change on, rules"}},
		{name: "steps and ramp", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionToggle, On: &on}}},
			Ramp: &RampInput{Variation: "on", Rest: "off"}}, wantErr: "ramp"},
		{name: "ramp rest equals variation", in: CreateInput{Ramp: &RampInput{Variation: "on", Rest: "on", Steps: []RampStepInput{{At: t0, Percent: 5}}}}, wantErr: "ramp.rest"},
		{name: "duplicate variation", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionRollout,
			Weights: []Weight{{"on", 50000}, {"on", 50000}}}}}}, wantErr: "steps[0].action.weights[1].variation"},
		{name: "negative weight", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionRollout,
			Weights: []Weight{{"on", -1}, {"off", 100001}}}}}}, wantErr: "steps[0].action.weights[0].weight"},
		{name: "patch null", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: ActionPatch, Patch: json.RawMessage(`null`)}}}},
			wantErr: "steps[0].action.patch"},
		{name: "unknown type", in: CreateInput{Steps: []StepInput{{At: t0.Add(time.Minute), Action: Action{Type: "delete"}}}}, wantErr: "steps[0].action.type"},
		{name: "missing time", in: CreateInput{Steps: []StepInput{{Action: Action{Type: ActionToggle, On: &on}}}}, wantErr: "steps[0].at"},
		{name: "too many steps", in: CreateInput{Steps: func() []StepInput {
			var s []StepInput
			for i := 0; i <= MaxSteps; i++ {
				s = append(s, StepInput{At: t0.Add(time.Duration(i+1) * time.Minute), Action: Action{Type: ActionToggle, On: &on}})
			}
			return s
		}()}, wantErr: "steps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := tc.in.Plan(t0)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr+":") {
					t.Fatalf("err = %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != len(tc.describe) {
				t.Fatalf("%d steps", len(steps))
			}
			for i, s := range steps {
				if got := s.Action.Describe(); got != tc.describe[i] || s.Position != i+1 || s.Status != StatusPending {
					t.Fatalf("step %d: %q (%+v), want %q", i, got, s, tc.describe[i])
				}
			}
		})
	}
}

func TestMergePatchOfARollout(t *testing.T) {
	on := true
	a := Action{Type: ActionRollout, On: &on, Weights: []Weight{{"on", 25000}, {"off", 75000}}}
	want := `{"fallthrough":{"rollout":{"variations":[{"variation":"on","weight":25000},{"variation":"off","weight":75000}]},"variation":null},"on":true}`
	if got := string(a.MergePatch()); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

// FuzzCreateInput: whatever a client sends, decoding and planning never panic, and an
// accepted plan keeps its invariants.
func FuzzCreateInput(f *testing.F) {
	for _, s := range []string{
		`{"steps":[{"at":"2026-11-25T13:00:00Z","action":{"type":"toggle","on":true}}]}`,
		`{"ramp":{"variation":"on","rest":"off","steps":[{"at":"2026-11-25T13:00:00Z","percent":5},{"at":"2026-11-25T14:00:00Z","percent":50}]}}`,
		`{"steps":[{"at":"2026-11-25T13:00:00Z","action":{"type":"patch","patch":{"rules":[]}}}],"comment":"x"}`,
		`{"steps":[{"at":"2026-11-25T13:00:00Z","action":{"type":"rollout","weights":[{"variation":"a","weight":100000}]}}]}`,
		`{"steps":[]}`, `[]`, `{"ramp":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in CreateInput
		if err := httpapi.Decode(data, &in); err != nil {
			return
		}
		steps, err := in.Plan(t0)
		if err != nil {
			return
		}
		if len(steps) == 0 || len(steps) > MaxSteps {
			t.Fatalf("%d steps accepted", len(steps))
		}
		for i, s := range steps {
			if i > 0 && !s.ExecuteAt.After(steps[i-1].ExecuteAt) {
				t.Fatal("steps out of order")
			}
			if s.Action.Type == ActionRollout {
				sum := 0
				for _, w := range s.Action.Weights {
					sum += w.Weight
				}
				if sum != WeightScale {
					t.Fatalf("weights sum to %d", sum)
				}
			}
			if s.Action.Type != ActionToggle && !json.Valid(s.Action.MergePatch()) {
				t.Fatal("invalid merge patch")
			}
			_ = Comment(Change{ID: 1, Steps: steps}, s)
		}
	})
}

// TestDescribeEdits: the versions after the step's are named oldest first, with kind, author,
// time and comment; at most limit of them, the rest counted from the newest version (also
// those beyond the history read).
func TestDescribeEdits(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 30, 5, 0, time.UTC)
	v := func(n int64, change, comment string, a flagsvc.Actor) flagsvc.ConfigVersion {
		return flagsvc.ConfigVersion{Version: n, Change: change, Comment: comment, Actor: a, CreatedAt: at.Add(time.Duration(n) * time.Minute)}
	}
	alice := flagsvc.Actor{Type: "user", ID: "u1", Name: "alice@example.com"}
	ci := flagsvc.Actor{Type: "token", ID: "t1", Name: "ci-deploy"}
	cases := []struct {
		name     string
		hist     []flagsvc.ConfigVersion
		expected int64
		want     string
	}{
		{name: "none after", hist: []flagsvc.ConfigVersion{v(7, "update", "", alice)}, expected: 7, want: ""},
		{name: "experiment start then edit, oldest first", expected: 7,
			hist: []flagsvc.ConfigVersion{v(9, "update", "", ci), v(8, "experiment", "experiment q4 started", alice), v(7, "update", "x", alice)},
			want: `version 8, an experiment start by user alice@example.com at 2026-11-26 09:38:05 UTC ("experiment q4 started"); ` +
				`version 9, an edit by token ci-deploy at 2026-11-26 09:39:05 UTC`},
		{name: "another scheduled change", expected: 3,
			hist: []flagsvc.ConfigVersion{v(4, "scheduled", "Scheduled change #12 step 2/3 (scheduled by bob): turn on", ci)},
			want: `version 4, another scheduled change (#12 step 2/3) by token ci-deploy at 2026-11-26 09:34:05 UTC ("Scheduled change #12 step 2/3 (scheduled by bob): turn on")`},
		{name: "more than the limit, and beyond the history read", expected: 10,
			hist: []flagsvc.ConfigVersion{v(30, "toggle", "", alice), v(29, "kill", "incident 42", alice), v(28, "auto_rollback", "", flagsvc.Actor{}),
				v(27, "rollback", "", alice), v(26, "update", "", alice)},
			want: `version 26, an edit by user alice@example.com at 2026-11-26 09:56:05 UTC; ` +
				`version 27, a rollback to an earlier version by user alice@example.com at 2026-11-26 09:57:05 UTC; ` +
				`version 28, a guardrail's automatic rollback by an unknown actor at 2026-11-26 09:58:05 UTC; and 17 more`},
		{name: "long comment cut", expected: 1,
			hist: []flagsvc.ConfigVersion{v(2, "update", strings.Repeat("é", 200), alice)},
			want: `version 2, an edit by user alice@example.com at 2026-11-26 09:32:05 UTC ("` + strings.Repeat("é", 119) + `…")`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := DescribeEdits(tc.hist, tc.expected, 3); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
