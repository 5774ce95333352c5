package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// The simulations draw per-variant sums directly from their exact sampling distributions
// (binomial counts; for normal data the sum and the independent χ² sum of squared
// deviations), which is equivalent to simulating every unit but thousands of times cheaper.
// Every simulation is seeded, so the rates below are deterministic.

type sampler struct {
	src  *rand.PCG
	norm distuv.Normal
}

func newSampler(seed uint64) *sampler {
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &sampler{src: src, norm: distuv.Normal{Mu: 0, Sigma: 1, Src: src}}
}

// normalSums draws the sums of n units of N(mu, sigma2).
func (s *sampler) normalSums(key string, n int64, mu, sigma2 float64) VariantSums {
	fn := float64(n)
	sum := fn*mu + math.Sqrt(fn*sigma2)*s.norm.Rand()
	deviations := sigma2 * distuv.ChiSquared{K: fn - 1, Src: s.src}.Rand()
	return VariantSums{Key: key, N: n, Sum: sum, SumSquares: deviations + sum*sum/fn}
}

// conversions draws a binomial count of n units converting with probability p.
func (s *sampler) conversions(key string, n int64, p float64) VariantSums {
	return VariantSums{Key: key, N: n, Sum: distuv.Binomial{N: float64(n), P: p, Src: s.src}.Rand()}
}

func (s *sampler) add(v VariantSums, more VariantSums) VariantSums {
	v.N += more.N
	v.Sum += more.Sum
	v.SumSquares += more.SumSquares
	return v
}

func rate(k, n int) float64 { return float64(k) / float64(n) }

func within(t *testing.T, what string, got, lo, hi float64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %.4f, want within [%.3f, %.3f]", what, got, lo, hi)
	} else {
		t.Logf("%s = %.4f", what, got)
	}
}

const experiments = 10000

// A/A experiments at α = 0.05: 5% false positives and 95% coverage of the true effect (0).
func TestAASimulation(t *testing.T) {
	tests := []struct {
		name string
		diff Difference
		draw func(s *sampler) (a, b VariantSums)
	}{
		{"proportion, relative", Relative, func(s *sampler) (VariantSums, VariantSums) {
			return s.conversions("a", 2000, 0.1), s.conversions("b", 2000, 0.1)
		}},
		{"mean, absolute, small samples", Absolute, func(s *sampler) (VariantSums, VariantSums) {
			return s.normalSums("a", 40, 5, 4), s.normalSums("b", 25, 5, 9)
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSampler(uint64(100 + i))
			var falsePositives, covered, confidentWins, confidentLosses int
			for range experiments {
				a, b := tc.draw(s)
				m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{a, b}}
				if i == 0 {
					m.Kind = KindProportion
				}
				r := treatment(t, analyzeOne(t, m, Options{Difference: tc.diff}))
				if *r.PValue < 0.05 {
					falsePositives++
				}
				if r.CI.Contains(0) {
					covered++
				}
				bayes := treatment(t, analyzeOne(t, m, Options{Engine: Bayesian, Difference: tc.diff}))
				if *bayes.ChanceToWin > 0.95 {
					confidentWins++
				}
				if *bayes.ChanceToWin < 0.05 {
					confidentLosses++
				}
			}
			within(t, "false-positive rate", rate(falsePositives, experiments), 0.04, 0.06)
			within(t, "coverage", rate(covered, experiments), 0.94, 0.96)
			// With a flat prior and no effect, chance to win is close to uniform: it exceeds
			// 95% in about 5% of A/A tests (a reminder that 95% is not a certainty). On the
			// relative scale the delta method makes the two tails slightly unequal at this
			// sample size (a lift's variance grows with the treatment mean), so only their
			// sum is held to 10% there.
			if tc.diff == Absolute {
				within(t, "A/A chance to win > 95%", rate(confidentWins, experiments), 0.04, 0.06)
				within(t, "A/A chance to win < 5%", rate(confidentLosses, experiments), 0.04, 0.06)
			} else {
				t.Logf("A/A chance to win > 95%%: %.4f, < 5%%: %.4f", rate(confidentWins, experiments), rate(confidentLosses, experiments))
				within(t, "A/A chance to win outside [5%, 95%]", rate(confidentWins+confidentLosses, experiments), 0.08, 0.12)
			}
		})
	}
}

// With a real effect the intervals cover the true effect 95% of the time, on the relative
// scale too (delta method).
func TestCoverageOfARealEffect(t *testing.T) {
	s := newSampler(200)
	var covered, coveredCredible int
	for range experiments {
		m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{
			s.normalSums("a", 500, 5, 4), s.normalSums("b", 500, 5.5, 4)}}
		if treatment(t, analyzeOne(t, m, Options{})).CI.Contains(0.1) {
			covered++
		}
		if treatment(t, analyzeOne(t, m, Options{Engine: Bayesian})).CI.Contains(0.1) {
			coveredCredible++
		}
	}
	within(t, "coverage of a 10% lift", rate(covered, experiments), 0.94, 0.96)
	within(t, "flat-prior credible interval coverage", rate(coveredCredible, experiments), 0.94, 0.96)
}

// Peeking after every batch: the always-valid p-value keeps the false-positive rate below
// α, while the fixed-horizon p-value, peeked at the same way, does not (the control that
// shows the simulation can tell the difference).
func TestSequentialPeekingKeepsFalsePositivesBelowAlpha(t *testing.T) {
	const runs, batches, perBatch = 4000, 20, 250
	s := newSampler(300)
	var sequentialFP, naiveFP int
	seq := Options{Sequential: &Sequential{Tuning: 5000}}
	for range runs {
		a, b := VariantSums{Key: "a"}, VariantSums{Key: "b"}
		var seqHit, naiveHit bool
		for range batches {
			a = s.add(a, s.conversions("a", perBatch, 0.1))
			b = s.add(b, s.conversions("b", perBatch, 0.1))
			m := Metric{Key: "m", Kind: KindProportion, Variants: []VariantSums{a, b}}
			seqHit = seqHit || *treatment(t, analyzeOne(t, m, seq)).PValue < 0.05
			naiveHit = naiveHit || *treatment(t, analyzeOne(t, m, Options{})).PValue < 0.05
		}
		if seqHit {
			sequentialFP++
		}
		if naiveHit {
			naiveFP++
		}
	}
	within(t, "sequential false-positive rate with 20 peeks", rate(sequentialFP, runs), 0, 0.05)
	within(t, "fixed-horizon false-positive rate with 20 peeks", rate(naiveFP, runs), 0.10, 1)
}

// A real effect is detected as often as the power calculator predicts, and an effect equal
// to the MDE is detected with the target power.
func TestPowerCalculatorPredictsDetection(t *testing.T) {
	const runs = 4000
	// A 1% lift on 260,000 users: large samples keep the delta method's second-order
	// effects (about +1 point of power at a tenth of these users) well inside the margin.
	const mu, sigma2, users = 10.0, 100.0, 260000
	detect := func(seed uint64, effect float64) float64 {
		s := newSampler(seed)
		hits := 0
		for range runs {
			m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{
				s.normalSums("a", users/2, mu, sigma2), s.normalSums("b", users/2, mu*(1+effect), sigma2)}}
			if *treatment(t, analyzeOne(t, m, Options{})).PValue < 0.05 {
				hits++
			}
		}
		return rate(hits, runs)
	}
	effect := 0.01
	plan, err := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 2})
	if err != nil {
		t.Fatal(err)
	}
	within(t, "detection rate of a 1% lift", detect(400, effect), *plan.Power-0.03, *plan.Power+0.03)
	within(t, "detection rate at the MDE", detect(401, *plan.MDE), 0.77, 0.83)
	if *plan.Power < 0.6 || *plan.Power > 0.8 {
		t.Errorf("the scenario should have middling power to be informative, got %v", *plan.Power)
	}
}

// The sequential power of STATS.md §9 inflates the standard error by k = sqrt(n₂·disc)/z*
// (GrowthBook's approximation). The engine's sequential test rejects at the final look
// exactly when |d| > k·z*·se, so its final-look power is Φ(e/se − k·z*) + Φ(−e/se − k·z*).
// This test checks the engine's sequential test against that exact expression, and logs
// the contract's approximation next to it (they can differ by many points; see README).
func TestSequentialPowerAtTheFinalLook(t *testing.T) {
	const runs, batches = 3000, 20
	const mu, sigma2, users, tuning = 10.0, 100.0, 500000, 125000.0
	effect := 0.01
	perBatch := int64(users / 2 / batches)
	s := newSampler(500)
	var finalHits, anyHits int
	opt := Options{Sequential: &Sequential{Tuning: tuning}}
	for range runs {
		a, b := VariantSums{Key: "a"}, VariantSums{Key: "b"}
		var hit, last bool
		for range batches {
			a = s.add(a, s.normalSums("a", perBatch, mu, sigma2))
			b = s.add(b, s.normalSums("b", perBatch, mu*(1+effect), sigma2))
			m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{a, b}}
			last = *treatment(t, analyzeOne(t, m, opt)).PValue < 0.05
			hit = hit || last
		}
		if last {
			finalHits++
		}
		if hit {
			anyHits++
		}
	}
	n := float64(users / 2)
	se := math.Sqrt(sigma2/(mu*mu*n)) * math.Sqrt(1+(1+effect)*(1+effect))
	zStar := zUpper(0.025)
	n2 := 2 * n
	k := math.Sqrt(n2) * sequentialFactor(n2, 0.05, sequentialRho(0.05, tuning)) / zStar
	exact := normCDF(effect/se-k*zStar) + normCDF(-effect/se-k*zStar)
	within(t, "sequential detection at the final look", rate(finalHits, runs), exact-0.03, exact+0.03)
	if anyHits < finalHits {
		t.Errorf("detection at any peek (%d) cannot be below detection at the last (%d)", anyHits, finalHits)
	}
	contract, _ := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 2, Sequential: &Sequential{Tuning: tuning}})
	t.Logf("exact final-look power %.3f, detection at any of %d peeks %.3f, STATS.md §9 approximation %.3f",
		exact, batches, rate(anyHits, runs), *contract.Power)
}

// An uneven split (90/10) is detected as often as the power calculator predicts from its
// weights; planned as if even it would promise far more power than the split has.
func TestPowerCalculatorPlansAnUnevenSplit(t *testing.T) {
	const runs = 4000
	const mu, sigma2, users = 10.0, 100.0, 600000
	effect := 0.01
	nControl, nTreatment := int64(users*9/10), int64(users/10)
	s := newSampler(402)
	hits := 0
	for range runs {
		m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{
			s.normalSums("a", nControl, mu, sigma2), s.normalSums("b", nTreatment, mu*(1+effect), sigma2)}}
		if *treatment(t, analyzeOne(t, m, Options{})).PValue < 0.05 {
			hits++
		}
	}
	uneven, err := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 2, Weights: []float64{90000, 10000}})
	if err != nil {
		t.Fatal(err)
	}
	even, _ := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 2})
	within(t, "detection rate of a 1% lift at 90/10", rate(hits, runs), *uneven.Power-0.03, *uneven.Power+0.03)
	if *even.Power-*uneven.Power < 0.2 {
		t.Errorf("a 90/10 split should have much less power than 50/50: %v vs %v", *uneven.Power, *even.Power)
	}
	same, _ := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 3, Weights: []float64{1, 1, 1}})
	plain, _ := Power(PowerRequest{Mean: mu, Variance: sigma2, Effect: &effect, Users: users, Variants: 3})
	if *same.Power != *plain.Power || *same.MDE != *plain.MDE {
		t.Errorf("equal weights must plan as an even split: %+v vs %+v", same, plain)
	}
	for _, w := range [][]float64{{1}, {1, 0}, {1, -1}} {
		if _, err := Power(PowerRequest{Mean: mu, Variance: sigma2, Users: users, Variants: 2, Weights: w}); !errors.Is(err, ErrInvalid) {
			t.Errorf("weights %v: %v, want invalid", w, err)
		}
	}
}
