package engine

import "math"

// estimate is the effect of a treatment against the control on the requested scale: the
// likelihood that both engines start from (STATS.md §3–4).
type estimate struct {
	d, se, df   float64
	controlMean float64 // unadjusted, for rescaling a relative prior to absolute
	n           float64 // nA + nB, for the sequential intervals
}

// compare estimates the effect of arm b against the control arm a.
func compare(diff Difference, cuped bool, a, b arm) (estimate, *VariantError) {
	e := estimate{controlMean: a.mean, n: a.n + b.n}
	if diff == Relative && a.mean == 0 {
		return e, variantErr(CodeZeroBaseline, "the control mean is 0, so a relative effect is undefined; ask for an absolute difference")
	}
	var variance float64
	if cuped {
		variance = e.cuped(diff, a, b)
	} else {
		switch diff {
		case Absolute:
			e.d = b.mean - a.mean
			variance = b.variance/b.n + a.variance/a.n
		default:
			mA2 := a.mean * a.mean
			e.d = (b.mean - a.mean) / a.mean
			variance = b.variance/(mA2*b.n) + a.variance*b.mean*b.mean/(mA2*mA2*a.n)
		}
		e.df = welchDF(a.variance, a.n, b.variance, b.n)
	}
	if !(variance > 0) || !(e.df > 0) {
		if math.IsInf(variance, 0) || math.IsNaN(variance) {
			return e, variantErr(CodeNotFinite, "the sums are too large to analyse in float64")
		}
		if diff == Relative && b.mean == 0 && !cuped {
			// The delta-method variance of (mB - mA)/mA is proportional to vB and mB², both 0
			// when no treatment unit has a value (e.g. no conversion): a -100% lift with no
			// measurable uncertainty, not two constant arms.
			return e, variantErr(CodeZeroVariance, "the treatment mean is 0, so the relative effect (-100%%) has zero delta-method variance; ask for an absolute difference")
		}
		return e, variantErr(CodeZeroVariance, "the difference has zero variance (every unit in both arms has the same value)")
	}
	e.se = math.Sqrt(variance)
	return e, nil
}

// cuped sets d and df of the regression-adjusted comparison and returns its variance.
// θ comes from both arms pooled, so that the same adjustment applies to both means.
func (e *estimate) cuped(diff Difference, a, b arm) float64 {
	n := a.n + b.n
	sumY := a.sum + b.sum
	sumX := a.covSum + b.covSum
	varX, _ := sampleVariance(sumX, a.covSumSquares+b.covSumSquares, n)
	theta := 0.0
	if varX > 0 {
		theta = sampleCovariance(sumY, sumX, a.crossSum+b.crossSum, n) / varX
	}
	adjMeanA := a.mean - theta*a.covMean
	adjMeanB := b.mean - theta*b.covMean
	adjVarA := adjustedVariance(a, theta)
	adjVarB := adjustedVariance(b, theta)
	e.df = welchDF(adjVarA, a.n, adjVarB, b.n)
	if diff == Absolute {
		e.d = adjMeanB - adjMeanA
		return adjVarB/b.n + adjVarA/a.n
	}
	// Relative: divide by the unadjusted control mean; the control's delta-method term
	// uses the unadjusted means as in STATS.md §4.
	mA, mB := a.mean, b.mean
	mA2 := mA * mA
	e.d = (adjMeanB - adjMeanA) / mA
	control := a.variance*mB*mB/mA2 - 2*theta*a.covariance*mB/mA + theta*theta*a.covVariance
	return adjVarB/(b.n*mA2) + control/(a.n*mA2)
}

// adjustedVariance is the per-unit variance of Y - θX in one arm. For proportions vY is
// m(1-m) while the covariance is a sample moment, so a near-perfect covariate can push the
// expression slightly below zero; it is clamped there.
func adjustedVariance(a arm, theta float64) float64 {
	v := a.variance + theta*theta*a.covVariance - 2*theta*a.covariance
	return math.Max(v, 0)
}
