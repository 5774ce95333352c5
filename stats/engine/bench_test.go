package engine

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchRequest is a realistic large request: 20 metrics (proportions, means, ratios and
// CUPED means, in turn) × 4 variants, with an SRM check.
func benchRequest() Request {
	req := Request{SRM: &SRMInput{Counts: []int64{25010, 24890, 25100, 24950}, Weights: []float64{1, 1, 1, 1}}}
	for i := range 20 {
		m := Metric{Key: fmt.Sprintf("metric_%02d", i)}
		for j := range 4 {
			n := int64(25000 + 37*j)
			lift := 1 + 0.01*float64(j)
			var v VariantSums
			switch i % 4 {
			case 0:
				m.Kind = KindProportion
				v = proportion("", n, 0.1*lift*float64(n))
			case 1:
				m.Kind = KindMean
				v = meanSums("", n, 12*lift, 40)
			case 2:
				m.Kind = KindRatio
				v = meanSums("", n, 3*lift, 9)
				v.DenominatorSum, v.DenominatorSumSquares, v.MainDenominatorSumProduct = 2*float64(n), 5*float64(n), 6.5*float64(n)
			case 3:
				m.Kind, m.CUPED = KindMean, true
				v = meanSums("", n, 12*lift, 40)
				v.CovariateSum, v.CovariateSumSquares, v.MainCovariateSumProduct = 11*float64(n), 150*float64(n), 160*float64(n)
			}
			v.Key = fmt.Sprintf("v%d", j)
			m.Variants = append(m.Variants, v)
		}
		req.Metrics = append(req.Metrics, m)
	}
	return req
}

// BenchmarkAnalyzeOneMetric measures AnalyzeMetric on one mean metric with a control and
// one treatment, fixed-horizon frequentist: the unit of work of the results workers and
// the guardrail monitor (target < 20 µs).
func BenchmarkAnalyzeOneMetric(b *testing.B) {
	m := Metric{Key: "revenue", Kind: KindMean, Variants: []VariantSums{
		{Key: "control", N: 3407, Sum: 1396.87, SumSquares: 52377.9767},
		{Key: "treatment", N: 3461, Sum: 2422.7, SumSquares: 134698.29}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnalyzeMetric(m, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnalyze20x4 measures Analyze on the 20-metric × 4-variant request (60
// comparisons, SRM, Holm correction across all of them) under each engine (target < 1 ms).
func BenchmarkAnalyze20x4(b *testing.B) {
	for _, tc := range []struct {
		name string
		opt  Options
		corr Correction
	}{
		{"frequentist+holm", Options{}, Holm},
		{"sequential+bh", Options{Sequential: &Sequential{Tuning: 5000}}, BenjaminiHochberg},
		{"bayesian", Options{Engine: Bayesian, Prior: &Prior{Mean: 0, Variance: 0.3, Proper: true}}, NoCorrection},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := benchRequest()
			req.Options, req.Correction = tc.opt, tc.corr
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Analyze(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeAnalyzeEncode20x4 measures what `stats analyze` and POST /v1/analyze do
// per request besides I/O: strict decoding and validation of the JSON body, the analysis,
// and encoding the response.
func BenchmarkDecodeAnalyzeEncode20x4(b *testing.B) {
	req := benchRequest()
	req.Correction = Holm
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Analyze(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPower measures one power request with both the power and the MDE root-find.
func BenchmarkPower(b *testing.B) {
	e := 0.05
	req := PowerRequest{Mean: 10, Variance: 3910, Effect: &e, Users: 400000, Variants: 3, Sequential: &Sequential{Tuning: 5000}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Power(req); err != nil {
			b.Fatal(err)
		}
	}
}
