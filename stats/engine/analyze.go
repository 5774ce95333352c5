package engine

import "math"

// Analyze analyses every metric of the request, applies the request's multiple-testing
// correction across every (metric, treatment) p-value, and computes the SRM p-value when
// SRM input is given. Zero-valued options take their defaults (see [Options.withDefaults]).
// It returns an error matching [ErrInvalid] when the request as a whole is invalid; a
// comparison that merely cannot be computed is reported in its [VariantResult.Error].
func Analyze(req Request) (Response, error) {
	req.Options = req.Options.withDefaults()
	if req.Correction == "" {
		req.Correction = NoCorrection
	}
	if err := validateRequest(req); err != nil {
		return Response{}, err
	}
	res := Response{Metrics: make([]MetricResult, len(req.Metrics))}
	if req.SRM != nil {
		p := SRMPValue(req.SRM.Counts, req.SRM.Weights)
		res.SRMPValue = &p
	}
	logP := make([][]float64, len(req.Metrics))
	for i, m := range req.Metrics {
		res.Metrics[i], logP[i] = analyzeMetric(m, req.Options)
	}
	if req.Correction != NoCorrection {
		correct(res.Metrics, logP, req.Correction, req.Options)
	}
	return res, nil
}

// AnalyzeMetric analyses one metric: every treatment (variants[1:]) against the control
// (variants[0]). No multiple-testing correction is applied; use [Analyze] for that.
// Zero-valued options take their defaults. It returns an error matching [ErrInvalid] when
// the metric or the options are invalid.
func AnalyzeMetric(m Metric, opt Options) (MetricResult, error) {
	opt = opt.withDefaults()
	if err := validateOptions(opt); err != nil {
		return MetricResult{}, err
	}
	if err := validateMetric(m, "metric"); err != nil {
		return MetricResult{}, err
	}
	res, _ := analyzeMetric(m, opt)
	return res, nil
}

// withDefaults fills zero values: frequentist, relative, α = 0.05, two-sided, and the
// default tuning for a sequential analysis without one.
func (o Options) withDefaults() Options {
	if o.Engine == "" {
		o.Engine = Frequentist
	}
	if o.Difference == "" {
		o.Difference = Relative
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Sided == "" {
		o.Sided = TwoSided
	}
	if o.Sequential != nil && o.Sequential.Tuning == 0 {
		s := *o.Sequential
		s.Tuning = DefaultSequentialTuning
		o.Sequential = &s
	}
	return o
}

// analyzeMetric assumes a validated metric and options. logP[i] is ln of variant i's p-value
// (NaN without one), finite where the p-value underflows; the corrections need it there.
func analyzeMetric(m Metric, opt Options) (res MetricResult, logP []float64) {
	out := MetricResult{Key: m.Key, Variants: make([]VariantResult, len(m.Variants))}
	logP = make([]float64, len(m.Variants))
	control := m.Variants[0]
	for i, v := range m.Variants {
		row := VariantResult{Key: v.Key, N: v.N, Control: i == 0}
		if mean, ok := armMean(m.Kind, v); ok && finite(mean) {
			row.Mean = &mean
		}
		logP[i] = math.NaN()
		if i == 0 {
			row.Error = controlError(m.Kind, v)
		} else {
			logP[i] = compareVariant(&row, m, control, v, opt)
		}
		out.Variants[i] = row
	}
	return out, logP
}

// controlError explains an undefined control mean; the treatments carry the consequence.
func controlError(kind Kind, v VariantSums) *VariantError {
	switch {
	case v.N == 0:
		return variantErr(CodeTooFewUnits, "the control has no units")
	case kind == KindRatio && v.DenominatorSum == 0:
		return variantErr(CodeZeroDenominator, "the control's denominator_sum is 0, the ratio is undefined")
	}
	return nil
}

// compareVariant fills a treatment row and returns ln of its p-value (NaN without one).
func compareVariant(row *VariantResult, m Metric, control, treatment VariantSums, opt Options) float64 {
	logP := math.NaN()
	a, verr := moments(m.Kind, m.CUPED, control, true)
	if verr == nil {
		var b arm
		b, verr = moments(m.Kind, m.CUPED, treatment, false)
		if verr == nil {
			logP, verr = fill(row, m, a, b, opt)
		}
	}
	if verr != nil {
		*row = VariantResult{Key: row.Key, N: row.N, Mean: row.Mean, Error: verr}
		return math.NaN()
	}
	return logP
}

// fill computes the treatment's numbers from the two arms and returns ln p (NaN for the
// Bayesian engine).
func fill(row *VariantResult, m Metric, a, b arm, opt Options) (float64, *VariantError) {
	e, verr := compare(opt.Difference, m.CUPED, a, b)
	if verr != nil {
		return math.NaN(), verr
	}
	if opt.Engine == Bayesian {
		post, verr := bayes(e, opt.Difference, opt.Prior)
		if verr != nil {
			return math.NaN(), verr
		}
		ci := post.credible(opt.Alpha)
		ctw := post.chanceToWin(m.Inverse)
		risk := post.risk(m.Inverse)
		row.Effect, row.SE, row.CI = &post.mean, &post.sd, &ci
		row.ChanceToWin, row.Risk = &ctw, &risk
		if !allFinite(post.mean, post.sd, ci.Low, ci.High, ctw, risk.Control, risk.Treatment) {
			return math.NaN(), variantErr(CodeNotFinite, "the sums are too large to analyse in float64")
		}
		return math.NaN(), nil
	}
	var ci Interval
	var p, logP float64
	if opt.Sequential != nil {
		ci, p, logP = sequential(e, opt.Alpha, opt.Sequential.Tuning)
	} else {
		ci, p, logP = fixedHorizon(e, opt.Alpha, opt.Sided)
	}
	row.Effect, row.SE, row.CI, row.PValue = &e.d, &e.se, &ci, &p
	if !allFinite(e.d, e.se, p) || math.IsNaN(ci.Low) || math.IsNaN(ci.High) ||
		(opt.Sided != Greater && math.IsInf(ci.High, 0)) || (opt.Sided != Less && math.IsInf(ci.Low, 0)) {
		return math.NaN(), variantErr(CodeNotFinite, "the sums are too large to analyse in float64")
	}
	return logP, nil
}

// correct applies the correction across every computed (metric, treatment) p-value and
// maps the adjusted values and intervals back to their rows. logP holds ln of every row's
// p-value: the same correction on logarithms gives the adjusted interval of a p-value that
// underflowed to 0, which would otherwise collapse to the point [d, d].
func correct(metrics []MetricResult, logP [][]float64, method Correction, opt Options) {
	var rows []*VariantResult
	var ps, logs []float64
	for i := range metrics {
		for j := range metrics[i].Variants {
			r := &metrics[i].Variants[j]
			if r.PValue != nil {
				rows = append(rows, r)
				ps = append(ps, *r.PValue)
				logs = append(logs, logP[i][j])
			}
		}
	}
	var adj, logAdj []float64
	switch method {
	case Holm:
		adj, logAdj = HolmAdjust(ps), holmLog(logs)
	case BenjaminiHochberg:
		adj, logAdj = BHAdjust(ps), bhLog(logs)
	default:
		return
	}
	sided := opt.Sided
	if opt.Sequential != nil {
		sided = TwoSided
	}
	for k, r := range rows {
		p := adj[k]
		ci := adjustedInterval(*r.Effect, p, logAdj[k], opt.Alpha, sided)
		r.PValueAdjusted, r.CIAdjusted = &p, &ci
	}
}

func allFinite(xs ...float64) bool {
	for _, x := range xs {
		if !finite(x) {
			return false
		}
	}
	return true
}
