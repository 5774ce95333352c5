package guardrail

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

func prop(key string, n int64, conv float64) engine.VariantSums {
	return engine.VariantSums{Key: key, N: n, Sum: conv}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name       string
		in         Input
		test       Test
		breached   bool
		treatment  string
		reason     string // substring
		wantErr    bool
		harmAbove  float64
		effectSign int
		absolute   bool // the effect is a difference of means
	}{
		{name: "error rate up 50% breaches a 2% tolerance",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 10000, 200), Treatments: []engine.VariantSums{prop("on", 10000, 300)}},
			breached: true, treatment: "on", reason: "at least", harmAbove: 0.3, effectSign: 1},
		{name: "the same harm within a 90% tolerance is no breach",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.9,
				Control: prop("off", 10000, 200), Treatments: []engine.VariantSums{prop("on", 10000, 300)}},
			breached: false, treatment: "on", reason: "within tolerance", effectSign: 1},
		{name: "conversion down 20% breaches",
			in: Input{Metric: "conversion", Kind: engine.KindProportion, Direction: Increase, Tolerance: 0.02,
				Control: prop("off", 10000, 1000), Treatments: []engine.VariantSums{prop("on", 10000, 800)}},
			breached: true, treatment: "on", harmAbove: 0.1, effectSign: -1},
		{name: "conversion up is never a breach",
			in: Input{Metric: "conversion", Kind: engine.KindProportion, Direction: Increase, Tolerance: 0,
				Control: prop("off", 10000, 800), Treatments: []engine.VariantSums{prop("on", 10000, 1000)}},
			breached: false, reason: "within tolerance", effectSign: 1},
		{name: "equal arms are within tolerance",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.01,
				Control: prop("off", 20000, 400), Treatments: []engine.VariantSums{prop("on", 20000, 400)}},
			breached: false, reason: "within tolerance"},
		{name: "too few units decide nothing",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 50, 1), Treatments: []engine.VariantSums{prop("on", 50, 40)}},
			breached: false, reason: "too few units"},
		{name: "an error only the treatment has breaches from a control mean of 0",
			// No relative effect exists (the control's mean is 0): the difference of means
			// establishes the harm, which is beyond any relative tolerance.
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 5000, 0), Treatments: []engine.VariantSums{prop("on", 5000, 100)}},
			breached: true, treatment: "on", reason: "from a control mean of 0", effectSign: 1, absolute: true},
		{name: "a few errors only the treatment has are not established yet",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 5000, 0), Treatments: []engine.VariantSums{prop("on", 5000, 2)}},
			breached: false, reason: "within tolerance", effectSign: 1, absolute: true},
		{name: "no errors in either arm decide nothing",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 5000, 0), Treatments: []engine.VariantSums{prop("on", 5000, 0)}},
			breached: false, reason: "zero_variance", absolute: true},
		{name: "early and modest harm is not enough for the sequential test",
			// +20% with 2,000 units per arm: a fixed-horizon test would call it (p ≈ 0.04),
			// the always-valid interval is still too wide.
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 2000, 200), Treatments: []engine.VariantSums{prop("on", 2000, 240)}},
			breached: false, reason: "within tolerance", effectSign: 1},
		{name: "revenue per user (mean) down breaches",
			in: Input{Metric: "revenue", Kind: engine.KindMean, Direction: Increase, Tolerance: 0.05,
				Control:    engine.VariantSums{Key: "off", N: 5000, Sum: 50000, SumSquares: 50000*10 + 5000*25},
				Treatments: []engine.VariantSums{{Key: "on", N: 5000, Sum: 40000, SumSquares: 40000*8 + 5000*25}}},
			breached: true, treatment: "on", harmAbove: 0.15, effectSign: -1},
		{name: "the harmful treatment of two is reported",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 10000, 200), Treatments: []engine.VariantSums{prop("b", 10000, 190), prop("c", 10000, 320)}},
			breached: true, treatment: "c", effectSign: 1},
		{name: "a stricter alpha needs more evidence",
			in: Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: 0.02,
				Control: prop("off", 4000, 200), Treatments: []engine.VariantSums{prop("on", 4000, 265)}},
			test:     Test{Alpha: 0.0001},
			breached: false, reason: "within tolerance", effectSign: 1},
		{name: "unknown direction is an error",
			in:      Input{Metric: "x", Kind: engine.KindProportion, Direction: "sideways", Control: prop("a", 1, 1), Treatments: []engine.VariantSums{prop("b", 1, 1)}},
			wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.in, tc.test)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if d.Breached != tc.breached {
				t.Fatalf("breached = %v, want %v: %+v", d.Breached, tc.breached, d)
			}
			if tc.treatment != "" && d.Treatment != tc.treatment {
				t.Fatalf("treatment = %s, want %s", d.Treatment, tc.treatment)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", d.Reason, tc.reason)
			}
			if tc.harmAbove != 0 && d.Harm < tc.harmAbove {
				t.Fatalf("harm %v, want above %v", d.Harm, tc.harmAbove)
			}
			if tc.effectSign != 0 && d.Effect*float64(tc.effectSign) <= 0 {
				t.Fatalf("effect %v has the wrong sign", d.Effect)
			}
			if d.Absolute != tc.absolute {
				t.Fatalf("absolute = %v, want %v", d.Absolute, tc.absolute)
			}
			if d.Breached {
				// The whole interval lies beyond the tolerance (0 for a difference of means) on
				// the harmful side, and the point estimate inside it; each of k treatments is
				// tested at alpha/k.
				lo, hi := d.Interval[0], d.Interval[1]
				if !(lo <= d.Effect && d.Effect <= hi) || d.IntervalAlpha != 2*Test.withDefaults(tc.test).Alpha/float64(len(tc.in.Treatments)) {
					t.Fatalf("interval %v around %v (alpha %v)", d.Interval, d.Effect, d.IntervalAlpha)
				}
				tolerance := tc.in.Tolerance
				if d.Absolute {
					tolerance = 0
				}
				if (tc.in.Direction == Decrease && lo <= tolerance) || (tc.in.Direction == Increase && hi >= -tolerance) {
					t.Fatalf("breach with interval %v reaching inside the tolerance %v", d.Interval, tolerance)
				}
				if !(d.PValue > 0 && d.PValue < 0.05) {
					t.Fatalf("p-value %v", d.PValue)
				}
			}
		})
	}
}

// TestEachOfSeveralTreatmentsIsTestedAtAlphaOverK: a guardrail comparing k treatments with the
// control tests each at alpha/k, so its false-alarm rate over all of them stays at alpha. A
// harm whose one-treatment interval clears the tolerance but whose interval at alpha/3 does not
// is a breach alone and not beside two harmless treatments.
func TestEachOfSeveralTreatmentsIsTestedAtAlphaOverK(t *testing.T) {
	control, harmful := prop("off", 10000, 200), prop("on", 10000, 300)
	in := Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Control: control}
	alone, err := Decide(Input{Metric: in.Metric, Kind: in.Kind, Direction: in.Direction, Control: control, Treatments: []engine.VariantSums{harmful}}, Test{})
	if err != nil {
		t.Fatal(err)
	}
	in.Treatments = []engine.VariantSums{prop("b", 10000, 200), prop("c", 10000, 201), harmful}
	three, err := Decide(in, Test{})
	if err != nil {
		t.Fatal(err)
	}
	if three.Treatment != "on" || !(three.Interval[0] < alone.Interval[0]) {
		t.Fatalf("three treatments: %s with interval %v, alone %v: want a wider interval for the harmful one", three.Treatment, three.Interval, alone.Interval)
	}
	// A tolerance between the two lower ends.
	in.Tolerance = (alone.Interval[0] + three.Interval[0]) / 2
	three, _ = Decide(in, Test{})
	in.Treatments = []engine.VariantSums{harmful}
	alone, _ = Decide(in, Test{})
	if !alone.Breached || three.Breached {
		t.Fatalf("tolerance %v: breached alone %v (interval %v), beside two others %v (interval %v)",
			in.Tolerance, alone.Breached, alone.Interval, three.Breached, three.Interval)
	}
}

// simulate runs experiments with the given true error rates, looking after every batch of
// units per arm, and returns the share that were ever declared breached.
func simulate(t *testing.T, seed uint64, sims, looks, batch int, pControl, pTreatment, tolerance float64) float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	breaches := 0
	for s := 0; s < sims; s++ {
		var n int64
		var ca, cb float64
		for l := 0; l < looks; l++ {
			for i := 0; i < batch; i++ {
				if r.Float64() < pControl {
					ca++
				}
				if r.Float64() < pTreatment {
					cb++
				}
			}
			n += int64(batch)
			d, err := Decide(Input{Metric: "errors", Kind: engine.KindProportion, Direction: Decrease, Tolerance: tolerance,
				Control: prop("off", n, ca), Treatments: []engine.VariantSums{prop("on", n, cb)}}, Test{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Breached {
				breaches++
				break
			}
		}
	}
	return float64(breaches) / float64(sims)
}

// TestPeekingEveryMinuteKeepsFalseAlarmsBelowAlpha: checking a harmless release after every
// batch (40 looks, as a guardrail checked every minute would) breaches it in at most α of
// experiments — and a harmful release is caught.
func TestPeekingEveryMinuteKeepsFalseAlarmsBelowAlpha(t *testing.T) {
	// Harmless: the same 5% error rate in both arms, tolerance 0 (the hardest null).
	fp := simulate(t, 1, 400, 40, 500, 0.05, 0.05, 0)
	t.Logf("false breach rate with 40 looks: %.4f", fp)
	if fp > 0.05 {
		t.Fatalf("false breach rate %.3f with 40 looks, want <= 0.05", fp)
	}
	// Harmful: errors up 30% against a 2% tolerance.
	power := simulate(t, 2, 100, 40, 500, 0.05, 0.065, 0.02)
	t.Logf("harmful releases caught: %.2f", power)
	if power < 0.8 {
		t.Fatalf("caught %.2f of harmful releases, want >= 0.8", power)
	}
}

// TestDataQuality: what a breach alert must warn about — a split that does not match the
// experiment's weights, more than 1% of units exposed to several variations — and nothing
// otherwise.
func TestDataQuality(t *testing.T) {
	x := &flagsvc.Experiment{Variations: []flagsvc.ExperimentVariation{{Variation: "off", Weight: 50000}, {Variation: "on", Weight: 50000}}}
	cases := []struct {
		name     string
		exp      metricsql.Exposure
		x        *flagsvc.Experiment
		srm      bool
		multiple int64
	}{
		{name: "healthy", exp: metricsql.Exposure{Units: map[string]int64{"off": 3000, "on": 3010}, Multiple: 30}, x: x},
		{name: "broken split", exp: metricsql.Exposure{Units: map[string]int64{"off": 3000, "on": 2400}}, x: x, srm: true},
		{name: "broken split of too few units", exp: metricsql.Exposure{Units: map[string]int64{"off": 100, "on": 60}}, x: x},
		{name: "a rollout has no weights to judge", exp: metricsql.Exposure{Units: map[string]int64{"off": 3000, "on": 2400}}},
		{name: "many multiple exposures", exp: metricsql.Exposure{Units: map[string]int64{"off": 3000, "on": 3000}, Multiple: 200}, x: x, multiple: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := dataQuality(tc.exp, tc.x, 200)
			if (q.SplitMismatch != nil) != tc.srm || q.MultipleExposures != tc.multiple {
				t.Fatalf("quality %+v (split %+v)", q, q.SplitMismatch)
			}
			if q.SplitMismatch != nil && (q.SplitMismatch.Observed["on"] != 2400 || q.SplitMismatch.Expected["on"] != 0.5) {
				t.Fatalf("split %+v", q.SplitMismatch)
			}
		})
	}
}
