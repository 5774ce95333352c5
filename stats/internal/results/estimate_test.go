package results

import (
	"context"
	"math"
	"testing"

	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// TestEstimatePlansFromTheMetricsUnitsAndTheSplit: a mean metric's units per day are the
// contexts with an event (its n), not every exposed context; and an uneven split needs as many
// more units as the power formula says for its smallest arm.
func TestEstimatePlansFromTheMetricsUnitsAndTheSplit(t *testing.T) {
	f := newFoldFixture(t)
	ctx := context.Background()
	f.w.defs = &metricsql.Definitions{Load: func(_ context.Context, _, key string, _ int64) (metricsql.Definition, error) {
		d := metricsql.Definition{Key: key, Kind: metricsql.Proportion, EventKey: "purchase", Direction: "increase", Version: 1}
		if key == "order-value" {
			d.Kind = metricsql.Mean
		}
		d.Window.Start, d.Window.End = "0s", "168h"
		return d, nil
	}}
	est := &Estimator{Worker: f.w, CH: f.conn}
	x := f.x
	x.Metrics.Primary = []string{"order-value"}
	x.MetricVersions = nil
	mean, err := est.Estimate(ctx, x, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	x.Metrics.Primary = []string{"conversion"}
	conversion, err := est.Estimate(ctx, x, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// 2,000 units were exposed in the 14-day look-back; about half of them bought.
	if math.Abs(conversion.UnitsPerDay-2000.0/14) > 0.1 {
		t.Errorf("conversion: %v units a day, want every exposed unit (%.1f)", conversion.UnitsPerDay, 2000.0/14)
	}
	if mean.UnitsPerDay < 0.3*2000/14 || mean.UnitsPerDay > 0.7*2000/14 {
		t.Errorf("order value: %v units a day, want those with a purchase (about half of %.1f)", mean.UnitsPerDay, 2000.0/14)
	}

	even, err := est.Estimate(ctx, x, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	x.Variations = []flagsvc.Variation{{Variation: "on", Weight: 10000}, {Variation: "off", Weight: 90000}}
	uneven, err := est.Estimate(ctx, x, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// se² ∝ 1/n_control + 1/n_treatment: 1/0.9 + 1/0.1 = 11.1 against 2 + 2 = 4 at 50/50.
	if r := float64(uneven.TotalN) / float64(even.TotalN); r < 2.5 || r > 3.1 {
		t.Errorf("a 90/10 split needs %d units against %d at 50/50 (×%.2f), want about ×2.8", uneven.TotalN, even.TotalN, r)
	}
}
