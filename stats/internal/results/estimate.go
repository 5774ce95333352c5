package results

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// ErrNoBaseline: there is no traffic on the flag to plan from.
var ErrNoBaseline = errors.New("no baseline: the flag served no contexts in the last 14 days with a measurable metric; plan from a baseline of your own with POST /v1/power")

// ErrNoPrimaryMetric: the estimate plans the first primary metric, and there is none.
var ErrNoPrimaryMetric = errors.New("the experiment has no primary metric to plan for")

// ErrRatioBaseline: a ratio metric has no single baseline mean and variance to plan from.
var ErrRatioBaseline = errors.New("the primary metric is a ratio, which has no baseline to plan from here; plan with POST /v1/power from your own mean and variance")

// ErrEffectTooSmall: no realistic sample detects the effect asked for.
var ErrEffectTooSmall = errors.New("the effect is too small to detect with any realistic sample")

// Estimator plans experiments from the power calculator and the primary metric's baseline.
type Estimator struct {
	Worker   *Worker
	CH       driver.Conn
	Lookback time.Duration
}

// Estimate is a sample-size and duration estimate for an experiment (usually a draft).
type Estimate struct {
	Metric           string   `json:"metric"`
	Effect           float64  `json:"effect"`
	BaselineMean     float64  `json:"baseline_mean"`
	BaselineVariance float64  `json:"baseline_variance"`
	UnitsPerDay      float64  `json:"units_per_day"`
	PerVariantN      int64    `json:"per_variant_n"`
	TotalN           int64    `json:"total_n"`
	Days             float64  `json:"days"`
	PlannedDays      float64  `json:"planned_days"`
	MDEAtPlannedDays *float64 `json:"mde_at_planned_days"`
	Power            float64  `json:"power"`
	LookbackDays     float64  `json:"lookback_days"`
}

// Estimate computes how many units (and days of the flag's traffic) the experiment needs to
// detect a relative effect on its first primary metric with 80% power, and the smallest effect
// its planned duration detects.
func (e *Estimator) Estimate(ctx context.Context, x flagsvc.Experiment, effect float64) (*Estimate, error) {
	if len(x.Metrics.Primary) == 0 {
		return nil, ErrNoPrimaryMetric
	}
	lookback := e.Lookback
	if lookback == 0 {
		lookback = 14 * 24 * time.Hour
	}
	key := x.Metrics.Primary[0]
	_, q, err := e.Worker.defs.Query(ctx, x.Project, key, x.MetricVersions)
	if err != nil {
		return nil, err
	}
	if q.Kind == metricsql.Ratio {
		return nil, ErrRatioBaseline
	}
	now := e.Worker.now().UTC()
	b, err := metricsql.FlagBaseline(ctx, e.CH, x.EnvironmentID, x.Flag, q, now.Add(-lookback), now)
	if err != nil {
		return nil, err
	}
	if b.Exposed == 0 || b.Units < 2 || b.Mean == 0 || b.Variance <= 0 {
		return nil, fmt.Errorf("%w (contexts exposed: %d, measured: %d)", ErrNoBaseline, b.Exposed, b.Units)
	}
	days := lookback.Hours() / 24
	// The units a day brings to the metric: every exposed context, except for a mean, whose n
	// (and baseline variance) counts only the contexts with an event — their share of the
	// contexts the baseline measured.
	perDay := float64(b.Exposed) / days
	if q.Kind == metricsql.Mean && b.Complete > 0 {
		perDay *= float64(b.Units) / float64(b.Complete)
	}
	variants := len(x.Variations)
	weights := splitWeights(x)
	opts := engineOptions(x.Analysis)
	power := func(users int64) float64 {
		eff := effect
		res, err := engine.Power(engine.PowerRequest{Mean: b.Mean, Variance: b.Variance, Effect: &eff, Users: users, Variants: variants,
			Weights: weights, Alpha: opts.Alpha, TargetPower: engine.DefaultTargetPower, Sequential: opts.Sequential})
		if err != nil || res.Power == nil {
			return 0
		}
		return *res.Power
	}
	// The smallest total that reaches 80% power (power grows with users): the control against
	// the smallest other arm, at the experiment's split.
	lo, hi := int64(2*variants), int64(2*variants)
	for power(hi) < engine.DefaultTargetPower {
		if hi > 1e11 {
			return nil, ErrEffectTooSmall
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if power(mid) >= engine.DefaultTargetPower {
			hi = mid
		} else {
			lo = mid
		}
	}
	planned := plannedDays(x)
	out := &Estimate{Metric: key, Effect: effect, BaselineMean: b.Mean, BaselineVariance: b.Variance, UnitsPerDay: round(perDay, 1),
		PerVariantN: int64(math.Ceil(float64(hi) / float64(variants))), TotalN: hi, Days: round(float64(hi)/perDay, 2),
		PlannedDays: planned, Power: round(power(hi), 4), LookbackDays: days}
	if planned > 0 {
		res, err := engine.Power(engine.PowerRequest{Mean: b.Mean, Variance: b.Variance, Users: int64(perDay * planned), Variants: variants,
			Weights: weights, Alpha: opts.Alpha, TargetPower: engine.DefaultTargetPower, Sequential: opts.Sequential})
		if err == nil && res.MDE != nil {
			v := round(*res.MDE, 6)
			out.MDEAtPlannedDays = &v
		}
	}
	return out, nil
}

// splitWeights is the experiment's split with the control first, as engine.Power takes it
// (nil, an even split, when some weight is not positive).
func splitWeights(x flagsvc.Experiment) []float64 {
	out := make([]float64, 0, len(x.Variations))
	for _, v := range x.Variations {
		if v.Weight <= 0 {
			return nil
		}
		if v.Variation == x.Control {
			out = append([]float64{float64(v.Weight)}, out...)
		} else {
			out = append(out, float64(v.Weight))
		}
	}
	return out
}
