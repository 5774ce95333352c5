// Package guardrail watches guardrail metrics of running experiments and decides when a
// release hurts one beyond its tolerance: per-variant sums from ClickHouse (stats/metricsql,
// the results workers' queries), a one-sided sequential test (stats/engine's always-valid
// confidence sequences, STATS.md §5, so checking every minute does not inflate false alarms),
// and, on a breach, a report to the flag service — which rolls the flag back — and an alert.
// It also flags sample-ratio mismatch in running experiments.
package guardrail

import (
	"fmt"
	"math"

	"github.com/switchyard-io/switchyard/stats/engine"
)

// Directions of a metric: which way is better.
const (
	Increase = "increase"
	Decrease = "decrease"
)

// Test configures the breach test.
type Test struct {
	// Alpha is the one-sided false-alarm rate over the whole life of the guardrail, however
	// often it is checked and however many treatments it compares (default 0.05): each of k
	// treatments is tested at Alpha/k (Bonferroni).
	Alpha float64
	// Tuning is the sequential tuning N* (default 5000): the total units around which the
	// confidence sequence is tightest.
	Tuning float64
	// MinUnits per arm before any decision (default 100): the asymptotic intervals need a
	// sample that is not tiny.
	MinUnits int64
}

func (t Test) withDefaults() Test {
	if t.Alpha <= 0 || t.Alpha >= 0.5 {
		t.Alpha = 0.05
	}
	if t.Tuning <= 0 {
		t.Tuning = engine.DefaultSequentialTuning
	}
	if t.MinUnits <= 0 {
		t.MinUnits = 100
	}
	return t
}

// Input is one guardrail's data: the metric's kind and good direction, the tolerated relative
// degradation, and the per-variant sums of the control and each treatment.
type Input struct {
	Metric    string
	Kind      engine.Kind
	Direction string
	Tolerance float64
	Control   engine.VariantSums
	// Treatments are compared with the control one by one.
	Treatments []engine.VariantSums
}

// Decision is the test's outcome for the worst treatment.
type Decision struct {
	Breached  bool   `json:"breached"`
	Treatment string `json:"treatment"`
	// Effect is the treatment's relative effect on the metric ((mB - mA)/mA), or, when
	// Absolute, the difference of means (mB - mA).
	Effect float64 `json:"effect"`
	// Absolute: the control's mean is 0, so no relative effect exists (a harm that appears only
	// with the treatment, like a new kind of error); Effect and Interval are the difference of
	// means, and any harm the interval establishes is beyond every relative tolerance.
	Absolute bool `json:"absolute,omitempty"`
	// Interval is the always-valid confidence sequence of Effect at two-sided level 1-2α:
	// its harmful end is the one-sided bound at level α.
	Interval [2]float64 `json:"interval"`
	// IntervalAlpha is the two-sided α of Interval (2α/k for k treatments).
	IntervalAlpha float64 `json:"interval_alpha"`
	// PValue is the one-sided always-valid p-value against no effect (half the two-sided one).
	PValue float64 `json:"p_value"`
	// Harm is how much worse the treatment looks, in the metric's bad direction (> 0 is worse).
	Harm          float64 `json:"harm"`
	ControlN      int64   `json:"control_n"`
	TreatmentN    int64   `json:"treatment_n"`
	ControlMean   float64 `json:"control_mean"`
	TreatmentMean float64 `json:"treatment_mean"`
	// Reason says why there is no decision ("too few units", an engine error code) or what the
	// breach was.
	Reason string `json:"reason"`
}

// Decide runs the one-sided sequential test for every treatment and returns the breach of the
// most harmful treatment, else the decision about the most harmful one.
//
// The test: the always-valid confidence sequence of the relative effect at two-sided level
// 1-2α (stats/engine, STATS.md §5) covers the true effect at every look at once with
// probability 1-2α, so its harmful end alone is wrong with probability at most α, however
// often we look. A breach is declared when the whole sequence lies beyond the tolerance on
// the harmful side — for a metric where higher is better, when its upper end is below
// -tolerance; where lower is better, when its lower end is above +tolerance. If the true
// degradation is within the tolerance, that happens with probability at most α over the
// guardrail's life. With several treatments each is tested at α/k, so that holds for the
// guardrail as a whole. When the control's mean is 0 there is no relative effect: the
// difference of means is tested instead, and a breach is a harm it establishes beyond 0.
func Decide(in Input, t Test) (Decision, error) {
	t = t.withDefaults()
	if in.Direction != Increase && in.Direction != Decrease {
		return Decision{}, fmt.Errorf("guardrail: metric %s: unknown direction %q", in.Metric, in.Direction)
	}
	if !(in.Tolerance >= 0) || math.IsInf(in.Tolerance, 0) {
		return Decision{}, fmt.Errorf("guardrail: tolerance %v", in.Tolerance)
	}
	if len(in.Treatments) == 0 {
		return Decision{}, fmt.Errorf("guardrail: metric %s: no treatment", in.Metric)
	}
	sign := 1.0 // harm = sign * effect
	if in.Direction == Increase {
		sign = -1
	}
	alpha := t.Alpha / float64(len(in.Treatments))
	var best *Decision
	for _, tr := range in.Treatments {
		d := Decision{Treatment: tr.Key, ControlN: in.Control.N, TreatmentN: tr.N, IntervalAlpha: 2 * alpha}
		if in.Control.N < t.MinUnits || tr.N < t.MinUnits {
			d.Reason = fmt.Sprintf("too few units (%d and %d; at least %d each)", in.Control.N, tr.N, t.MinUnits)
			best = worse(best, d)
			continue
		}
		m := engine.Metric{Key: in.Metric, Kind: in.Kind, Inverse: in.Direction == Decrease,
			Variants: []engine.VariantSums{in.Control, tr}}
		m.Variants[0].Key, m.Variants[1].Key = "control", "treatment"
		opt := engine.Options{Engine: engine.Frequentist, Difference: engine.Relative,
			Alpha: 2 * alpha, Sided: engine.TwoSided, Sequential: &engine.Sequential{Tuning: t.Tuning}}
		res, err := engine.AnalyzeMetric(m, opt)
		if err == nil && res.Variants[1].Error != nil && res.Variants[1].Error.Code == engine.CodeZeroBaseline {
			// A control mean of 0 (no control unit has an error of a kind only the new code
			// emits): the relative effect does not exist, the difference of means does.
			opt.Difference, d.Absolute = engine.Absolute, true
			res, err = engine.AnalyzeMetric(m, opt)
		}
		if err != nil {
			return Decision{}, fmt.Errorf("guardrail: metric %s: %w", in.Metric, err)
		}
		c, v := res.Variants[0], res.Variants[1]
		if c.Mean != nil {
			d.ControlMean = *c.Mean
		}
		if v.Mean != nil {
			d.TreatmentMean = *v.Mean
		}
		if v.Error != nil {
			d.Reason = v.Error.Code
			best = worse(best, d)
			continue
		}
		d.Effect, d.Interval = *v.Effect, [2]float64{v.CI.Low, v.CI.High}
		d.PValue = *v.PValue / 2
		d.Harm = sign * d.Effect
		// The harmful end of the interval: the smallest harm the data still allows.
		leastHarm := sign * d.Interval[1]
		if sign > 0 {
			leastHarm = d.Interval[0]
		}
		switch {
		case d.Absolute && leastHarm > 0:
			// Any established harm from a control mean of 0 is infinitely many times the baseline.
			d.Breached = true
			d.Reason = fmt.Sprintf("%s is at least %.4g per unit worse with %s, from a control mean of 0", in.Metric, leastHarm, tr.Key)
		case !d.Absolute && leastHarm > in.Tolerance:
			d.Breached = true
			d.Reason = fmt.Sprintf("%s is at least %.4g%% worse with %s (tolerance %.4g%%)", in.Metric, 100*leastHarm, tr.Key, 100*in.Tolerance)
		default:
			d.Reason = "within tolerance"
		}
		best = worse(best, d)
	}
	return *best, nil
}

// worse keeps the decision that matters more: a breach over none, then the larger harm.
func worse(a *Decision, b Decision) *Decision {
	switch {
	case a == nil:
		return &b
	case b.Breached && !a.Breached:
		return &b
	case a.Breached && !b.Breached:
		return a
	case b.Harm > a.Harm:
		return &b
	}
	return a
}
