package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// row is one unit: pre-exposure covariate x and outcome y.
type row struct{ x, y float64 }

func simulateRows(rng *rand.Rand, n int, shift float64) []row {
	rows := make([]row, n)
	for i := range rows {
		x := 10 + 2*rng.NormFloat64()
		rows[i] = row{x: x, y: 2 + 0.8*x + shift + rng.NormFloat64()}
	}
	return rows
}

func sumsOf(key string, rows []row) VariantSums {
	v := VariantSums{Key: key, N: int64(len(rows))}
	for _, r := range rows {
		v.Sum += r.y
		v.SumSquares += r.y * r.y
		v.CovariateSum += r.x
		v.CovariateSumSquares += r.x * r.x
		v.MainCovariateSumProduct += r.x * r.y
	}
	return v
}

// Two-pass moments straight from the rows, independent of the sums-based code.
func rowMean(rows []row, f func(row) float64) float64 {
	var s float64
	for _, r := range rows {
		s += f(r)
	}
	return s / float64(len(rows))
}

func rowCov(rows []row, f, g func(row) float64) float64 {
	mf, mg := rowMean(rows, f), rowMean(rows, g)
	var s float64
	for _, r := range rows {
		s += (f(r) - mf) * (g(r) - mg)
	}
	return s / float64(len(rows)-1)
}

func TestCUPEDMatchesRowLevelRegressionAdjustment(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	a, b := simulateRows(rng, 800, 0), simulateRows(rng, 700, 0.3)
	x := func(r row) float64 { return r.x }
	y := func(r row) float64 { return r.y }
	pooled := append(append([]row{}, a...), b...)
	theta := rowCov(pooled, x, y) / rowCov(pooled, x, x)
	z := func(r row) float64 { return r.y - theta*r.x }
	nA, nB := float64(len(a)), float64(len(b))
	adjA, adjB := rowMean(a, z), rowMean(b, z)
	vA, vB := rowCov(a, z, z), rowCov(b, z, z)
	df := math.Pow(vA/nA+vB/nB, 2) / (math.Pow(vA/nA, 2)/(nA-1) + math.Pow(vB/nB, 2)/(nB-1))
	yA, yB := rowMean(a, y), rowMean(b, y)

	absD := adjB - adjA
	absSE := math.Sqrt(vA/nA + vB/nB)
	relD := absD / yA
	controlTerm := rowCov(a, y, y)*yB*yB/(yA*yA) - 2*theta*rowCov(a, x, y)*yB/yA + theta*theta*rowCov(a, x, x)
	relSE := math.Sqrt(vB/(nB*yA*yA) + controlTerm/(nA*yA*yA))
	student := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}

	m := Metric{Key: "m", Kind: KindMean, CUPED: true, Variants: []VariantSums{sumsOf("a", a), sumsOf("b", b)}}
	plain := m
	plain.CUPED = false
	for _, tc := range []struct {
		diff  Difference
		d, se float64
	}{{Absolute, absD, absSE}, {Relative, relD, relSE}} {
		got := treatment(t, analyzeOne(t, m, Options{Difference: tc.diff}))
		wantP := 2 * student.Survival(math.Abs(tc.d/tc.se))
		if !close(*got.Effect, tc.d, 1e-9) || !close(*got.SE, tc.se, 1e-9) || !close(*got.PValue, wantP, 1e-7) {
			t.Errorf("%s: got effect %v se %v p %v, want %v %v %v", tc.diff, *got.Effect, *got.SE, *got.PValue, tc.d, tc.se, wantP)
		}
		if !close(*got.Mean, yB, 1e-12) {
			t.Errorf("the reported mean must be unadjusted: %v vs %v", *got.Mean, yB)
		}
		unadjusted := treatment(t, analyzeOne(t, plain, Options{Difference: tc.diff}))
		// corr(x, y) ≈ 0.85, so the variance should fall by roughly 1 - 0.85² ≈ 72%.
		if ratio := *got.SE / *unadjusted.SE; !(ratio < 0.65) {
			t.Errorf("%s: CUPED se / plain se = %v, want a large variance reduction", tc.diff, ratio)
		}
	}
}

func TestCUPEDWithConstantCovariateIsPlainAnalysis(t *testing.T) {
	for _, kind := range []Kind{KindMean, KindProportion} {
		a, b := meanSums("a", 300, 0.3, 0.21), meanSums("b", 320, 0.35, 0.2275)
		if kind == KindProportion {
			a, b = proportion("a", 300, 90), proportion("b", 320, 112)
		}
		plain := Metric{Key: "m", Kind: kind, Variants: []VariantSums{a, b}}
		for _, v := range []*VariantSums{&a, &b} {
			n := float64(v.N)
			v.CovariateSum, v.CovariateSumSquares, v.MainCovariateSumProduct = 5*n, 25*n, 5*v.Sum
		}
		cuped := Metric{Key: "m", Kind: kind, CUPED: true, Variants: []VariantSums{a, b}}
		for _, diff := range []Difference{Absolute, Relative} {
			p := treatment(t, analyzeOne(t, plain, Options{Difference: diff}))
			c := treatment(t, analyzeOne(t, cuped, Options{Difference: diff}))
			if !close(*p.Effect, *c.Effect, 1e-12) || !close(*p.SE, *c.SE, 1e-9) || !close(*p.PValue, *c.PValue, 1e-9) {
				t.Errorf("%s %s: θ = 0 must reduce to the plain analysis: %v/%v vs %v/%v", kind, diff, *p.Effect, *p.SE, *c.Effect, *c.SE)
			}
		}
	}
}

func TestCUPEDProportion(t *testing.T) {
	// Units that converted before exposure convert again more often.
	rng := rand.New(rand.NewPCG(5, 6))
	mk := func(key string, n int, lift float64) VariantSums {
		v := VariantSums{Key: key, N: int64(n)}
		for range n {
			x := 0.0
			if rng.Float64() < 0.3 {
				x = 1
			}
			p := 0.1 + 0.5*x + lift
			y := 0.0
			if rng.Float64() < p {
				y = 1
			}
			v.Sum += y
			v.CovariateSum += x
			v.CovariateSumSquares += x * x
			v.MainCovariateSumProduct += x * y
		}
		return v
	}
	m := Metric{Key: "m", Kind: KindProportion, CUPED: true, Variants: []VariantSums{mk("a", 4000, 0), mk("b", 4000, 0.02)}}
	c := treatment(t, analyzeOne(t, m, Options{}))
	m.CUPED = false
	p := treatment(t, analyzeOne(t, m, Options{}))
	if !(*c.SE < 0.85**p.SE) {
		t.Errorf("a predictive covariate should shrink the se: %v vs %v", *c.SE, *p.SE)
	}
}
