package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// validateRequest checks a request with defaults already applied. Field paths follow the
// JSON contract.
func validateRequest(req Request) error {
	if err := validateOptions(req.Options); err != nil {
		return err
	}
	switch req.Correction {
	case NoCorrection:
	case Holm, BenjaminiHochberg:
		if req.Engine == Bayesian {
			return invalid("correction", "applies to p-values; the bayesian engine has none, use %q", NoCorrection)
		}
	default:
		return invalid("correction", "unknown correction %q (want none, holm or bh)", req.Correction)
	}
	if req.SRM != nil {
		if err := validateSRM(*req.SRM); err != nil {
			return err
		}
	}
	if len(req.Metrics) == 0 && req.SRM == nil {
		return invalid("metrics", "at least one metric (or an srm check) is required")
	}
	seen := make(map[string]bool, len(req.Metrics))
	for i, m := range req.Metrics {
		if err := validateMetric(m, "metrics["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
		if seen[m.Key] {
			return invalid(fmt.Sprintf("metrics[%d].key", i), "duplicate metric key %q", m.Key)
		}
		seen[m.Key] = true
	}
	return nil
}

func validateOptions(o Options) error {
	switch o.Engine {
	case Frequentist, Bayesian:
	default:
		return invalid("engine", "unknown engine %q (want frequentist or bayesian)", o.Engine)
	}
	switch o.Difference {
	case Relative, Absolute:
	default:
		return invalid("difference", "unknown difference %q (want relative or absolute)", o.Difference)
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return invalid("alpha", "must be in (0, 1), got %v", o.Alpha)
	}
	switch o.Sided {
	case TwoSided:
	case Greater, Less:
		if o.Engine == Bayesian || o.Sequential != nil {
			return invalid("sided", "one-sided tests are available for the fixed-horizon frequentist engine only")
		}
	default:
		return invalid("sided", "unknown alternative %q (want two-sided, greater or less)", o.Sided)
	}
	if o.Sequential != nil {
		if o.Engine == Bayesian {
			return invalid("sequential", "applies to the frequentist engine only")
		}
		if !(o.Sequential.Tuning > 0) || math.IsInf(o.Sequential.Tuning, 0) {
			return invalid("sequential.tuning", "must be greater than 0")
		}
	}
	if o.Prior != nil {
		if o.Engine != Bayesian {
			return invalid("prior", "applies to the bayesian engine only")
		}
		if !finite(o.Prior.Mean) {
			return invalid("prior.mean", "must be a finite number")
		}
		if o.Prior.Proper && !(o.Prior.Variance > 0 && finite(o.Prior.Variance)) {
			return invalid("prior.variance", "a proper prior needs a variance greater than 0")
		}
	}
	return nil
}

func validateSRM(s SRMInput) error {
	if len(s.Counts) != len(s.Weights) {
		return invalid("srm.weights", "has %d entries but srm.counts has %d", len(s.Weights), len(s.Counts))
	}
	for i, c := range s.Counts {
		if c < 0 {
			return invalid(fmt.Sprintf("srm.counts[%d]", i), "must not be negative")
		}
	}
	for i, w := range s.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return invalid(fmt.Sprintf("srm.weights[%d]", i), "must be a finite number ≥ 0")
		}
	}
	return nil
}

// ValidateMetric checks one metric as [Analyze] checks each of a request's: an invalid one is an
// *[InvalidError] whose Field is relative to the metric ("variants[1].sum_squares"). Callers
// analysing many metrics use it to leave one out rather than fail them all.
func ValidateMetric(m Metric) error {
	err := validateMetric(m, "")
	if inv, ok := err.(*InvalidError); ok {
		inv.Field = strings.TrimPrefix(inv.Field, ".")
	}
	return err
}

// validateMetric checks one metric; path is its JSON path ("metrics[3]"). Paths of
// variants are only formatted when something is wrong, keeping validation allocation-free.
func validateMetric(m Metric, path string) error {
	if m.Key == "" {
		return invalid(path+".key", "is required")
	}
	switch m.Kind {
	case KindProportion, KindMean:
	case KindRatio:
		if m.CUPED {
			return invalid(path+".cuped", "CUPED is not available for ratio metrics")
		}
	default:
		return invalid(path+".kind", "unknown kind %q (want proportion, mean or ratio)", m.Kind)
	}
	if len(m.Variants) < 2 {
		return invalid(path+".variants", "needs at least two variants (the first is the control)")
	}
	for j, v := range m.Variants {
		field := func(name string) string { return fmt.Sprintf("%s.variants[%d].%s", path, j, name) }
		if v.Key == "" {
			return invalid(field("key"), "is required")
		}
		for _, w := range m.Variants[:j] {
			if w.Key == v.Key {
				return invalid(field("key"), "duplicate variant key %q", v.Key)
			}
		}
		if v.N < 0 {
			return invalid(field("n"), "must not be negative")
		}
		if name, ok := firstNonFinite(&v); !ok {
			return invalid(field(name), "must be a finite number")
		}
		switch {
		case m.Kind == KindProportion && (v.Sum < 0 || v.Sum > float64(v.N)):
			return invalid(field("sum"), "a proportion's sum (converted units) must be between 0 and n")
		case m.Kind != KindProportion && v.SumSquares < 0:
			return invalid(field("sum_squares"), "must not be negative")
		case m.Kind == KindRatio && v.DenominatorSumSquares < 0:
			return invalid(field("denominator_sum_squares"), "must not be negative")
		case m.CUPED && v.CovariateSumSquares < 0:
			return invalid(field("covariate_sum_squares"), "must not be negative")
		}
	}
	return nil
}

// firstNonFinite names the first NaN or infinite sum of v.
func firstNonFinite(v *VariantSums) (string, bool) {
	fields := [...]struct {
		name  string
		value float64
	}{
		{"sum", v.Sum}, {"sum_squares", v.SumSquares},
		{"denominator_sum", v.DenominatorSum}, {"denominator_sum_squares", v.DenominatorSumSquares},
		{"main_denominator_sum_product", v.MainDenominatorSumProduct},
		{"covariate_sum", v.CovariateSum}, {"covariate_sum_squares", v.CovariateSumSquares},
		{"main_covariate_sum_product", v.MainCovariateSumProduct},
	}
	for _, f := range fields {
		if !finite(f.value) {
			return f.name, false
		}
	}
	return "", true
}

// sumField names one float field of VariantSums for decoding.
type sumField struct {
	name  string
	value *float64
}

// sumFields lists the sums a variant of this kind must carry, in contract order.
func sumFields(kind Kind, cuped bool, v *VariantSums) []sumField {
	fs := []sumField{{"sum", &v.Sum}}
	switch kind {
	case KindMean:
		fs = append(fs, sumField{"sum_squares", &v.SumSquares})
	case KindRatio:
		fs = append(fs,
			sumField{"sum_squares", &v.SumSquares},
			sumField{"denominator_sum", &v.DenominatorSum},
			sumField{"denominator_sum_squares", &v.DenominatorSumSquares},
			sumField{"main_denominator_sum_product", &v.MainDenominatorSumProduct})
	}
	if cuped {
		fs = append(fs,
			sumField{"covariate_sum", &v.CovariateSum},
			sumField{"covariate_sum_squares", &v.CovariateSumSquares},
			sumField{"main_covariate_sum_product", &v.MainCovariateSumProduct})
	}
	return fs
}
