package engine

import (
	"math"
	"testing"
)

// meanSums returns the sums of n units with the given mean and sample variance.
func meanSums(key string, n int64, mean, variance float64) VariantSums {
	sum := float64(n) * mean
	return VariantSums{Key: key, N: n, Sum: sum, SumSquares: variance*float64(n-1) + sum*sum/float64(n)}
}

func proportion(key string, n int64, converted float64) VariantSums {
	return VariantSums{Key: key, N: n, Sum: converted}
}

// analyzeOne analyses a single metric and fails the test on a request error.
func analyzeOne(t testing.TB, m Metric, opt Options) MetricResult {
	t.Helper()
	res, err := AnalyzeMetric(m, opt)
	if err != nil {
		t.Fatalf("AnalyzeMetric: %v", err)
	}
	return res
}

// treatment returns the first treatment's row, failing on a per-variant error.
func treatment(t testing.TB, res MetricResult) VariantResult {
	t.Helper()
	r := res.Variants[1]
	if r.Error != nil {
		t.Fatalf("unexpected variant error: %v", r.Error)
	}
	return r
}

func close(a, b, rel float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}
