// Package schedule owns scheduled flag changes: a change is one or more ordered steps (a ramp
// such as 5% → 25% → 50% → 100% has several), each due at a time, each applied through the
// flag service as a normal configuration write marked as scheduled and based on the version
// the flag had when it was scheduled (or after the previous step). A flag edited in between
// makes the write conflict: the change fails safely — nothing is clobbered — and people are
// alerted.
package schedule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// Statuses of changes and steps.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusDone      = "done"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Action types.
const (
	ActionToggle  = "toggle"
	ActionRollout = "rollout"
	ActionPatch   = "patch"
)

// WeightScale is the sum of a rollout's weights (the ruleset's units of 1/100000).
const WeightScale = 100000

// MaxSteps bounds a ramp.
const MaxSteps = 20

// Actor is who did something, as the flag service reports it.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Weight is one variation's share of a rollout, in units of 1/100000.
type Weight struct {
	Variation string `json:"variation"`
	Weight    int    `json:"weight"`
}

// Action is what a step does to the flag's configuration in the environment.
type Action struct {
	// Type is toggle, rollout or patch.
	Type string `json:"type"`
	// On turns the flag on or off (toggle; optional for rollout).
	On *bool `json:"on,omitempty"`
	// Weights set the fallthrough rollout (rollout); they sum to 100000.
	Weights []Weight `json:"weights,omitempty"`
	// Patch is a JSON merge patch of the configuration (patch).
	Patch json.RawMessage `json:"patch,omitempty"`
}

// Step is one timed action of a change.
type Step struct {
	Position        int        `json:"position"`
	ExecuteAt       time.Time  `json:"execute_at"`
	Action          Action     `json:"action"`
	Status          string     `json:"status"`
	Attempts        int        `json:"attempts"`
	ExpectedVersion *int64     `json:"expected_version,omitempty"`
	ResultVersion   *int64     `json:"result_version,omitempty"`
	ExecutedAt      *time.Time `json:"executed_at,omitempty"`
	Error           string     `json:"error,omitempty"`
}

// Change is a scheduled change of one flag in one environment.
type Change struct {
	ID            int64  `json:"id"`
	Project       string `json:"project"`
	Environment   string `json:"environment"`
	EnvironmentID string `json:"environment_id"`
	Flag          string `json:"flag"`
	// Kind is "change" (one step) or "ramp" (several).
	Kind    string `json:"kind"`
	Comment string `json:"comment"`
	// BaseVersion is the flag's configuration version in the environment when the change was
	// scheduled: the first step applies only on top of it.
	BaseVersion int64      `json:"base_version"`
	CreatedBy   Actor      `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	Status      string     `json:"status"`
	Failure     string     `json:"failure,omitempty"`
	CancelledBy *Actor     `json:"cancelled_by,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Steps       []Step     `json:"steps"`
}

// StepInput is a step as a client gives it.
type StepInput struct {
	At     time.Time `json:"at"`
	Action Action    `json:"action"`
}

// RampInput is the short form of a ramp: serve Variation to a growing percentage, the rest
// to Rest, turning the flag on with the first step.
type RampInput struct {
	Variation string          `json:"variation"`
	Rest      string          `json:"rest"`
	Steps     []RampStepInput `json:"steps"`
}

// RampStepInput is one ramp step: Percent (0–100, up to three decimals) at At.
type RampStepInput struct {
	At      time.Time `json:"at"`
	Percent float64   `json:"percent"`
}

// CreateInput schedules a change: either Steps, or Ramp.
type CreateInput struct {
	Comment string      `json:"comment"`
	Steps   []StepInput `json:"steps,omitempty"`
	Ramp    *RampInput  `json:"ramp,omitempty"`
}

// patchable are the configuration fields a patch may touch (the flag service's FlagConfig).
var patchable = map[string]bool{"on": true, "off_variation": true, "prerequisites": true, "targets": true,
	"rules": true, "fallthrough": true, "salt": true}

// Plan validates the input against now and returns the steps to store, in order.
func (in CreateInput) Plan(now time.Time) ([]Step, error) {
	if len(in.Comment) > 1000 {
		return nil, errs.Invalid("comment", "at most 1000 characters")
	}
	steps := in.Steps
	switch {
	case in.Ramp != nil && len(in.Steps) > 0:
		return nil, errs.Invalid("ramp", "give either steps or ramp, not both")
	case in.Ramp != nil:
		var err error
		if steps, err = in.Ramp.steps(); err != nil {
			return nil, err
		}
	case len(steps) == 0:
		return nil, errs.Invalid("steps", "schedule at least one step")
	}
	if len(steps) > MaxSteps {
		return nil, errs.Invalid("steps", "at most %d steps", MaxSteps)
	}
	out := make([]Step, len(steps))
	for i, s := range steps {
		field := fmt.Sprintf("steps[%d]", i)
		if in.Ramp != nil {
			field = fmt.Sprintf("ramp.steps[%d]", i)
		}
		if s.At.IsZero() {
			return nil, errs.Invalid(field+".at", "is required (RFC 3339 time)")
		}
		if s.At.Before(now.Add(-time.Minute)) {
			return nil, errs.Invalid(field+".at", "is in the past")
		}
		if i > 0 && !s.At.After(steps[i-1].At) {
			return nil, errs.Invalid(field+".at", "steps must be in strictly increasing time order")
		}
		a, err := s.Action.normalize(field + ".action")
		if err != nil {
			return nil, err
		}
		out[i] = Step{Position: i + 1, ExecuteAt: s.At.UTC(), Action: a, Status: StatusPending}
	}
	return out, nil
}

func (r RampInput) steps() ([]StepInput, error) {
	if r.Variation == "" {
		return nil, errs.Invalid("ramp.variation", "name the variation being ramped up")
	}
	if r.Rest == "" || r.Rest == r.Variation {
		return nil, errs.Invalid("ramp.rest", "name the variation the other contexts get (not the ramped one)")
	}
	if len(r.Steps) == 0 {
		return nil, errs.Invalid("ramp.steps", "give at least one step")
	}
	on := true
	out := make([]StepInput, len(r.Steps))
	for i, s := range r.Steps {
		if !(s.Percent >= 0 && s.Percent <= 100) {
			return nil, errs.Invalid(fmt.Sprintf("ramp.steps[%d].percent", i), "must be between 0 and 100")
		}
		exact := s.Percent * WeightScale / 100
		w := int(math.Round(exact))
		if math.Abs(float64(w)-exact) > 1e-6 {
			return nil, errs.Invalid(fmt.Sprintf("ramp.steps[%d].percent", i), "at most three decimals")
		}
		out[i] = StepInput{At: s.At, Action: Action{Type: ActionRollout, On: &on,
			Weights: []Weight{{Variation: r.Variation, Weight: w}, {Variation: r.Rest, Weight: WeightScale - w}}}}
	}
	return out, nil
}

func (a Action) normalize(field string) (Action, error) {
	switch a.Type {
	case ActionToggle:
		if a.On == nil {
			return a, errs.Invalid(field+".on", "is required for a toggle (true or false)")
		}
		if len(a.Weights) > 0 || len(a.Patch) > 0 {
			return a, errs.Invalid(field, "a toggle takes only on")
		}
	case ActionRollout:
		if len(a.Patch) > 0 {
			return a, errs.Invalid(field+".patch", "a rollout takes weights (and optionally on)")
		}
		if len(a.Weights) < 1 {
			return a, errs.Invalid(field+".weights", "give each variation's weight")
		}
		sum, seen := 0, map[string]bool{}
		for i, w := range a.Weights {
			f := fmt.Sprintf("%s.weights[%d]", field, i)
			if w.Variation == "" {
				return a, errs.Invalid(f+".variation", "is required")
			}
			if seen[w.Variation] {
				return a, errs.Invalid(f+".variation", "variation %q appears twice", w.Variation)
			}
			seen[w.Variation] = true
			if w.Weight < 0 || w.Weight > WeightScale {
				return a, errs.Invalid(f+".weight", "must be between 0 and %d", WeightScale)
			}
			sum += w.Weight
		}
		if sum != WeightScale {
			return a, errs.Invalid(field+".weights", "weights sum to %d, want %d (units of 1/100000)", sum, WeightScale)
		}
	case ActionPatch:
		if a.On != nil || len(a.Weights) > 0 {
			return a, errs.Invalid(field, "a patch takes only patch")
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(a.Patch, &doc); err != nil || doc == nil {
			return a, errs.Invalid(field+".patch", "must be a JSON object (a merge patch of the flag's configuration)")
		}
		if len(doc) == 0 {
			return a, errs.Invalid(field+".patch", "changes nothing")
		}
		for k := range doc {
			if !patchable[k] {
				return a, errs.Invalid(field+".patch."+k, "is not a configuration field (on, off_variation, prerequisites, targets, rules, fallthrough, salt)")
			}
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, a.Patch); err != nil {
			return a, errs.Invalid(field+".patch", "must be JSON")
		}
		a.Patch = buf.Bytes()
	case "":
		return a, errs.Invalid(field+".type", "is required (toggle, rollout or patch)")
	default:
		return a, errs.Invalid(field+".type", "unknown action %q (toggle, rollout or patch)", a.Type)
	}
	return a, nil
}

// MergePatch is the flag service merge patch that applies a rollout or patch action.
func (a Action) MergePatch() json.RawMessage {
	switch a.Type {
	case ActionRollout:
		doc := map[string]any{"fallthrough": map[string]any{"variation": nil, "rollout": map[string]any{"variations": a.Weights}}}
		if a.On != nil {
			doc["on"] = *a.On
		}
		b, _ := json.Marshal(doc)
		return b
	case ActionPatch:
		return a.Patch
	}
	return nil
}

// Describe says what an action does, for comments and alerts: "turn on", "rollout on 25%,
// off 75%", "patch fallthrough, rules".
func (a Action) Describe() string {
	switch a.Type {
	case ActionToggle:
		if a.On != nil && *a.On {
			return "turn on"
		}
		return "turn off"
	case ActionRollout:
		parts := make([]string, len(a.Weights))
		for i, w := range a.Weights {
			parts[i] = fmt.Sprintf("%s %s", w.Variation, percent(w.Weight))
		}
		s := "rollout " + strings.Join(parts, ", ")
		if a.On != nil && *a.On {
			s = "turn on, " + s
		} else if a.On != nil {
			s = "turn off, " + s
		}
		return s
	case ActionPatch:
		var doc map[string]json.RawMessage
		_ = json.Unmarshal(a.Patch, &doc)
		keys := make([]string, 0, len(doc))
		for k := range doc {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "change " + strings.Join(keys, ", ")
	}
	return a.Type
}

func percent(w int) string {
	p := float64(w) * 100 / WeightScale
	if p == float64(int(p)) {
		return fmt.Sprintf("%d%%", int(p))
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", p), "0"), ".") + "%"
}

// Marker starts the comment of every configuration write a step makes; the executor finds
// its own earlier write by it after an interruption.
func Marker(changeID int64, position, steps int) string {
	return fmt.Sprintf("Scheduled change #%d step %d/%d", changeID, position, steps)
}

// Comment is the comment of a step's configuration write: the marker, who scheduled it,
// what it does and the scheduler's own comment.
func Comment(c Change, s Step) string {
	out := fmt.Sprintf("%s (scheduled by %s): %s", Marker(c.ID, s.Position, len(c.Steps)), actorLabel(c.CreatedBy), s.Action.Describe())
	if c.Comment != "" {
		out += " — " + c.Comment
	}
	return out
}

func actorLabel(a Actor) string {
	if a.Name != "" {
		return a.Name
	}
	if a.ID != "" {
		return a.Type + " " + a.ID
	}
	return "unknown"
}

// ActorLabel is how an actor is named in comments and alerts.
func ActorLabel(a Actor) string { return actorLabel(a) }

// Claim is a step leased to an executor: its change (with every step), the step, and the
// configuration version the write must be based on.
type Claim struct {
	Change   Change
	Step     Step
	Expected int64
	// Recovering is true when an earlier executor claimed the step and died: its write may
	// have been applied already.
	Recovering bool
}
