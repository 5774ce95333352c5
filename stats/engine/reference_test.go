package engine

import (
	"encoding/json"
	"testing"

	"github.com/switchyard-io/switchyard/stats/internal/refcases"
)

// TestReferenceCases runs every STATS.md §12 case through the decoder and the engine (the
// command's tests run the same fixture through the real binary).
func TestReferenceCases(t *testing.T) {
	cases, err := refcases.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.ID+" "+c.Name, func(t *testing.T) {
			var res any
			switch c.Command {
			case "analyze":
				req, err := DecodeRequest(c.Request)
				if err != nil {
					t.Fatal(err)
				}
				if res, err = Analyze(req); err != nil {
					t.Fatal(err)
				}
			case "power":
				req, err := DecodePowerRequest(c.Request)
				if err != nil {
					t.Fatal(err)
				}
				if res, err = Power(req); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("unknown command %q", c.Command)
			}
			body, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.Check(body) {
				t.Error(p)
			}
		})
	}
}

// The correction cases of §12 on the exact reference p-values (the fixture reaches them
// through sums, to ~1e-12).
func TestCorrectionsOnReferencePValues(t *testing.T) {
	tests := []struct {
		name   string
		adjust func([]float64) []float64
		p      []float64
		want   []float64
	}{
		{"holm", HolmAdjust, []float64{0.01, 0.04, 0.03, 0.005, 0.55, 0.6}, []float64{0.05, 0.12, 0.12, 0.03, 1, 1}},
		{"bh", BHAdjust, []float64{0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138}, []float64{0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415}},
		{"holm single", HolmAdjust, []float64{0.3}, []float64{0.3}},
		{"bh single", BHAdjust, []float64{0.3}, []float64{0.3}},
		{"holm empty", HolmAdjust, nil, []float64{}},
		{"bh capped", BHAdjust, []float64{0.9, 0.95}, []float64{0.95, 0.95}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.adjust(tc.p)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if !refcases.Matches(got[i], tc.want[i], nil) {
					t.Errorf("[%d] got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSRMPValue(t *testing.T) {
	tests := []struct {
		name    string
		counts  []int64
		weights []float64
		want    float64
	}{
		{"reference two variants", []int64{1000, 1200}, []float64{0.5, 0.5}, 0.000020079},
		{"reference three variants", []int64{500, 500, 600}, []float64{0.34, 0.33, 0.33}, 0.000592638},
		{"perfect split", []int64{500, 500}, []float64{1, 1}, 1},
		{"unnormalised weights", []int64{1000, 1200}, []float64{5, 5}, 0.000020079},
		{"zero-weight variant ignored", []int64{1000, 1200, 7}, []float64{0.5, 0.5, 0}, 0.000020079},
		{"one weighted variant", []int64{1000, 1200}, []float64{1, 0}, 1},
		{"no units", []int64{0, 0}, []float64{0.5, 0.5}, 1},
	}
	nine := 9
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SRMPValue(tc.counts, tc.weights); !refcases.Matches(got, tc.want, &nine) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
