package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Duration is a time.Duration written in JSON as a Go duration string without zero trailing
// units ("168h", "1h30m", "90s", "0s"), as users write them.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String is time.Duration's form without zero trailing minutes and seconds ("168h0m0s" → "168h").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	bad := &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	if err := json.Unmarshal(b, &s); err != nil {
		return bad
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return bad
	}
	*d = Duration(v)
	return nil
}

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Metric kinds.
const (
	MetricProportion = "proportion"
	MetricMean       = "mean"
	MetricSum        = "sum"
	MetricCount      = "count"
	MetricRatio      = "ratio"
)

// MetricWindow is the conversion window after each context's first exposure.
type MetricWindow struct {
	Start Duration `json:"start"`
	End   Duration `json:"end"`
}

// MetricFilter keeps only events whose property satisfies the operator.
type MetricFilter struct {
	Property string `json:"property"`
	Op       string `json:"op"`
	Values   []any  `json:"values"`
}

// Winsorize caps per-context values before they are summed.
type Winsorize struct {
	Type  string   `json:"type"` // none | absolute | percentile
	Lower *float64 `json:"lower,omitempty"`
	Upper *float64 `json:"upper,omitempty"`
}

// Metric is a metric definition of the catalog.
type Metric struct {
	Key            string         `json:"key"`
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Kind           string         `json:"kind"`
	EventKey       string         `json:"event_key,omitempty"`
	Numerator      string         `json:"numerator,omitempty"`
	Denominator    string         `json:"denominator,omitempty"`
	Window         MetricWindow   `json:"window"`
	Filters        []MetricFilter `json:"filters"`
	Winsorize      Winsorize      `json:"winsorize"`
	Direction      string         `json:"direction"`
	MinSampleSize  int            `json:"min_sample_size"`
	CUPEDPreperiod *Duration      `json:"cuped_preperiod"` // before first exposure; nil on input: the default; 0: off
	Version        int64          `json:"version"`
	Archived       bool           `json:"archived"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

// DefaultCUPEDPreperiod is the CUPED pre-period of a metric (other than a ratio) that does
// not set one: the 7 days before each context's first exposure.
const DefaultCUPEDPreperiod = Duration(7 * 24 * time.Hour)

// MetricDefaults fills what a new metric (or a new version of one) leaves out. A ratio gets
// no window (its numerator's and denominator's apply) and no CUPED (not available for ratios).
func MetricDefaults(m *Metric) {
	if m.Name == "" {
		m.Name = m.Key
	}
	if m.Window == (MetricWindow{}) && m.Kind != MetricRatio {
		m.Window.End = Duration(7 * 24 * time.Hour)
	}
	if m.CUPEDPreperiod == nil {
		d := DefaultCUPEDPreperiod
		if m.Kind == MetricRatio {
			d = 0
		}
		m.CUPEDPreperiod = &d
	}
	if m.Winsorize.Type == "" {
		m.Winsorize.Type = "none"
	}
	if m.Direction == "" {
		m.Direction = "increase"
	}
	if m.Filters == nil {
		m.Filters = []MetricFilter{}
	}
}

// MetricFilterOps are the filter operators.
var MetricFilterOps = []string{"eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains"}

const maxWindow = 90 * 24 * time.Hour

// ValidateMetric checks a metric definition on its own; ratio references are checked by the
// caller against the catalog.
func ValidateMetric(m *Metric) error {
	if !ruleset.ValidKey(m.Key) {
		return errs.Invalid("key", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", ruleset.MaxKeyLength)
	}
	if strings.TrimSpace(m.Name) == "" || len(m.Name) > MaxNameLength {
		return errs.Invalid("name", "is required (at most %d characters)", MaxNameLength)
	}
	if len(m.Description) > MaxDescriptionLength {
		return errs.Invalid("description", "at most %d characters", MaxDescriptionLength)
	}
	switch m.Kind {
	case MetricProportion, MetricMean, MetricSum, MetricCount:
		if !ruleset.ValidKey(m.EventKey) {
			return errs.Invalid("event_key", "the event key the metric reads is required")
		}
		if m.Numerator != "" || m.Denominator != "" {
			return errs.Invalid("numerator", "only ratio metrics have a numerator and denominator")
		}
	case MetricRatio:
		if m.EventKey != "" {
			return errs.Invalid("event_key", "a ratio metric reads its numerator's and denominator's events")
		}
		if !ruleset.ValidKey(m.Numerator) {
			return errs.Invalid("numerator", "the numerator metric's key is required")
		}
		if !ruleset.ValidKey(m.Denominator) {
			return errs.Invalid("denominator", "the denominator metric's key is required")
		}
		if m.Numerator == m.Key || m.Denominator == m.Key {
			return errs.Invalid("numerator", "a ratio cannot refer to itself")
		}
		// The stats service computes a ratio from its parts' own definitions: a window or
		// filters here would be accepted and silently ignored.
		if m.Window != (MetricWindow{}) {
			return errs.Invalid("window", "a ratio metric has no window of its own; the numerator's and denominator's windows apply, so set it on those metrics")
		}
		if len(m.Filters) > 0 {
			return errs.Invalid("filters", "a ratio metric has no filters of its own; the numerator's and denominator's filters apply, so set them on those metrics")
		}
		if m.Winsorize.Type != "" && m.Winsorize.Type != "none" {
			return errs.Invalid("winsorize.type", "a ratio metric has no cap of its own; each part is capped with its own metric's cap, so set it on the numerator or denominator metric")
		}
	default:
		return errs.Invalid("kind", "must be proportion, mean, sum, count or ratio")
	}
	if m.Kind != MetricRatio && (m.Window.Start < 0 || m.Window.End <= m.Window.Start || m.Window.End.Std() > maxWindow) {
		return errs.Invalid("window", "needs 0 <= start < end <= 90 days (e.g. {\"start\":\"0s\",\"end\":\"168h\"})")
	}
	for i, f := range m.Filters {
		p := fmt.Sprintf("filters[%d]", i)
		if f.Property == "" || len(f.Property) > 128 {
			return errs.Invalid(p+".property", "is required (at most 128 characters)")
		}
		known := false
		for _, op := range MetricFilterOps {
			known = known || op == f.Op
		}
		if !known {
			return errs.Invalid(p+".op", "must be one of %s", strings.Join(MetricFilterOps, ", "))
		}
		if len(f.Values) == 0 || len(f.Values) > 1000 {
			return errs.Invalid(p+".values", "1 to 1000 values")
		}
		for j, v := range f.Values {
			vp := fmt.Sprintf("%s.values[%d]", p, j)
			switch f.Op {
			case "gt", "gte", "lt", "lte":
				if _, ok := v.(float64); !ok {
					return errs.Invalid(vp, "must be a number")
				}
			case "contains":
				if _, ok := v.(string); !ok {
					return errs.Invalid(vp, "must be a string")
				}
			default:
				switch v.(type) {
				case string, float64, bool:
				default:
					return errs.Invalid(vp, "must be a string, number or boolean")
				}
			}
		}
	}
	w := m.Winsorize
	switch w.Type {
	case "none":
		if w.Lower != nil || w.Upper != nil {
			return errs.Invalid("winsorize.type", "set absolute or percentile to cap values")
		}
	case "absolute":
		if w.Upper == nil || math.IsNaN(*w.Upper) || (w.Lower != nil && *w.Lower >= *w.Upper) {
			return errs.Invalid("winsorize.upper", "an absolute cap needs upper (and lower < upper if given)")
		}
	case "percentile":
		if w.Upper == nil || *w.Upper <= 0.5 || *w.Upper >= 1 || w.Lower != nil {
			return errs.Invalid("winsorize.upper", "a percentile cap is upper in (0.5, 1), e.g. 0.99")
		}
	default:
		return errs.Invalid("winsorize.type", "must be none, absolute or percentile")
	}
	if m.Direction != "increase" && m.Direction != "decrease" {
		return errs.Invalid("direction", "must be increase (higher is better) or decrease")
	}
	if m.MinSampleSize < 0 || m.MinSampleSize > 100_000_000 {
		return errs.Invalid("min_sample_size", "must be between 0 and 100000000")
	}
	cuped := Duration(0)
	if m.CUPEDPreperiod != nil {
		cuped = *m.CUPEDPreperiod
	}
	if cuped < 0 || cuped.Std() > maxWindow {
		return errs.Invalid("cuped_preperiod", "must be between 0s (off) and 90 days")
	}
	if m.Kind == MetricRatio && cuped != 0 {
		return errs.Invalid("cuped_preperiod", "CUPED is not available for ratio metrics; use 0s")
	}
	return nil
}

// Experiment statuses.
const (
	ExperimentDraft     = "draft"
	ExperimentRunning   = "running"
	ExperimentStopped   = "stopped"
	ExperimentConcluded = "concluded"
)

// ExperimentMetrics names an experiment's metrics by key.
type ExperimentMetrics struct {
	Primary    []string         `json:"primary"`
	Secondary  []string         `json:"secondary"`
	Guardrails []GuardrailInput `json:"guardrails"`
}

// GuardrailInput is a guardrail as experiments (and rollouts) declare it.
type GuardrailInput struct {
	Metric    string  `json:"metric"`
	Tolerance float64 `json:"tolerance"`
	Action    string  `json:"action"`
}

// Analysis is how an experiment's results are computed (STATS.md).
type Analysis struct {
	Engine           string  `json:"engine"` // frequentist | bayesian
	Alpha            float64 `json:"alpha"`
	Sided            string  `json:"sided"` // two_sided | greater | less
	Sequential       bool    `json:"sequential"`
	SequentialTuning float64 `json:"sequential_tuning"`
	CUPED            bool    `json:"cuped"`
	Correction       string  `json:"correction"` // none | holm | bh
}

// Decision concludes an experiment.
type Decision struct {
	Outcome   string    `json:"outcome"` // ship | rollback | inconclusive
	Variation string    `json:"variation,omitempty"`
	Rationale string    `json:"rationale"`
	DecidedBy string    `json:"decided_by"`
	DecidedAt time.Time `json:"decided_at"`
	// FlagUnchanged says why a ship or rollback did not change the flag: its fallthrough no
	// longer served this experiment's rollout (another experiment's, or a later edit).
	FlagUnchanged string `json:"flag_unchanged,omitempty"`
}

// Experiment is an experiment on a flag in an environment.
type Experiment struct {
	ID              string                      `json:"id"`
	Key             string                      `json:"key"`
	Name            string                      `json:"name"`
	Hypothesis      string                      `json:"hypothesis"`
	OwnerID         string                      `json:"owner_id,omitempty"`
	Project         string                      `json:"project"`
	Environment     string                      `json:"environment"`
	EnvironmentID   string                      `json:"environment_id"`
	Flag            string                      `json:"flag"`
	Status          string                      `json:"status"`
	Control         string                      `json:"control"`
	Variations      []ruleset.WeightedVariation `json:"variations"`
	ContextKind     string                      `json:"context_kind"`
	Salt            string                      `json:"salt"`
	Metrics         ExperimentMetrics           `json:"metrics"`
	Analysis        Analysis                    `json:"analysis"`
	PlannedDuration Duration                    `json:"planned_duration"`
	StartedAt       *time.Time                  `json:"started_at"`
	StoppedAt       *time.Time                  `json:"stopped_at"`
	ConcludedAt     *time.Time                  `json:"concluded_at"`
	Decision        *Decision                   `json:"decision"`
	MetricVersions  map[string]int64            `json:"metric_versions"`
	Version         int64                       `json:"version"`
	CreatedAt       time.Time                   `json:"created_at"`
	UpdatedAt       time.Time                   `json:"updated_at"`
}

// Default fills what a guardrail leaves out: its action alerts.
func (g *GuardrailInput) Default() {
	if g.Action == "" {
		g.Action = "alert"
	}
}

// ExperimentDefaults fills what a new experiment leaves out.
func ExperimentDefaults(x *Experiment) {
	if x.Name == "" {
		x.Name = x.Key
	}
	if x.ContextKind == "" {
		x.ContextKind = ruleset.DefaultContextKind
	}
	a := &x.Analysis
	if a.Engine == "" {
		a.Engine = "frequentist"
	}
	if a.Alpha == 0 {
		a.Alpha = 0.05
	}
	if a.Sided == "" {
		a.Sided = "two_sided"
	}
	if a.SequentialTuning == 0 {
		a.SequentialTuning = 5000
	}
	if a.Correction == "" {
		a.Correction = "none"
	}
	if x.PlannedDuration == 0 {
		x.PlannedDuration = Duration(14 * 24 * time.Hour)
	}
	for _, l := range []*[]string{&x.Metrics.Primary, &x.Metrics.Secondary} {
		if *l == nil {
			*l = []string{}
		}
	}
	if x.Metrics.Guardrails == nil {
		x.Metrics.Guardrails = []GuardrailInput{}
	}
	for i := range x.Metrics.Guardrails {
		x.Metrics.Guardrails[i].Default()
	}
	if x.MetricVersions == nil {
		x.MetricVersions = map[string]int64{}
	}
}

// ValidateExperiment checks an experiment against its flag; metric references are checked by
// the caller against the catalog.
func ValidateExperiment(x *Experiment, f *Flag) error {
	if !ruleset.ValidKey(x.Key) {
		return errs.Invalid("key", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", ruleset.MaxKeyLength)
	}
	if strings.TrimSpace(x.Name) == "" || len(x.Name) > MaxNameLength {
		return errs.Invalid("name", "is required (at most %d characters)", MaxNameLength)
	}
	if len(x.Hypothesis) > MaxDescriptionLength {
		return errs.Invalid("hypothesis", "at most %d characters", MaxDescriptionLength)
	}
	if !ruleset.ValidContextKind(x.ContextKind) {
		return errs.Invalid("context_kind", "invalid context kind %q", x.ContextKind)
	}
	if x.Salt != "" && len(x.Salt) > ruleset.MaxSaltLength {
		return errs.Invalid("salt", "at most %d characters", ruleset.MaxSaltLength)
	}
	if len(x.Variations) < 2 {
		return errs.Invalid("variations", "an experiment compares at least 2 variations")
	}
	sum, seen, hasControl := 0, map[string]bool{}, false
	for i, v := range x.Variations {
		p := fmt.Sprintf("variations[%d]", i)
		if f.Variation(v.Variation) == nil {
			return errs.Invalid(p+".variation", "flag %q has no variation %q", f.Key, v.Variation)
		}
		if seen[v.Variation] {
			return errs.Invalid(p+".variation", "variation %q appears twice", v.Variation)
		}
		seen[v.Variation] = true
		if v.Weight <= 0 || v.Weight > ruleset.WeightScale {
			return errs.Invalid(p+".weight", "must be between 1 and %d", ruleset.WeightScale)
		}
		sum += v.Weight
		hasControl = hasControl || v.Variation == x.Control
	}
	if sum != ruleset.WeightScale {
		return errs.Invalid("variations", "weights must sum to %d (units of 1/100000), got %d", ruleset.WeightScale, sum)
	}
	if !hasControl {
		return errs.Invalid("control", "the control %q must be one of the experiment's variations", x.Control)
	}
	if len(x.Metrics.Primary) == 0 {
		return errs.Invalid("metrics.primary", "at least one primary metric is required")
	}
	all := map[string]string{}
	for role, keys := range map[string][]string{"primary": x.Metrics.Primary, "secondary": x.Metrics.Secondary} {
		for i, k := range keys {
			if prev, dup := all[k]; dup {
				return errs.Invalid(fmt.Sprintf("metrics.%s[%d]", role, i), "metric %q is already a %s metric", k, prev)
			}
			all[k] = role
		}
	}
	for i, g := range x.Metrics.Guardrails {
		p := fmt.Sprintf("metrics.guardrails[%d]", i)
		if !ruleset.ValidKey(g.Metric) {
			return errs.Invalid(p+".metric", "is required")
		}
		if g.Tolerance <= 0 || g.Tolerance > 1 || math.IsNaN(g.Tolerance) {
			return errs.Invalid(p+".tolerance", "a relative degradation in (0, 1], e.g. 0.02 for 2%%")
		}
		if g.Action != "alert" && g.Action != "rollback" {
			return errs.Invalid(p+".action", "must be alert or rollback")
		}
	}
	a := x.Analysis
	switch {
	case a.Engine != "frequentist" && a.Engine != "bayesian":
		return errs.Invalid("analysis.engine", "must be frequentist or bayesian")
	case a.Alpha <= 0 || a.Alpha > 0.5:
		return errs.Invalid("analysis.alpha", "must be in (0, 0.5]")
	case a.Sided != "two_sided" && a.Sided != "greater" && a.Sided != "less":
		return errs.Invalid("analysis.sided", "must be two_sided, greater or less")
	case a.Engine == "bayesian" && (a.Sided != "two_sided" || a.Sequential || a.Correction != "none"):
		return errs.Invalid("analysis.engine", "the Bayesian engine is two-sided, not sequential, without corrections")
	case a.Sequential && a.Sided != "two_sided":
		return errs.Invalid("analysis.sided", "sequential analysis is two-sided")
	case a.SequentialTuning <= 0:
		return errs.Invalid("analysis.sequential_tuning", "must be positive (default 5000)")
	case a.Correction != "none" && a.Correction != "holm" && a.Correction != "bh":
		return errs.Invalid("analysis.correction", "must be none, holm or bh")
	}
	if x.PlannedDuration <= 0 || x.PlannedDuration.Std() > 365*24*time.Hour {
		return errs.Invalid("planned_duration", "between 1 hour and a year, e.g. \"336h\"")
	}
	return nil
}

// Guardrail watches one metric of a flag's rollout for harm.
type Guardrail struct {
	ID            string    `json:"id"`
	Project       string    `json:"project"`
	ProjectID     string    `json:"project_id"`
	Environment   string    `json:"environment"`
	EnvironmentID string    `json:"environment_id"`
	Flag          string    `json:"flag"`
	Experiment    string    `json:"experiment,omitempty"`
	Metric        string    `json:"metric"`
	Tolerance     float64   `json:"tolerance"`
	Action        string    `json:"action"`
	Control       string    `json:"control"`
	Treatments    []string  `json:"treatments"`
	Status        string    `json:"status"`
	Breach        *Breach   `json:"breach,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Breach is what the guardrail monitor found, and what was done.
type Breach struct {
	At       time.Time  `json:"at"`
	Effect   float64    `json:"effect"`
	Interval [2]float64 `json:"interval"`
	PValue   float64    `json:"p_value"`
	// Absolute: Effect and Interval are the difference of means (the control's mean was 0, so
	// no relative effect exists), not the relative effect.
	Absolute    bool   `json:"absolute,omitempty"`
	ActionTaken string `json:"action_taken"` // serve_control | turn_off | alert_only
}
