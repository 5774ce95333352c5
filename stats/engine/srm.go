package engine

import "gonum.org/v1/gonum/stat/distuv"

// SRMPValue is the sample-ratio-mismatch p-value: Pearson's χ² goodness of fit of the
// observed unit counts against the configured weights (STATS.md §7). Only variants with a
// positive weight take part; their counts are compared with w_i/Σw·Σcounts, with k-1
// degrees of freedom. With fewer than two such variants, or no units, it returns 1. A value
// below [SRMAlertThreshold] means the assignment is broken. counts and weights must have
// the same length; extra entries of the longer slice are ignored.
func SRMPValue(counts []int64, weights []float64) float64 {
	k := min(len(counts), len(weights))
	var total, totalWeight float64
	used := 0
	for i := range k {
		if weights[i] > 0 {
			total += float64(counts[i])
			totalWeight += weights[i]
			used++
		}
	}
	if used < 2 || total <= 0 {
		return 1
	}
	var chi2 float64
	for i := range k {
		if weights[i] > 0 {
			expected := weights[i] / totalWeight * total
			d := float64(counts[i]) - expected
			chi2 += d * d / expected
		}
	}
	return distuv.ChiSquared{K: float64(used - 1)}.Survival(chi2)
}
