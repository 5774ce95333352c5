package promscrape

import (
	"testing"
	"time"
)

const page = `# HELP x_seconds A histogram.
# TYPE x_seconds histogram
x_seconds_bucket{le="0.01"} 10
x_seconds_bucket{le="0.02"} 30
x_seconds_bucket{le="0.05"} 40
x_seconds_bucket{le="+Inf"} 40
x_seconds_sum 0.7
x_seconds_count 40
# TYPE y gauge
y 3
`

func TestParseAndQuantiles(t *testing.T) {
	h := ParseHistogram([]byte(page), "x_seconds")
	if h.Count != 40 || len(h.Bounds) != 3 {
		t.Fatalf("parsed %+v", h)
	}
	// rank 20 of 40 falls halfway through the (0.01, 0.02] bucket's 20 observations.
	if got := h.Quantile(0.5); got != 15*time.Millisecond {
		t.Fatalf("p50 = %s, want 15ms", got)
	}
	earlier := Histogram{Bounds: h.Bounds, Counts: []float64{10, 10, 10}, Count: 10}
	d := h.Minus(earlier)
	if d.Count != 30 || d.Counts[0] != 0 || d.Counts[2] != 30 {
		t.Fatalf("difference %+v", d)
	}
	if v, ok := ParseGauge([]byte(page), "y"); !ok || v != 3 {
		t.Fatalf("gauge %v %v", v, ok)
	}
	if _, ok := ParseGauge([]byte(page), "z"); ok {
		t.Fatal("found a gauge that is not there")
	}
}
