package engine

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Tail probabilities. gonum's Normal.Survival is computed as 1-Erf, which rounds to 0 beyond
// about 8σ; Normal.CDF uses Erfc, so the upper tail is taken as CDF(-x). StudentsT.Survival
// and ChiSquared.Survival use the regularized incomplete beta and gamma functions directly
// and keep tiny p-values.

func normCDF(x float64) float64 { return distuv.UnitNormal.CDF(x) }
func normSF(x float64) float64  { return distuv.UnitNormal.CDF(-x) }
func normPDF(x float64) float64 { return distuv.UnitNormal.Prob(x) }

// zUpper is z(1-p), the standard normal quantile with upper-tail probability p, computed
// as -Φ⁻¹(p) so that tiny p keeps its precision.
func zUpper(p float64) float64 { return -distuv.UnitNormal.Quantile(p) }

// logNormSF is ln P(Z > x). It stays finite where P(Z > x) underflows float64 (x beyond
// about 38): there it is the asymptotic series of Mills' ratio (Abramowitz & Stegun 26.2.12),
// Φc(x) = φ(x)/x·(1 - 1/x² + 3/x⁴ - 15/x⁶ + 105/x⁸ - …), whose next term is below 2e-12 at x ≥ 30.
func logNormSF(x float64) float64 {
	if x < 30 {
		return math.Log(normSF(x))
	}
	x2 := x * x
	series := 1 + (-1+(3+(-15+105/x2)/x2)/x2)/x2
	return -x2/2 - math.Log(x) - 0.5*math.Log(2*math.Pi) + math.Log(series)
}

// zUpperLog is z(1-q) given ln q: [zUpper] for a q that float64 can hold, and Newton's
// method on [logNormSF] below that.
func zUpperLog(logQ float64) float64 {
	if logQ > -700 {
		return zUpper(math.Exp(logQ))
	}
	if math.IsInf(logQ, -1) {
		return math.Inf(1)
	}
	z := math.Sqrt(-2 * logQ)
	for range 50 {
		l := logNormSF(z)
		// d/dz ln Φc(z) = -φ(z)/Φc(z).
		step := (l - logQ) / math.Exp(-z*z/2-0.5*math.Log(2*math.Pi)-l)
		z += step
		if math.Abs(step) <= 1e-15*z {
			break
		}
	}
	return z
}

// largeDF is where the Student-t switches from gonum's incomplete-beta functions to
// asymptotic forms. gonum's StudentsT.Survival computes I_t(ν/2, 1/2) at t = ν/(ν+x²) → 1,
// which loses precision as ν grows (relative error ~1e-10 at ν = 1e5, ~1e-6 at ν = 1e9,
// and Welch df reach the millions in large experiments). Above 1e4 degrees of freedom
// Hill's normalising transformation and the Cornish–Fisher expansion are accurate to
// better than 1e-10 and agree with gonum to 3e-11 at the switch.
const largeDF = 1e4

// tSF is P(T_df > x).
func tSF(x, df float64) float64 {
	if df < largeDF {
		return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(x)
	}
	z := hillDeviate(math.Abs(x), df)
	if x < 0 {
		return normCDF(z)
	}
	return normSF(z)
}

// hillDeviate maps |t| with df degrees of freedom to the standard normal deviate with the
// same tail probability (G. W. Hill, Algorithm 395, CACM 13(10), 1970; asymptotic branch).
func hillDeviate(x, df float64) float64 {
	a := df - 0.5
	b := 48 * a * a
	y := a * math.Log1p(x*x/df)
	return (((((-0.4*y-3.3)*y-24)*y-85.5)/(0.8*y*y+100+b)+y+3)/b + 1) * math.Sqrt(y)
}

// tUpper is t(1-p, df), the Student-t quantile with upper-tail probability p ≤ 0.5.
//
// gonum's StudentsT.Quantile inverts the incomplete beta function and takes 10–50 µs at the
// degrees of freedom of real experiments (and loses accuracy deep in the tail at large df),
// which alone would blow the latency budget of a large request. Above [largeDF] the
// Cornish–Fisher expansion is exact to double precision for practical p. Below it, the
// expansion is the starting point of Newton's method on gonum's StudentsT.Survival and Prob,
// which converges to full precision in two or three steps (~2 µs); should it not settle
// (conceivable only at a handful of degrees of freedom), gonum's quantile is used.
func tUpper(p, df float64) float64 {
	z := zUpper(p)
	x := cornishFisher(z, df)
	if df >= largeDF {
		return x
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	if df >= 3 && x > 0 {
		for range 8 {
			step := (t.Survival(x) - p) / t.Prob(x)
			x += step
			if math.Abs(step) <= 1e-13*math.Abs(x) {
				return x
			}
		}
	}
	return -t.Quantile(p)
}

// cornishFisher is the asymptotic expansion of the t quantile in powers of 1/df
// (Abramowitz & Stegun 26.7.5).
func cornishFisher(z, df float64) float64 {
	z2 := z * z
	g1 := (z2 + 1) * z / 4
	g2 := ((5*z2+16)*z2 + 3) * z / 96
	g3 := (((3*z2+19)*z2+17)*z2 - 15) * z / 384
	g4 := ((((79*z2+776)*z2+1482)*z2-1920)*z2 - 945) * z / 92160
	return z + (g1+(g2+(g3+g4/df)/df)/df)/df
}

// fixedHorizon is the Welch t-test and its confidence interval (STATS.md §5). logP is ln p,
// finite even where p underflows to 0 (see [logTSF]); the corrections need it there.
func fixedHorizon(e estimate, alpha float64, sided Sided) (ci Interval, p, logP float64) {
	t := e.d / e.se
	switch sided {
	case Greater:
		p = tSF(t, e.df)
		return Interval{Low: e.d - tUpper(alpha, e.df)*e.se, High: math.Inf(1)}, p, logTSF(p, t, e.df)
	case Less:
		p = tSF(-t, e.df)
		return Interval{Low: math.Inf(-1), High: e.d + tUpper(alpha, e.df)*e.se}, p, logTSF(p, -t, e.df)
	default:
		half := tUpper(alpha/2, e.df) * e.se
		tail := tSF(math.Abs(t), e.df)
		p = math.Min(1, 2*tail)
		return Interval{Low: e.d - half, High: e.d + half}, p, math.Min(0, math.Ln2+logTSF(tail, math.Abs(t), e.df))
	}
}

// logTSF is ln P(T_df > x) given p = tSF(x, df). When p underflowed to 0 (|t| beyond about 38
// in large experiments) it is the log normal tail at Hill's normalising deviate, which matches
// the t tail to 1e-10 in z at df ≥ 1000 and to 1e-5 at df 100.
func logTSF(p, x, df float64) float64 {
	if p > 0 {
		return math.Log(p)
	}
	return logNormSF(hillDeviate(x, df))
}

// sequentialRho is ρ of the asymptotic confidence sequence for tuning N* (STATS.md §5).
func sequentialRho(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return math.Sqrt((l + math.Log(l+1)) / tuning)
}

// sequentialFactor is sqrt(2(nρ²+1)·ln(sqrt(nρ²+1)/α)/(nρ)²): the half-width of the
// confidence sequence per unit of se·sqrt(n).
func sequentialFactor(n, alpha, rho float64) float64 {
	nr2 := n*rho*rho + 1
	return math.Sqrt(2 * nr2 * math.Log(math.Sqrt(nr2)/alpha) / ((n * rho) * (n * rho)))
}

// sequential is the always-valid interval and p-value (and ln p, finite where p underflows):
// peeking at any time keeps the error rate at α. Early on the p-value is exactly 1, by
// construction.
func sequential(e estimate, alpha, tuning float64) (ci Interval, p, logP float64) {
	rho := sequentialRho(alpha, tuning)
	half := e.se * math.Sqrt(e.n) * sequentialFactor(e.n, alpha, rho)
	nr2 := e.n*rho*rho + 1
	logP = 0.5*math.Log(nr2) - rho*rho*e.n*e.d*e.d/(2*e.se*e.se*nr2)
	logP = math.Min(0, logP)
	return Interval{Low: e.d - half, High: e.d + half}, math.Exp(logP), logP
}

// posterior is the Gaussian posterior of the effect.
type posterior struct {
	mean, sd float64
}

// bayes combines the likelihood N(d, se²) with the prior (STATS.md §6). A relative prior is
// rescaled to the absolute scale with the control mean.
func bayes(e estimate, diff Difference, prior *Prior) (posterior, *VariantError) {
	if prior == nil || !prior.Proper {
		return posterior{mean: e.d, sd: e.se}, nil
	}
	pm, pv := prior.Mean, prior.Variance
	if diff == Absolute {
		pm *= math.Abs(e.controlMean)
		pv *= e.controlMean * e.controlMean
		if pv == 0 {
			return posterior{}, variantErr(CodeZeroBaseline, "the control mean is 0, so the relative prior cannot be rescaled to an absolute difference")
		}
	}
	w := 1 / (e.se * e.se)
	precision := w + 1/pv
	return posterior{mean: (e.d*w + pm/pv) / precision, sd: math.Sqrt(1 / precision)}, nil
}

// chanceToWin is P(D > 0), or P(D < 0) for an inverse metric.
func (p posterior) chanceToWin(inverse bool) float64 {
	if inverse {
		return normCDF(-p.mean / p.sd)
	}
	return normCDF(p.mean / p.sd)
}

// risk is the expected loss of each decision: keeping the control loses E[max(D,0)],
// shipping the treatment loses E[max(-D,0)]; for an inverse metric the two swap.
func (p posterior) risk(inverse bool) Risk {
	z := p.mean / p.sd
	density := p.sd * normPDF(z)
	// Both expressions are non-negative; cancellation deep in a tail can leave -0 or a
	// rounding-level negative, hence the clamp.
	up := math.Max(0, p.mean*normCDF(z)+density)
	down := math.Max(0, -p.mean*normCDF(-z)+density)
	if inverse {
		return Risk{Control: down, Treatment: up}
	}
	return Risk{Control: up, Treatment: down}
}

// credible is the equal-tailed credible interval at level 1-α.
func (p posterior) credible(alpha float64) Interval {
	half := zUpper(alpha/2) * p.sd
	return Interval{Low: p.mean - half, High: p.mean + half}
}
