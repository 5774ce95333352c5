package engine

import (
	"fmt"
	"math"
)

// arm holds the per-unit moments of one variant (STATS.md §2). For ratio metrics mean and
// variance are those of R = mean(numerator)/mean(denominator), after which the arm is
// treated like a mean metric.
type arm struct {
	n        float64
	sum      float64 // Σy (numerator sum for ratios)
	mean     float64 // m, or R for ratios; unadjusted under CUPED
	variance float64 // per-unit variance: m(1-m) for proportions, sample (n-1) otherwise

	// CUPED covariate moments (sample, n-1), set only when CUPED is on.
	covSum, covSumSquares, crossSum  float64 // raw sums, for the pooled θ
	covMean, covVariance, covariance float64
}

// relTol is the relative size below which a negative variance is taken to be floating-point
// cancellation of a true zero rather than inconsistent input.
const relTol = 1e-10

// armMean is the arm's mean for the results row; ok is false when it is undefined.
func armMean(kind Kind, s VariantSums) (float64, bool) {
	if s.N <= 0 {
		return 0, false
	}
	n := float64(s.N)
	if kind == KindRatio {
		if s.DenominatorSum == 0 {
			return 0, false
		}
		return (s.Sum / n) / (s.DenominatorSum / n), true
	}
	return s.Sum / n, true
}

// sampleVariance is (ss - s²/n)/(n-1), with cancellation noise around zero clamped to zero.
// ok is false when the sums imply a clearly negative variance.
func sampleVariance(sum, sumSquares, n float64) (v float64, ok bool) {
	sq := sum * sum / n
	v = (sumSquares - sq) / (n - 1)
	if math.IsInf(sq, 0) || math.IsInf(sumSquares, 0) {
		return math.NaN(), true // overflow; the caller reports not_finite
	}
	if v < 0 {
		if -v <= relTol*math.Max(math.Abs(sumSquares), sq)/(n-1) {
			return 0, true
		}
		return v, false
	}
	return v, true
}

// sampleCovariance is (Σxy - Σx·Σy/n)/(n-1).
func sampleCovariance(sumX, sumY, sumXY, n float64) float64 {
	return (sumXY - sumX*sumY/n) / (n - 1)
}

// moments computes an arm's per-unit moments; control says which arm it is, for messages.
func moments(kind Kind, cuped bool, s VariantSums, control bool) (arm, *VariantError) {
	a, verr := armMoments(kind, cuped, s)
	if verr != nil {
		who := "the control"
		if !control {
			who = fmt.Sprintf("variant %q", s.Key)
		}
		verr.Message = who + verr.Message
	}
	return a, verr
}

// armMoments does the work of moments; its error messages start after the arm's name.
func armMoments(kind Kind, cuped bool, s VariantSums) (arm, *VariantError) {
	if s.N < 2 {
		return arm{}, variantErr(CodeTooFewUnits, " has %d units; at least 2 are needed to estimate a variance", s.N)
	}
	n := float64(s.N)
	a := arm{n: n, sum: s.Sum}
	switch kind {
	case KindProportion:
		a.mean = s.Sum / n
		a.variance = a.mean * (1 - a.mean)
	case KindMean:
		a.mean = s.Sum / n
		v, ok := sampleVariance(s.Sum, s.SumSquares, n)
		if !ok {
			return arm{}, variantErr(CodeInconsistentSums, ": sum_squares is smaller than sum²/n")
		}
		a.variance = v
	case KindRatio:
		if s.DenominatorSum == 0 {
			return arm{}, variantErr(CodeZeroDenominator, ": denominator_sum is 0, the ratio is undefined")
		}
		// Components may individually look inconsistent (the reference cases use synthetic
		// sums); only the delta-method variance of R must be non-negative.
		mM, mD := s.Sum/n, s.DenominatorSum/n
		vM := (s.SumSquares - s.Sum*s.Sum/n) / (n - 1)
		vD := (s.DenominatorSumSquares - s.DenominatorSum*s.DenominatorSum/n) / (n - 1)
		cov := sampleCovariance(s.Sum, s.DenominatorSum, s.MainDenominatorSumProduct, n)
		t1 := vM / (mD * mD)
		t2 := 2 * cov * mM / (mD * mD * mD)
		t3 := mM * mM * vD / (mD * mD * mD * mD)
		v := t1 - t2 + t3
		if v < 0 {
			if -v > relTol*(math.Abs(t1)+math.Abs(t2)+math.Abs(t3)) {
				return arm{}, variantErr(CodeInconsistentSums, ": the ratio's sums imply a negative variance")
			}
			v = 0
		}
		a.mean = mM / mD
		a.variance = v
	}
	if !finite(a.mean) || !finite(a.variance) {
		return arm{}, variantErr(CodeNotFinite, ": the sums are too large to analyse in float64")
	}
	if cuped {
		vX, ok := sampleVariance(s.CovariateSum, s.CovariateSumSquares, n)
		if !ok {
			return arm{}, variantErr(CodeInconsistentSums, ": covariate_sum_squares is smaller than covariate_sum²/n")
		}
		a.covSum, a.covSumSquares, a.crossSum = s.CovariateSum, s.CovariateSumSquares, s.MainCovariateSumProduct
		a.covMean = s.CovariateSum / n
		a.covVariance = vX
		a.covariance = sampleCovariance(s.Sum, s.CovariateSum, s.MainCovariateSumProduct, n)
		if !allFinite(a.covMean, a.covVariance, a.covariance) {
			return arm{}, variantErr(CodeNotFinite, ": the covariate sums are too large to analyse in float64")
		}
	}
	return a, nil
}

// welchDF is the Welch–Satterthwaite degrees of freedom from per-unit variances.
func welchDF(vA, nA, vB, nB float64) float64 {
	a, b := vA/nA, vB/nB
	return (a + b) * (a + b) / (b*b/(nB-1) + a*a/(nA-1))
}
