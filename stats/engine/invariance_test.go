package engine

import (
	"fmt"
	"reflect"
	"testing"
)

// configurations every invariance is checked under.
func configs() map[string]Options {
	return map[string]Options{
		"fixed two-sided":  {},
		"fixed greater":    {Sided: Greater},
		"sequential":       {Sequential: &Sequential{Tuning: 2000}},
		"bayesian flat":    {Engine: Bayesian},
		"bayesian proper":  {Engine: Bayesian, Prior: &Prior{Mean: 0.02, Variance: 0.05, Proper: true}},
		"fixed, alpha 0.1": {Alpha: 0.1},
	}
}

// scaled multiplies the per-unit value by c (sums by c, squares by c²) and the denominator
// by cd (ratio) and the covariate by cx (CUPED).
func scaled(v VariantSums, c, cd, cx float64) VariantSums {
	v.Sum *= c
	v.SumSquares *= c * c
	v.DenominatorSum *= cd
	v.DenominatorSumSquares *= cd * cd
	v.MainDenominatorSumProduct *= c * cd
	v.CovariateSum *= cx
	v.CovariateSumSquares *= cx * cx
	v.MainCovariateSumProduct *= c * cx
	return v
}

func invarianceMetrics() []Metric {
	cupedA, cupedB := meanSums("a", 400, 3, 2), meanSums("b", 380, 3.2, 2.5)
	cupedA.CovariateSum, cupedA.CovariateSumSquares, cupedA.MainCovariateSumProduct = 1180, 3900, 3860
	cupedB.CovariateSum, cupedB.CovariateSumSquares, cupedB.MainCovariateSumProduct = 1150, 3800, 3900
	ratio := func(key string, n int64, num, numSS, den, denSS, prod float64) VariantSums {
		return VariantSums{Key: key, N: n, Sum: num, SumSquares: numSS, DenominatorSum: den, DenominatorSumSquares: denSS, MainDenominatorSumProduct: prod}
	}
	return []Metric{
		{Key: "mean", Kind: KindMean, Variants: []VariantSums{meanSums("a", 1000, 12, 30), meanSums("b", 1010, 12.6, 33)}},
		{Key: "cuped", Kind: KindMean, CUPED: true, Variants: []VariantSums{cupedA, cupedB}},
		{Key: "ratio", Kind: KindRatio, Variants: []VariantSums{
			ratio("a", 500, 1300, 4100, 2600, 15000, 7400), ratio("b", 520, 1420, 4600, 2650, 15500, 7900)}},
	}
}

func TestRelativeEffectsAreInvariantToScale(t *testing.T) {
	for name, opt := range configs() {
		for _, m := range invarianceMetrics() {
			base := treatment(t, analyzeOne(t, m, opt))
			for _, c := range []float64{1e-3, 3.7, 1e5} {
				sm := m
				sm.Variants = []VariantSums{scaled(m.Variants[0], c, 1/c, c*c), scaled(m.Variants[1], c, 1/c, c*c)}
				got := treatment(t, analyzeOne(t, sm, opt))
				if diff := compareRows(base, got, 1, 1e-9); diff != "" {
					t.Errorf("%s, %s, scale %v: relative results changed: %s", name, m.Key, c, diff)
				}
			}
		}
	}
}

func TestAbsoluteEffectsScaleWithTheData(t *testing.T) {
	for name, opt := range configs() {
		opt.Difference = Absolute
		for _, m := range invarianceMetrics() {
			base := treatment(t, analyzeOne(t, m, opt))
			c := 4.0
			sm := m
			sm.Variants = []VariantSums{scaled(m.Variants[0], c, 1, 1), scaled(m.Variants[1], c, 1, 1)}
			got := treatment(t, analyzeOne(t, sm, opt))
			if diff := compareRows(base, got, c, 1e-9); diff != "" {
				t.Errorf("%s, %s: absolute results should scale by %v: %s", name, m.Key, c, diff)
			}
		}
	}
}

// quantity is one number of a result row, and the factor it should scale by.
type quantity struct {
	name        string
	want, got   *float64
	scaleFactor float64
}

// compareRows checks that got equals want with every quantity in the units of the
// difference multiplied by k, and probabilities unchanged.
func compareRows(want, got VariantResult, k, rel float64) string {
	qs := []quantity{
		{"effect", want.Effect, got.Effect, k}, {"se", want.SE, got.SE, k},
		{"p_value", want.PValue, got.PValue, 1}, {"chance_to_win", want.ChanceToWin, got.ChanceToWin, 1},
	}
	if want.CI != nil && got.CI != nil {
		qs = append(qs, quantity{"ci.low", &want.CI.Low, &got.CI.Low, k}, quantity{"ci.high", &want.CI.High, &got.CI.High, k})
	}
	if want.Risk != nil && got.Risk != nil {
		qs = append(qs, quantity{"risk.control", &want.Risk.Control, &got.Risk.Control, k},
			quantity{"risk.treatment", &want.Risk.Treatment, &got.Risk.Treatment, k})
	}
	for _, q := range qs {
		if (q.want == nil) != (q.got == nil) {
			return q.name + ": presence differs"
		}
		if q.want != nil && !close(*q.want*q.scaleFactor, *q.got, rel) {
			return fmt.Sprintf("%s: %v·%v vs %v", q.name, *q.want, q.scaleFactor, *q.got)
		}
	}
	return ""
}

// Adding variants, or reordering the treatments, leaves each control-vs-treatment
// comparison exactly as it was (without a multiple-testing correction).
func TestComparisonsDoNotDependOnOtherVariants(t *testing.T) {
	extra := map[string][]VariantSums{
		"mean":  {meanSums("c", 900, 11, 25), meanSums("d", 50, 40, 900)},
		"cuped": {{Key: "c", N: 300, Sum: 800, SumSquares: 2900, CovariateSum: 880, CovariateSumSquares: 2800, MainCovariateSumProduct: 2500}, {Key: "d", N: 420, Sum: 1300, SumSquares: 5000, CovariateSum: 1200, CovariateSumSquares: 4000, MainCovariateSumProduct: 4100}},
		"ratio": {{Key: "c", N: 450, Sum: 1000, SumSquares: 3000, DenominatorSum: 2000, DenominatorSumSquares: 11000, MainDenominatorSumProduct: 5000}, {Key: "d", N: 30, Sum: 90, SumSquares: 400, DenominatorSum: 100, DenominatorSumSquares: 500, MainDenominatorSumProduct: 350}},
	}
	for name, opt := range configs() {
		for _, m := range invarianceMetrics() {
			a, b := m.Variants[0], m.Variants[1]
			c, d := extra[m.Key][0], extra[m.Key][1]
			base := analyzeOne(t, m, opt).Variants[1]
			for _, order := range [][]VariantSums{{a, b, c}, {a, c, b}, {a, c, d, b}, {a, d, b, c}} {
				mm := m
				mm.Variants = order
				res := analyzeOne(t, mm, opt)
				var got VariantResult
				for _, r := range res.Variants {
					if r.Key == "b" {
						got = r
					}
				}
				if !reflect.DeepEqual(base, got) {
					t.Errorf("%s, %s, order %v: b changed:\n%+v\n%+v", name, m.Key, keys(order), base, got)
				}
			}
		}
	}
}

func TestMetricsDoNotDependOnEachOther(t *testing.T) {
	ms := invarianceMetrics()
	all, err := Analyze(Request{Metrics: ms})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		alone, err := Analyze(Request{Metrics: []Metric{m}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(alone.Metrics[0], all.Metrics[i]) {
			t.Errorf("%s differs when analysed alone", m.Key)
		}
	}
}

func keys(vs []VariantSums) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Key
	}
	return out
}
