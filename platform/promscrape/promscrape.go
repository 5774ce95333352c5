// Package promscrape reads histograms and gauges from a service's Prometheus text exposition,
// so load generators can report what the service measured about itself (the flag service's
// commit-to-ack latency, the relay's stream delivery) beside what they measured from outside.
package promscrape

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Fetch reads a /metrics page.
func Fetch(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// Histogram is an unlabelled Prometheus histogram in seconds: cumulative bucket counts by
// upper bound (without +Inf), and the total count.
type Histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
}

// ParseHistogram finds histogram name in a text exposition (empty when absent).
func ParseHistogram(text []byte, name string) Histogram {
	var h Histogram
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, name+"_bucket{le=\""):
			le, val, _ := strings.Cut(strings.TrimPrefix(line, name+"_bucket{le=\""), "\"} ")
			if le == "+Inf" {
				continue
			}
			var b, v float64
			fmt.Sscan(le, &b)
			fmt.Sscan(val, &v)
			h.Bounds, h.Counts = append(h.Bounds, b), append(h.Counts, v)
		case strings.HasPrefix(line, name+"_count "):
			fmt.Sscan(strings.TrimPrefix(line, name+"_count "), &h.Count)
		}
	}
	return h
}

// ParseGauge finds an unlabelled gauge (ok false when absent).
func ParseGauge(text []byte, name string) (v float64, ok bool) {
	for _, line := range strings.Split(string(text), "\n") {
		if rest, found := strings.CutPrefix(line, name+" "); found {
			_, err := fmt.Sscan(rest, &v)
			return v, err == nil
		}
	}
	return 0, false
}

// Minus subtracts an earlier scrape: what was observed in between.
func (h Histogram) Minus(o Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts)), Count: h.Count - o.Count}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(o.Counts) {
			out.Counts[i] -= o.Counts[i]
		}
	}
	return out
}

// Quantile estimates a quantile by linear interpolation inside its bucket, like PromQL's
// histogram_quantile.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := q * h.Count
	lower, prev := 0.0, 0.0
	for i, b := range h.Bounds {
		if h.Counts[i] >= rank {
			frac := (rank - prev) / (h.Counts[i] - prev)
			return time.Duration((lower + frac*(b-lower)) * float64(time.Second))
		}
		lower, prev = b, h.Counts[i]
	}
	return time.Duration(lower * float64(time.Second))
}

// Summary is "<what>=n p50≈… p90≈… p99≈…".
func (h Histogram) Summary(what string) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("%s=%.0f p50≈%s p90≈%s p99≈%s (bucket-interpolated)", what, h.Count, ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)))
}
