package engine

import (
	"math"
	"slices"
)

// HolmAdjust returns Holm–Bonferroni adjusted p-values, in the order of p, capped at 1.
// The adjusted value of the i-th smallest of m p-values is max_{j≤i} (m-j+1)·p_(j).
func HolmAdjust(p []float64) []float64 {
	m := len(p)
	order := ascending(p)
	adj := make([]float64, m)
	running := 0.0
	for rank, i := range order {
		running = math.Max(running, math.Min(1, float64(m-rank)*p[i]))
		adj[i] = running
	}
	return adj
}

// BHAdjust returns Benjamini–Hochberg adjusted p-values (false discovery rate), in the order
// of p, capped at 1. The adjusted value of the i-th smallest of m p-values is
// min_{j≥i} m/j·p_(j).
func BHAdjust(p []float64) []float64 {
	m := len(p)
	order := ascending(p)
	adj := make([]float64, m)
	running := 1.0
	for rank := m - 1; rank >= 0; rank-- {
		i := order[rank]
		running = math.Min(running, float64(m)/float64(rank+1)*p[i])
		adj[i] = running
	}
	return adj
}

// holmLog is [HolmAdjust] on natural logarithms of p-values, for p-values below the range
// of float64.
func holmLog(logP []float64) []float64 {
	m := len(logP)
	order := ascending(logP)
	adj := make([]float64, m)
	running := math.Inf(-1)
	for rank, i := range order {
		running = math.Max(running, math.Min(0, math.Log(float64(m-rank))+logP[i]))
		adj[i] = running
	}
	return adj
}

// bhLog is [BHAdjust] on natural logarithms of p-values.
func bhLog(logP []float64) []float64 {
	m := len(logP)
	order := ascending(logP)
	adj := make([]float64, m)
	running := 0.0
	for rank := m - 1; rank >= 0; rank-- {
		i := order[rank]
		running = math.Min(running, math.Log(float64(m)/float64(rank+1))+logP[i])
		adj[i] = running
	}
	return adj
}

// ascending returns the indices of p sorted by value (stable, so ties keep their order).
func ascending(p []float64) []int {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	return order
}

// AdjustedInterval widens an interval to match an adjusted p-value (STATS.md §8): the
// standard error implied by (d, pAdjusted) replaces the original one, so the interval
// excludes zero exactly when pAdjusted < α. Two-sided: d ± z(1-α/2)·|d / z(1-pAdj/2)|.
// For a one-sided test the same idea uses the one-sided quantiles and leaves the other end
// unbounded; when pAdjusted cannot be read as a statistic in the tested direction (pAdj ≥ 0.5
// or d on the other side) the interval is unbounded on both ends. An adjusted p-value of 1
// gives an unbounded interval, one of 0 (an underflow, which carries no statistic) the point
// d; [Analyze] also corrects the logarithms of the p-values and never ends up there.
func AdjustedInterval(d, pAdjusted, alpha float64, sided Sided) Interval {
	return adjustedInterval(d, pAdjusted, math.Log(pAdjusted), alpha, sided)
}

// adjustedInterval is [AdjustedInterval] given also ln pAdjusted, which is used where
// pAdjusted underflowed to 0.
func adjustedInterval(d, pAdjusted, logPAdjusted, alpha float64, sided Sided) Interval {
	// upper is z(1 - scale·pAdjusted).
	upper := func(scale float64) float64 {
		if pAdjusted > 0 {
			return zUpper(pAdjusted * scale)
		}
		return zUpperLog(logPAdjusted + math.Log(scale))
	}
	unbounded := Interval{Low: math.Inf(-1), High: math.Inf(1)}
	switch sided {
	case Greater, Less:
		// The implied statistic z(1-pAdj) must point the way of the test and of d; when it
		// does not (pAdj ≥ 0.5, or d on the wrong side) nothing can be claimed.
		dir := 1.0
		if sided == Less {
			dir = -1
		}
		zp := upper(1)
		if pAdjusted >= 1 || !(zp > 0) || !(dir*d > 0) {
			return unbounded
		}
		se := dir * d / zp
		if sided == Greater {
			return Interval{Low: d - zUpper(alpha)*se, High: math.Inf(1)}
		}
		return Interval{Low: math.Inf(-1), High: d + zUpper(alpha)*se}
	default:
		if pAdjusted >= 1 {
			return unbounded
		}
		se := math.Abs(d / upper(0.5))
		if math.IsNaN(se) || math.IsInf(se, 0) {
			return unbounded
		}
		half := zUpper(alpha/2) * se
		return Interval{Low: d - half, High: d + half}
	}
}
