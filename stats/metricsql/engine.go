package metricsql

import "github.com/switchyard-io/switchyard/stats/engine"

// EngineKind is the statistics engine's kind for a metric kind: proportions are Bernoulli,
// ratios use the delta method, and mean, sum and count metrics are per-unit means.
func EngineKind(kind string) engine.Kind {
	switch kind {
	case Proportion:
		return engine.KindProportion
	case Ratio:
		return engine.KindRatio
	}
	return engine.KindMean
}

// Engine is the sums as the statistics engine's input for the variant key (the covariate sums
// only when cuped).
func (s VariantSums) Engine(key string, cuped bool) engine.VariantSums {
	out := engine.VariantSums{Key: key, N: s.N, Sum: s.Sum, SumSquares: s.SumSquares,
		DenominatorSum: s.DenSum, DenominatorSumSquares: s.DenSumSquares, MainDenominatorSumProduct: s.MainDenProduct}
	if cuped {
		out.CovariateSum, out.CovariateSumSquares, out.MainCovariateSumProduct = s.CovSum, s.CovSumSquares, s.MainCovProduct
	}
	return out
}
