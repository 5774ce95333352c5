package engine

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Every per-variant error code is produced by some input, and the response still encodes
// as JSON (encoding/json refuses NaN and infinities, so a successful Marshal proves none
// leaked).
func TestVariantErrorCodes(t *testing.T) {
	ratio := func(key string, n int64, num, den float64) VariantSums {
		return VariantSums{Key: key, N: n, Sum: num, SumSquares: num * num, DenominatorSum: den, DenominatorSumSquares: den * den, MainDenominatorSumProduct: num * den}
	}
	tests := []struct {
		name        string
		metric      Metric
		opt         Options
		code        string
		controlCode string // the control row's own error, if any
	}{
		{"treatment with one unit", Metric{Kind: KindMean, Variants: []VariantSums{meanSums("a", 10, 1, 1), {Key: "b", N: 1, Sum: 2, SumSquares: 4}}}, Options{}, CodeTooFewUnits, ""},
		{"empty control", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 0, 0), proportion("b", 10, 3)}}, Options{}, CodeTooFewUnits, CodeTooFewUnits},
		{"proportion with one unit", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 1, 1), proportion("b", 10, 3)}}, Options{Difference: Absolute}, CodeTooFewUnits, ""},
		{"nobody converted anywhere", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 100, 0), proportion("b", 100, 0)}}, Options{Difference: Absolute}, CodeZeroVariance, ""},
		{"everybody converted", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 100, 100), proportion("b", 100, 100)}}, Options{}, CodeZeroVariance, ""},
		{"constant values", Metric{Kind: KindMean, Variants: []VariantSums{meanSums("a", 50, 3, 0), meanSums("b", 50, 4, 0)}}, Options{Engine: Bayesian}, CodeZeroVariance, ""},
		{"relative with zero control", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 100, 0), proportion("b", 100, 5)}}, Options{}, CodeZeroBaseline, ""},
		{"absolute bayesian prior with zero control", Metric{Kind: KindProportion, Variants: []VariantSums{proportion("a", 100, 0), proportion("b", 100, 5)}}, Options{Engine: Bayesian, Difference: Absolute, Prior: &Prior{Mean: 0, Variance: 0.1, Proper: true}}, CodeZeroBaseline, ""},
		{"ratio without denominator", Metric{Kind: KindRatio, Variants: []VariantSums{ratio("a", 10, 5, 0), ratio("b", 10, 5, 7)}}, Options{}, CodeZeroDenominator, CodeZeroDenominator},
		{"sum_squares below sum²/n", Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 10, Sum: 100, SumSquares: 500}, meanSums("b", 10, 1, 1)}}, Options{}, CodeInconsistentSums, ""},
		{"cuped covariate inconsistent", Metric{Kind: KindMean, CUPED: true, Variants: []VariantSums{meanSums("a", 10, 1, 1), {Key: "b", N: 10, Sum: 10, SumSquares: 20, CovariateSum: 100, CovariateSumSquares: 1}}}, Options{}, CodeInconsistentSums, ""},
		{"overflowing sums", Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 10, Sum: 1e200, SumSquares: 1e300}, meanSums("b", 10, 1, 1)}}, Options{}, CodeNotFinite, ""},
		{"overflowing relative effect", Metric{Kind: KindMean, Variants: []VariantSums{meanSums("a", 10, 1e-300, 1e-300), meanSums("b", 10, 1e10, 1)}}, Options{}, CodeNotFinite, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.metric.Key = "m"
			res, err := AnalyzeMetric(tc.metric, tc.opt)
			if err != nil {
				t.Fatalf("a per-variant problem must not reject the request: %v", err)
			}
			tr := res.Variants[1]
			if tr.Error == nil || tr.Error.Code != tc.code || tr.Error.Message == "" {
				t.Fatalf("treatment error = %+v, want code %s", tr.Error, tc.code)
			}
			if tr.Effect != nil || tr.CI != nil || tr.SE != nil || tr.PValue != nil || tr.ChanceToWin != nil || tr.Risk != nil {
				t.Errorf("a failed comparison must carry no numbers: %+v", tr)
			}
			if c := res.Variants[0].Error; (c == nil) != (tc.controlCode == "") || c != nil && c.Code != tc.controlCode {
				t.Errorf("control error = %+v, want %q", c, tc.controlCode)
			}
			body, err := json.Marshal(res)
			if err != nil {
				t.Fatalf("the result must encode as JSON: %v", err)
			}
			if !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
				t.Errorf("JSON lacks the error code: %s", body)
			}
		})
	}
}

// A broken variant does not spoil its neighbours.
func TestVariantErrorIsLocal(t *testing.T) {
	m := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{
		meanSums("a", 100, 5, 2), {Key: "broken", N: 1, Sum: 3, SumSquares: 9}, meanSums("c", 100, 5.5, 2)}}
	res := analyzeOne(t, m, Options{})
	if res.Variants[1].Error == nil || res.Variants[2].Error != nil || res.Variants[2].PValue == nil {
		t.Errorf("only the broken variant should fail: %+v", res.Variants)
	}
}

func TestInvalidRequests(t *testing.T) {
	const ok2 = `[{"key":"a","n":10,"sum":1},{"key":"b","n":10,"sum":2}]`
	metric := func(kind, variants string) string {
		return `{"metrics":[{"key":"m","kind":"` + kind + `","variants":` + variants + `}]}`
	}
	tests := []struct{ name, body, field string }{
		{"empty body", ``, ""},
		{"not an object", `[1,2]`, ""},
		{"trailing data", metric("proportion", ok2) + ` {}`, ""},
		{"unknown top-level field", `{"enigne":"bayesian","metrics":[]}`, "enigne"},
		{"unknown engine", `{"engine":"magic","metrics":[]}`, "engine"},
		{"unknown difference", `{"difference":"ratio","metrics":[]}`, "difference"},
		{"alpha zero", `{"alpha":0,"metrics":[]}`, "alpha"},
		{"alpha one", `{"alpha":1,"metrics":[]}`, "alpha"},
		{"alpha as string", `{"alpha":"0.05","metrics":[]}`, "alpha"},
		{"unknown sided", `{"sided":"both","metrics":[]}`, "sided"},
		{"one-sided bayesian", `{"engine":"bayesian","sided":"greater",` + metric("proportion", ok2)[1:], "sided"},
		{"one-sided sequential", `{"sequential":{},"sided":"less",` + metric("proportion", ok2)[1:], "sided"},
		{"sequential bayesian", `{"engine":"bayesian","sequential":{"tuning":10},` + metric("proportion", ok2)[1:], "sequential"},
		{"zero tuning", `{"sequential":{"tuning":0},"metrics":[]}`, "sequential.tuning"},
		{"prior without proper", `{"engine":"bayesian","prior":{"mean":0,"variance":1},"metrics":[]}`, "prior.proper"},
		{"proper prior without variance", `{"engine":"bayesian","prior":{"mean":0,"proper":true},"metrics":[]}`, "prior.variance"},
		{"prior with frequentist", `{"prior":{"proper":false},` + metric("proportion", ok2)[1:], "prior"},
		{"unknown correction", `{"correction":"bonferroni","metrics":[]}`, "correction"},
		{"correction with bayesian", `{"engine":"bayesian","correction":"holm",` + metric("proportion", ok2)[1:], "correction"},
		{"no metrics", `{}`, "metrics"},
		{"empty metrics", `{"metrics":[]}`, "metrics"},
		{"metrics not an array", `{"metrics":{}}`, "metrics"},
		{"unknown kind", metric("median", ok2), "metrics[0].kind"},
		{"missing kind", `{"metrics":[{"key":"m","variants":` + ok2 + `}]}`, "metrics[0].kind"},
		{"missing key", `{"metrics":[{"kind":"mean","variants":` + ok2 + `}]}`, "metrics[0].key"},
		{"duplicate metric", `{"metrics":[{"key":"m","kind":"proportion","variants":` + ok2 + `},{"key":"m","kind":"proportion","variants":` + ok2 + `}]}`, "metrics[1].key"},
		{"one variant", metric("proportion", `[{"key":"a","n":10,"sum":1}]`), "metrics[0].variants"},
		{"duplicate variant", metric("proportion", `[{"key":"a","n":10,"sum":1},{"key":"a","n":10,"sum":2}]`), "metrics[0].variants[1].key"},
		{"negative n", metric("proportion", `[{"key":"a","n":10,"sum":1},{"key":"b","n":-1,"sum":0}]`), "metrics[0].variants[1].n"},
		{"fractional n", metric("proportion", `[{"key":"a","n":10.5,"sum":1},{"key":"b","n":10,"sum":0}]`), "metrics[0].variants[0].n"},
		{"missing n", metric("proportion", `[{"key":"a","sum":1},{"key":"b","n":10,"sum":0}]`), "metrics[0].variants[0].n"},
		{"missing sum", metric("proportion", `[{"key":"a","n":10},{"key":"b","n":10,"sum":0}]`), "metrics[0].variants[0].sum"},
		{"mean without sum_squares", metric("mean", ok2), "metrics[0].variants[0].sum_squares"},
		{"ratio without denominator", metric("ratio", `[{"key":"a","n":10,"sum":1,"sum_squares":1},{"key":"b","n":10,"sum":0,"sum_squares":0}]`), "metrics[0].variants[0].denominator_sum"},
		{"cuped without covariate", `{"metrics":[{"key":"m","kind":"proportion","cuped":true,"variants":` + ok2 + `}]}`, "metrics[0].variants[0].covariate_sum"},
		{"cuped on ratio", `{"metrics":[{"key":"m","kind":"ratio","cuped":true,"variants":[]}]}`, "metrics[0].cuped"},
		{"conversions above n", metric("proportion", `[{"key":"a","n":10,"sum":11},{"key":"b","n":10,"sum":0}]`), "metrics[0].variants[0].sum"},
		{"negative sum_squares", metric("mean", `[{"key":"a","n":10,"sum":1,"sum_squares":-1},{"key":"b","n":10,"sum":0,"sum_squares":0}]`), "metrics[0].variants[0].sum_squares"},
		{"huge number", metric("mean", `[{"key":"a","n":10,"sum":1e999,"sum_squares":1},{"key":"b","n":10,"sum":0,"sum_squares":0}]`), "metrics[0].variants[0].sum"},
		{"unknown variant field", metric("proportion", `[{"key":"a","n":10,"sum":1,"conversions":1},{"key":"b","n":10,"sum":0}]`), "metrics[0].variants[0].conversions"},
		{"inverse not a bool", `{"metrics":[{"key":"m","kind":"proportion","inverse":"yes","variants":` + ok2 + `}]}`, "metrics[0].inverse"},
		{"srm length mismatch", `{"srm":{"counts":[1,2],"weights":[1]}}`, "srm.weights"},
		{"srm negative count", `{"srm":{"counts":[1,-2]}}`, "srm.counts[1]"},
		{"srm negative weight", `{"srm":{"counts":[1,2],"weights":[1,-1]}}`, "srm.weights[1]"},
		{"srm without counts", `{"srm":{"weights":[1,1]}}`, "srm.counts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body))
			var inv *InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			if inv.Field != tc.field || inv.Message == "" {
				t.Errorf("field %q (%s), want %q", inv.Field, inv.Message, tc.field)
			}
		})
	}
}

func TestDecodeDefaultsAndSRMOnly(t *testing.T) {
	req, err := DecodeRequest([]byte(`{"sequential":{},"srm":{"counts":[10,12]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Engine != Frequentist || req.Difference != Relative || req.Alpha != 0.05 || req.Sided != TwoSided ||
		req.Correction != NoCorrection || req.Sequential.Tuning != 5000 || len(req.SRM.Weights) != 2 {
		t.Errorf("defaults not applied: %+v", req)
	}
	res, err := Analyze(req)
	if err != nil || res.SRMPValue == nil || *res.SRMPValue <= 0.5 || len(res.Metrics) != 0 {
		t.Errorf("an SRM-only request should answer the SRM p-value: %+v, %v", res, err)
	}
}

func TestInvalidPowerRequests(t *testing.T) {
	tests := []struct{ name, body, field string }{
		{"missing mean", `{"variance":1,"users":100}`, "mean"},
		{"zero mean", `{"mean":0,"variance":1,"users":100}`, "mean"},
		{"zero variance", `{"mean":1,"variance":0,"users":100}`, "variance"},
		{"missing users", `{"mean":1,"variance":1}`, "users"},
		{"too few users", `{"mean":1,"variance":1,"users":2,"variants":3}`, "users"},
		{"one variant", `{"mean":1,"variance":1,"users":100,"variants":1}`, "variants"},
		{"alpha", `{"mean":1,"variance":1,"users":100,"alpha":0}`, "alpha"},
		{"target below alpha", `{"mean":1,"variance":1,"users":100,"target_power":0.01}`, "target_power"},
		{"tuning", `{"mean":1,"variance":1,"users":100,"sequential":{"tuning":-5}}`, "sequential.tuning"},
		{"unknown field", `{"mean":1,"variance":1,"users":100,"power":0.8}`, "power"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePowerRequest([]byte(tc.body))
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field != tc.field {
				t.Errorf("got %v, want an *InvalidError on %q", err, tc.field)
			}
		})
	}
}

func TestPowerEdges(t *testing.T) {
	// Without an effect only the MDE is computed.
	res, err := Power(PowerRequest{Mean: 1, Variance: 1, Users: 10000})
	if err != nil || res.Power != nil || res.MDE == nil {
		t.Fatalf("got %+v, %v", res, err)
	}
	// The MDE has exactly the target power.
	e := *res.MDE
	at, _ := Power(PowerRequest{Mean: 1, Variance: 1, Users: 10000, Effect: &e})
	if !close(*at.Power, DefaultTargetPower, 1e-9) {
		t.Errorf("power at the MDE = %v, want %v", *at.Power, DefaultTargetPower)
	}
	// Power grows with users and with the effect.
	small, big := 0.01, 0.05
	p1, _ := Power(PowerRequest{Mean: 1, Variance: 1, Users: 10000, Effect: &small})
	p2, _ := Power(PowerRequest{Mean: 1, Variance: 1, Users: 100000, Effect: &small})
	p3, _ := Power(PowerRequest{Mean: 1, Variance: 1, Users: 10000, Effect: &big})
	if !(*p1.Power < *p2.Power && *p1.Power < *p3.Power) {
		t.Errorf("power should grow with users and effect: %v %v %v", *p1.Power, *p2.Power, *p3.Power)
	}
	// With very noisy data even an infinite lift cannot reach 80%: no MDE rather than a
	// made-up number.
	none, err := Power(PowerRequest{Mean: 1, Variance: 1e6, Users: 1000})
	if err != nil || none.MDE != nil {
		t.Errorf("unreachable target should give a null MDE, got %+v, %v", none, err)
	}
	if body, _ := json.Marshal(none); string(body) != `{"power":null,"mde":null}` {
		t.Errorf("JSON %s", body)
	}
}

// TestValidateMetricNamesFieldsWithinTheMetric: one metric is checked as Analyze checks each of
// a request's, with the field named from the metric (a caller leaves that metric out).
func TestValidateMetricNamesFieldsWithinTheMetric(t *testing.T) {
	m := Metric{Key: "revenue", Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 10, Sum: 5, SumSquares: 3}, {Key: "b", N: 10, Sum: 1e200, SumSquares: math.Inf(1)}}}
	var inv *InvalidError
	if err := ValidateMetric(m); !errors.As(err, &inv) || inv.Field != "variants[1].sum_squares" {
		t.Fatalf("ValidateMetric: %v, want an InvalidError naming variants[1].sum_squares", err)
	}
	_, err := Analyze(Request{Metrics: []Metric{m}})
	if !errors.As(err, &inv) || inv.Field != "metrics[0].variants[1].sum_squares" {
		t.Fatalf("Analyze: %v", err)
	}
	m.Variants[1].SumSquares = 4
	m.Variants[1].Sum = 6
	if err := ValidateMetric(m); err != nil {
		t.Fatal(err)
	}
}
