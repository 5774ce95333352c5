package engine

import (
	"encoding/json"
	"math"
)

// Kind is the statistical kind of a metric; it decides which sums a variant carries and
// how the per-unit variance is computed (STATS.md §1–2).
type Kind string

// Metric kinds.
const (
	// KindProportion is a conversion rate: n units of which sum converted.
	KindProportion Kind = "proportion"
	// KindMean is the mean of a per-unit value (sum and sum of squares per variant).
	KindMean Kind = "mean"
	// KindRatio is a ratio of two per-unit sums (e.g. revenue per session), analysed with
	// the delta method.
	KindRatio Kind = "ratio"
)

// EngineKind selects the inference framework.
type EngineKind string

// Engines.
const (
	Frequentist EngineKind = "frequentist"
	Bayesian    EngineKind = "bayesian"
)

// Difference selects the scale of the effect.
type Difference string

// Difference scales.
const (
	// Relative is the lift (mB - mA)/mA; the default.
	Relative Difference = "relative"
	// Absolute is mB - mA in the metric's own units.
	Absolute Difference = "absolute"
)

// Sided selects the alternative hypothesis of a fixed-horizon frequentist test. It refers
// to the sign of the difference (treatment minus control), not to "better": for an inverse
// metric, an improvement is a negative difference.
type Sided string

// Alternatives.
const (
	TwoSided Sided = "two-sided"
	Greater  Sided = "greater"
	Less     Sided = "less"
)

// Correction selects the multiple-testing correction applied across every
// (metric, treatment) p-value of a request.
type Correction string

// Corrections.
const (
	NoCorrection      Correction = "none"
	Holm              Correction = "holm"
	BenjaminiHochberg Correction = "bh"
)

// DefaultAlpha is the significance level used when a request does not set one.
const DefaultAlpha = 0.05

// DefaultSequentialTuning is the tuning parameter N* of the sequential confidence
// sequences when a request asks for sequential analysis without naming one.
const DefaultSequentialTuning = 5000

// SRMAlertThreshold is the sample-ratio-mismatch p-value below which the assignment is
// considered broken and results should not be trusted (STATS.md §7).
const SRMAlertThreshold = 0.001

// MultipleExposureAlertThreshold is the share of an experiment's contexts exposed to several
// variations above which its assignment or identity is suspect (the results' data-quality
// flag; the guardrail alert's warning).
const MultipleExposureAlertThreshold = 0.01

// Options are the analysis settings shared by every metric of a request. Zero values mean
// the defaults (see [DefaultOptions]); a zero Sequential.Tuning means 5000.
type Options struct {
	Engine     EngineKind  `json:"engine,omitempty"`
	Difference Difference  `json:"difference,omitempty"`
	Alpha      float64     `json:"alpha,omitempty"`
	Sided      Sided       `json:"sided,omitempty"`
	Sequential *Sequential `json:"sequential,omitempty"`
	Prior      *Prior      `json:"prior,omitempty"`
}

// DefaultOptions returns the options a request gets when it sets none: frequentist,
// relative, two-sided, α = 0.05, fixed horizon.
func DefaultOptions() Options {
	return Options{Engine: Frequentist, Difference: Relative, Alpha: DefaultAlpha, Sided: TwoSided}
}

// Sequential turns on always-valid (sequential) intervals and p-values.
type Sequential struct {
	// Tuning is N*, the total sample size around which the confidence sequence is
	// tightest. Larger values give narrower intervals late and wider ones early.
	Tuning float64 `json:"tuning"`
}

// Prior is the Gaussian prior of the Bayesian engine, on the relative scale.
type Prior struct {
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	// Proper false means a flat prior; Mean and Variance are then ignored.
	Proper bool `json:"proper"`
}

// Request is one analysis: options, an optional SRM check and any number of metrics.
type Request struct {
	Options
	Correction Correction `json:"correction,omitempty"` // "" means none
	SRM        *SRMInput  `json:"srm,omitempty"`
	Metrics    []Metric   `json:"metrics"`
}

// SRMInput is the observed units per variant and the configured traffic weights.
type SRMInput struct {
	Counts  []int64   `json:"counts"`
	Weights []float64 `json:"weights"`
}

// Metric is one metric's per-variant sums; the first variant is the control.
type Metric struct {
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Inverse marks a metric where lower is better (latency, churn): chance to win and the
	// two risks are taken for a decrease.
	Inverse bool `json:"inverse"`
	// CUPED turns on regression adjustment with the pre-exposure covariate sums.
	CUPED    bool          `json:"cuped"`
	Variants []VariantSums `json:"variants"`
}

// VariantSums are the sufficient statistics of one variant (STATS.md §1). Which fields are
// read depends on the metric's kind and on CUPED.
type VariantSums struct {
	Key string `json:"key"`
	// N is the number of units (users) exposed to the variant.
	N int64 `json:"n"`
	// Sum is the sum of the per-unit value (conversions for a proportion, the numerator
	// for a ratio).
	Sum float64 `json:"sum"`
	// SumSquares is the sum of squared per-unit values (mean and ratio numerator).
	SumSquares float64 `json:"sum_squares"`

	DenominatorSum            float64 `json:"denominator_sum"`
	DenominatorSumSquares     float64 `json:"denominator_sum_squares"`
	MainDenominatorSumProduct float64 `json:"main_denominator_sum_product"`

	CovariateSum            float64 `json:"covariate_sum"`
	CovariateSumSquares     float64 `json:"covariate_sum_squares"`
	MainCovariateSumProduct float64 `json:"main_covariate_sum_product"`
}

// Response is the result of [Analyze].
type Response struct {
	// SRMPValue is the sample-ratio-mismatch p-value, nil when the request had no SRM input.
	SRMPValue *float64       `json:"srm_p_value"`
	Metrics   []MetricResult `json:"metrics"`
}

// MetricResult holds one result per variant, in request order; the first is the control.
type MetricResult struct {
	Key      string          `json:"key"`
	Variants []VariantResult `json:"variants"`
}

// VariantResult is one variant's row. For the control only Key, N, Mean (and Error when
// the control's own mean is undefined) are set. For a treatment, Effect, CI and SE are
// set unless Error is; PValue (and the adjusted fields under a correction) are set by the
// frequentist engine, ChanceToWin and Risk by the Bayesian one. Nil encodes as JSON null.
type VariantResult struct {
	Key string `json:"key"`
	N   int64  `json:"n"`
	// Mean is the arm's mean (R for ratio metrics, unadjusted under CUPED).
	Mean *float64 `json:"mean"`

	// Control is true for the first variant; it is not part of the JSON contract.
	Control bool `json:"-"`

	// Effect is the estimated difference on the requested scale: the point estimate
	// for the frequentist engine, the posterior mean for the Bayesian one.
	Effect *float64 `json:"effect"`
	// CI is the confidence interval (frequentist) or credible interval (Bayesian).
	CI *Interval `json:"ci"`
	// SE is the standard error of Effect (the posterior standard deviation for Bayesian).
	SE             *float64  `json:"se"`
	PValue         *float64  `json:"p_value"`
	PValueAdjusted *float64  `json:"p_value_adjusted"`
	CIAdjusted     *Interval `json:"ci_adjusted"`
	ChanceToWin    *float64  `json:"chance_to_win"`
	Risk           *Risk     `json:"risk"`

	Error *VariantError `json:"error"`
}

// MarshalJSON writes the control's short row ({key, n, mean[, error]}) and the full row
// for treatments, as in STATS.md §11.
func (v VariantResult) MarshalJSON() ([]byte, error) {
	if v.Control {
		type control struct {
			Key   string        `json:"key"`
			N     int64         `json:"n"`
			Mean  *float64      `json:"mean"`
			Error *VariantError `json:"error,omitempty"`
		}
		return json.Marshal(control{Key: v.Key, N: v.N, Mean: v.Mean, Error: v.Error})
	}
	type plain VariantResult // drops this method
	return json.Marshal(plain(v))
}

// UnmarshalJSON reads either row shape; a row without an "effect" field is a control.
func (v *VariantResult) UnmarshalJSON(data []byte) error {
	type plain VariantResult
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	_, hasEffect := probe["effect"]
	*v = VariantResult(p)
	v.Control = !hasEffect
	return nil
}

// Risk is the Bayesian expected loss, in the units of the difference: Control is the loss
// expected if we keep the control, Treatment the loss expected if we ship the treatment.
type Risk struct {
	Control   float64 `json:"control"`
	Treatment float64 `json:"treatment"`
}

// Interval is a confidence or credible interval. An unbounded end is ±Inf in Go and null
// in JSON.
type Interval struct {
	Low, High float64
}

// MarshalJSON encodes [low, high] with null for infinite ends.
func (iv Interval) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]*float64{finiteOrNil(iv.Low), finiteOrNil(iv.High)})
}

// UnmarshalJSON decodes [low, high]; null ends become -Inf and +Inf.
func (iv *Interval) UnmarshalJSON(data []byte) error {
	var ends [2]*float64
	if err := json.Unmarshal(data, &ends); err != nil {
		return err
	}
	iv.Low, iv.High = math.Inf(-1), math.Inf(1)
	if ends[0] != nil {
		iv.Low = *ends[0]
	}
	if ends[1] != nil {
		iv.High = *ends[1]
	}
	return nil
}

// Contains reports whether x lies in the closed interval.
func (iv Interval) Contains(x float64) bool { return iv.Low <= x && x <= iv.High }

func finiteOrNil(x float64) *float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil
	}
	return &x
}

// PowerRequest plans an experiment (STATS.md §9).
type PowerRequest struct {
	// Mean and Variance are the baseline per-unit mean and variance of the metric.
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	// Effect is the relative effect whose power is asked; nil asks only for the MDE.
	Effect *float64 `json:"effect,omitempty"`
	// Users is the total number of units, split evenly over Variants arms — or, when Weights
	// is set, in proportion to them (one per variant, the control's first; any positive scale).
	// An uneven split is planned for the control against the smallest other arm, the
	// comparison with the least power.
	Users       int64       `json:"users"`
	Variants    int         `json:"variants"`
	Weights     []float64   `json:"weights,omitempty"`
	Alpha       float64     `json:"alpha"`
	TargetPower float64     `json:"target_power"`
	Sequential  *Sequential `json:"sequential,omitempty"`
}

// DefaultTargetPower is the power the MDE is computed for when a request sets none.
const DefaultTargetPower = 0.8

// PowerResult is the answer to a [PowerRequest]. Power is nil when no effect was given;
// MDE is nil when no effect reaches the target power with this many users.
type PowerResult struct {
	Power *float64 `json:"power"`
	MDE   *float64 `json:"mde"`
}
