package engine

import (
	"math"
	"slices"
)

// Power computes the power of a two-sided test to detect the request's relative effect and
// the minimum detectable effect at its target power (STATS.md §9). Zero-valued Alpha,
// TargetPower and Variants take their defaults (0.05, 0.8, 2). It returns an error
// matching [ErrInvalid] when the request is invalid.
func Power(req PowerRequest) (PowerResult, error) {
	req = req.withDefaults()
	if err := req.validate(); err != nil {
		return PowerResult{}, err
	}
	pl := newPlan(req)
	var res PowerResult
	if req.Effect != nil {
		p := pl.power(*req.Effect)
		res.Power = &p
	}
	if mde, ok := pl.mde(req.TargetPower); ok {
		res.MDE = &mde
	}
	return res, nil
}

func (req PowerRequest) withDefaults() PowerRequest {
	if req.Alpha == 0 {
		req.Alpha = DefaultAlpha
	}
	if req.TargetPower == 0 {
		req.TargetPower = DefaultTargetPower
	}
	if req.Variants == 0 {
		req.Variants = 2
	}
	return req
}

func (req PowerRequest) validate() error {
	switch {
	case !finite(req.Mean) || req.Mean == 0:
		return invalid("mean", "must be a non-zero number (effects are relative to it)")
	case !finite(req.Variance) || req.Variance <= 0:
		return invalid("variance", "must be greater than 0")
	case req.Effect != nil && !finite(*req.Effect):
		return invalid("effect", "must be a finite number")
	case req.Variants < 2:
		return invalid("variants", "must be at least 2")
	case req.Users < int64(req.Variants):
		return invalid("users", "must be at least one per variant")
	case !(req.Alpha > 0 && req.Alpha < 1):
		return invalid("alpha", "must be in (0, 1)")
	case !(req.TargetPower > req.Alpha && req.TargetPower < 1):
		return invalid("target_power", "must be greater than alpha and less than 1")
	case req.Sequential != nil && !(req.Sequential.Tuning > 0 && finite(req.Sequential.Tuning)):
		return invalid("sequential.tuning", "must be greater than 0")
	case req.Weights != nil && len(req.Weights) != req.Variants:
		return invalid("weights", "must have one weight per variant")
	}
	for _, w := range req.Weights {
		if !(w > 0 && finite(w)) {
			return invalid("weights", "must be positive numbers")
		}
	}
	return nil
}

// arms returns the units of the control and of the smallest other arm.
func (req PowerRequest) arms() (control, treatment float64) {
	users := float64(req.Users)
	if req.Weights == nil {
		n := users / float64(req.Variants)
		return n, n
	}
	total := 0.0
	for _, w := range req.Weights {
		total += w
	}
	return users * req.Weights[0] / total, users * slices.Min(req.Weights[1:]) / total
}

// plan holds what the power formula needs: se(e) = scale·sqrt(1 + ratio·(1+e)²).
type plan struct {
	scale float64 // σ/(|μ|·sqrt(n_control)) times the sequential widening
	ratio float64 // n_control / n_treatment: 1 for an even split
	zStar float64
}

func newPlan(req PowerRequest) plan {
	nC, nT := req.arms()
	zStar := zUpper(req.Alpha / 2)
	scale := math.Sqrt(req.Variance / (req.Mean * req.Mean * nC))
	if req.Sequential != nil {
		// A confidence sequence is wider than the fixed-horizon interval by the ratio of its
		// half-width to z*·se at the planned sample size n₂ = nA + nB.
		n2 := nC + nT
		rho := sequentialRho(req.Alpha, req.Sequential.Tuning)
		scale *= math.Sqrt(n2) * sequentialFactor(n2, req.Alpha, rho) / zStar
	}
	return plan{scale: scale, ratio: nC / nT, zStar: zStar}
}

// se is the standard error of the relative effect e: treatment mean μ(1+e) with the same
// per-unit variance, so se² = σ²/μ²·(1/n_control + (1+e)²/n_treatment).
func (p plan) se(e float64) float64 {
	return p.scale * math.Sqrt(1+p.ratio*(1+e)*(1+e))
}

// power is 1 - Φ(z* - e/se) + Φ(-z* - e/se).
func (p plan) power(e float64) float64 {
	x := e / p.se(e)
	return normSF(p.zStar-x) + normCDF(-p.zStar-x)
}

// mde is the smallest e > 0 with power(e) = target. e/se(e) increases with e towards
// 1/scale, so power is monotone in e > 0 and bisection finds the unique root; when even an
// infinite effect cannot reach the target there is no MDE.
func (p plan) mde(target float64) (float64, bool) {
	limit := 1 / (p.scale * math.Sqrt(p.ratio))
	if normSF(p.zStar-limit)+normCDF(-p.zStar-limit) <= target {
		return 0, false
	}
	lo, hi := 0.0, 1.0
	for p.power(hi) < target {
		lo, hi = hi, 2*hi
		if hi > 1e300 {
			return 0, false
		}
	}
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if p.power(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
