package engine

import (
	"math"
	"strings"
	"testing"
)

// Independent cross-checks of the engine against STATS.md, computed outside Go with
// Python 3.11 (scipy 1.17, numpy 2.4, statsmodels 0.15) from the formulas of the section
// each case names, and frozen here as literals. Raw-row cases (ratio, CUPED) were computed
// from simulated rows with numpy's two-pass moments (np.cov, ddof=1), not from the sums.
// Distributions: scipy.stats.t.isf / t.sf / t.ppf, scipy.stats.norm.cdf / pdf / isf.

// crossWant is one treatment row. Unbounded interval ends are ±Inf; p is NaN for the
// Bayesian engine, whose ctw and risks are checked instead.
type crossWant struct {
	effect, se, low, high, p        float64
	ctw, riskControl, riskTreatment float64
}

func TestCrossCheckAgainstIndependentComputation(t *testing.T) {
	tests := []struct {
		name   string
		metric Metric
		opt    Options
		want   crossWant
	}{
		{name: "welch absolute, unequal n and variances", // scipy.stats.ttest_ind_from_stats(equal_var=False): p 0.2599906614064848 (pooled would be 0.5029)
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 5, Sum: 12.5, SumSquares: 40.0}, {Key: "b", N: 40, Sum: 140.0, SumSquares: 900.0}}},
			opt:    Options{Difference: Absolute},
			want:   crossWant{effect: 1.0, se: 0.8368515476597463, low: -0.8676034869197007, high: 2.867603486919701, p: 0.2599906614064848}},
		{name: "relative, negative control mean", // d=(mB-mA)/mA, var=vB/(mA²nB)+vA·mB²/(mA⁴nA) (§3), CI d±t.isf(α/2,df)·se, p=2·t.sf(|d/se|,df)
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 200, Sum: -400.0, SumSquares: 2591.0}, {Key: "b", N: 180, Sum: -270.0, SumSquares: 3269.0}}},
			opt:    Options{},
			want:   crossWant{effect: -0.25, se: 0.1689684799665968, low: -0.5823910763457487, high: 0.08239107634574877, p: 0.13994301405403028}},
		{name: "relative, control mean near zero", // same formulas; mA=0.0005 makes the interval huge but finite
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 1000, Sum: 0.5, SumSquares: 3996.00025}, {Key: "b", N: 1000, Sum: 120.0, SumSquares: 4010.4}}},
			opt:    Options{},
			want:   crossWant{effect: 238.99999999999997, se: 30358.12905961103, low: -59297.90597192893, high: 59775.90597192893, p: 0.9937193566862681}},
		{name: "ratio rel, strong numerator/denominator covariance", // §2 delta method from raw rows with numpy (np.cov ddof=1); without the -2·cov term se would be 0.0555502
			metric: Metric{Kind: KindRatio, Variants: []VariantSums{{Key: "a", N: 300, Sum: 2355.470181437866, SumSquares: 22318.846147365413, DenominatorSum: 1177.0, DenominatorSumSquares: 5437.0, MainDenominatorSumProduct: 10932.94347332104},
				{Key: "b", N: 250, Sum: 2158.6968153328853, SumSquares: 22201.91896140838, DenominatorSum: 1020.0, DenominatorSumSquares: 4894.0, MainDenominatorSumProduct: 10363.067554268575}}},
			opt:  Options{},
			want: crossWant{effect: 0.05752424079485819, se: 0.01139845179495197, low: 0.035133690180637375, high: 0.079914791409079, p: 6.146367346388071e-07}},
		{name: "ratio abs, strong numerator/denominator covariance", // §2 delta method from raw rows with numpy (np.cov ddof=1); without the -2·cov term se would be 0.108396
			metric: Metric{Kind: KindRatio, Variants: []VariantSums{{Key: "a", N: 300, Sum: 2355.470181437866, SumSquares: 22318.846147365413, DenominatorSum: 1177.0, DenominatorSumSquares: 5437.0, MainDenominatorSumProduct: 10932.94347332104},
				{Key: "b", N: 250, Sum: 2158.6968153328853, SumSquares: 22201.91896140838, DenominatorSum: 1020.0, DenominatorSumSquares: 4894.0, MainDenominatorSumProduct: 10363.067554268575}}},
			opt:  Options{Difference: Absolute},
			want: crossWant{effect: 0.11512033466621929, se: 0.022172887792788133, low: 0.07156501896907083, high: 0.15867565036336775, p: 2.9483588802449283e-07}},
		{name: "cuped mean abs", // §4 from raw rows, pooled θ=0.9492262529 (np.cov ddof=1 over both arms); per-arm θ would be 0.5606/1.2426
			metric: Metric{CUPED: true, Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 60, Sum: 350.82851750643846, SumSquares: 2180.98659521183, CovariateSum: 572.4380323143182, CovariateSumSquares: 5674.912464654969, MainCovariateSumProduct: 3466.802499162052},
				{Key: "b", N: 50, Sum: 649.2229389076376, SumSquares: 8765.034211800546, CovariateSum: 484.88727090978773, CovariateSumSquares: 4883.096738720816, MainCovariateSumProduct: 6520.634767309538}}},
			opt:  Options{Difference: Absolute},
			want: crossWant{effect: 6.988182415345959, se: 0.2367034377893833, low: 6.5188950569096935, high: 7.457469773782224, p: 5.942395789918666e-53}},
		{name: "cuped mean rel", // §4 from raw rows, pooled θ=0.9492262529 (np.cov ddof=1 over both arms); per-arm θ would be 0.5606/1.2426
			metric: Metric{CUPED: true, Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 60, Sum: 350.82851750643846, SumSquares: 2180.98659521183, CovariateSum: 572.4380323143182, CovariateSumSquares: 5674.912464654969, MainCovariateSumProduct: 3466.802499162052},
				{Key: "b", N: 50, Sum: 649.2229389076376, SumSquares: 8765.034211800546, CovariateSum: 484.88727090978773, CovariateSumSquares: 4883.096738720816, MainCovariateSumProduct: 6520.634767309538}}},
			opt:  Options{},
			want: crossWant{effect: 1.1951449896403095, se: 0.05965240968132013, low: 1.0768783433036664, high: 1.3134116359769525, p: 7.845832799406458e-38}},
		{name: "cuped prop abs", // §4 from raw rows, pooled θ=0.6924394421 (np.cov ddof=1 over both arms); vY=m(1-m)
			metric: Metric{CUPED: true, Kind: KindProportion, Variants: []VariantSums{{Key: "a", N: 400, Sum: 121.0, SumSquares: 121.0, CovariateSum: 110.0, CovariateSumSquares: 110.0, MainCovariateSumProduct: 89.0},
				{Key: "b", N: 380, Sum: 144.0, SumSquares: 144.0, CovariateSum: 134.0, CovariateSumSquares: 134.0, MainCovariateSumProduct: 110.0}}},
			opt:  Options{Difference: Absolute},
			want: crossWant{effect: 0.022692201202786755, se: 0.024944015246411898, low: -0.02627434359971978, high: 0.07165874600529329, p: 0.3632528344932835}},
		{name: "cuped prop rel", // §4 from raw rows, pooled θ=0.6924394421 (np.cov ddof=1 over both arms); vY=m(1-m)
			metric: Metric{CUPED: true, Kind: KindProportion, Variants: []VariantSums{{Key: "a", N: 400, Sum: 121.0, SumSquares: 121.0, CovariateSum: 110.0, CovariateSumSquares: 110.0, MainCovariateSumProduct: 89.0},
				{Key: "b", N: 380, Sum: 144.0, SumSquares: 144.0, CovariateSum: 134.0, CovariateSumSquares: 134.0, MainCovariateSumProduct: 110.0}}},
			opt:  Options{},
			want: crossWant{effect: 0.07501554116623721, se: 0.09351949801455871, low: -0.10856864302385741, high: 0.2585997253563318, p: 0.42272129241160616}},
		{name: "\u03b1 0.1 greater", // one-sided uses t.ppf(1-α,df), two-sided t.isf(α/2,df); scipy ttest_ind_from_stats(alternative='greater') p 0.2212954170367693
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 50, Sum: 100.0, SumSquares: 641.0}, {Key: "b", N: 45, Sum: 108.0, SumSquares: 435.2}}},
			opt:    Options{Difference: Absolute, Alpha: 0.1, Sided: Greater},
			want:   crossWant{effect: 0.3999999999999999, se: 0.5185449728701349, low: -0.26968745068149536, high: math.Inf(1), p: 0.2212954170367693}},
		{name: "\u03b1 0.1 less", // one-sided uses t.ppf(1-α,df), two-sided t.isf(α/2,df); scipy ttest_ind_from_stats(alternative='greater') p 0.2212954170367693
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 50, Sum: 100.0, SumSquares: 641.0}, {Key: "b", N: 45, Sum: 108.0, SumSquares: 435.2}}},
			opt:    Options{Difference: Absolute, Alpha: 0.1, Sided: Less},
			want:   crossWant{effect: 0.3999999999999999, se: 0.5185449728701349, low: math.Inf(-1), high: 1.0696874506814953, p: 0.7787045829632306}},
		{name: "\u03b1 0.1 two", // one-sided uses t.ppf(1-α,df), two-sided t.isf(α/2,df); scipy ttest_ind_from_stats(alternative='greater') p 0.2212954170367693
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 50, Sum: 100.0, SumSquares: 641.0}, {Key: "b", N: 45, Sum: 108.0, SumSquares: 435.2}}},
			opt:    Options{Difference: Absolute, Alpha: 0.1, Sided: TwoSided},
			want:   crossWant{effect: 0.3999999999999999, se: 0.5185449728701349, low: -0.46221962501959957, high: 1.2622196250195994, p: 0.4425908340735386}},
		{name: "sequential n 2+2 tuning 5000 abs", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 2, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 2, Sum: 7.0, SumSquares: 25.0}}},
			opt:    Options{Difference: Absolute, Sequential: &Sequential{Tuning: 5000}},
			want:   crossWant{effect: 2.0, se: 0.7071067811865476, low: -19.802434635530247, high: 23.802434635530247, p: 0.9781707340143482}},
		{name: "sequential n 2+2 tuning 5000 rel", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 2, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 2, Sum: 7.0, SumSquares: 25.0}}},
			opt:    Options{Sequential: &Sequential{Tuning: 5000}},
			want:   crossWant{effect: 1.3333333333333333, se: 0.8461970117626565, low: -24.757711935357307, high: 27.42437860202397, p: 0.9953436022372828}},
		{name: "sequential n 3+3 tuning 100 abs", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 3, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 3, Sum: 30.0, SumSquares: 302.0}}},
			opt:    Options{Difference: Absolute, Sequential: &Sequential{Tuning: 100}},
			want:   crossWant{effect: 9.0, se: 0.816496580927726, low: 5.368523445760866, high: 12.631476554239134, p: 3.750195119022647e-09}},
		{name: "sequential n 3+3 tuning 100 rel", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 3, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 3, Sum: 30.0, SumSquares: 302.0}}},
			opt:    Options{Sequential: &Sequential{Tuning: 100}},
			want:   crossWant{effect: 9.0, se: 5.802298395176404, low: -16.806489671813576, high: 34.80648967181358, p: 0.8242198071308742}},
		{name: "sequential n 2+2 tuning 1 abs", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 2, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 2, Sum: 7.0, SumSquares: 25.0}}},
			opt:    Options{Difference: Absolute, Sequential: &Sequential{Tuning: 1}},
			want:   crossWant{effect: 2.0, se: 0.7071067811865476, low: -0.2112036165461415, high: 4.2112036165461415, p: 0.11842526298127905}},
		{name: "sequential n 2+2 tuning 1 rel", // §5 confidence sequence: ρ, half-width and p as written there
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 2, Sum: 3.0, SumSquares: 5.0}, {Key: "b", N: 2, Sum: 7.0, SumSquares: 25.0}}},
			opt:    Options{Sequential: &Sequential{Tuning: 1}},
			want:   crossWant{effect: 1.3333333333333333, se: 0.8461970117626565, low: -1.3128213104961823, high: 3.979487977162849, p: 1.0}},
		{name: "Welch df \u2248 1 (two units vs 1000)", // t.isf(0.025, 1.00012...) ≈ 12.7
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 2, Sum: 10.0, SumSquares: 82.0}, {Key: "b", N: 1000, Sum: 5500.0, SumSquares: 31249.0}}},
			opt:    Options{Difference: Absolute},
			want:   crossWant{effect: 0.5, se: 4.000124998046936, low: -50.31139754597552, high: 51.31139754597552, p: 0.9208336636179513}},
		{name: "Welch df \u2248 2.4", // t.isf(0.025, df)
			metric: Metric{Kind: KindMean, Variants: []VariantSums{{Key: "a", N: 3, Sum: 10.0, SumSquares: 60.0}, {Key: "b", N: 40, Sum: 400.0, SumSquares: 4078.0}}},
			opt:    Options{Difference: Absolute},
			want:   crossWant{effect: 6.666666666666666, se: 2.1200104821543793, low: -2.264352305292304, high: 15.597685638625636, p: 0.08550548869487977}},
		{name: "bayesian zero conversions in control, absolute flat", // §6 flat: N(d,se²); ctw=norm.cdf(m/s), risks m·Φ(m/s)+s·φ(m/s), -m·Φ(-m/s)+s·φ(m/s)
			metric: Metric{Kind: KindProportion, Inverse: false, Variants: []VariantSums{{Key: "a", N: 50, Sum: 0}, {Key: "b", N: 50, Sum: 3}}},
			opt:    Options{Engine: Bayesian, Difference: Absolute},
			want:   crossWant{effect: 0.06, se: 0.03358571124749333, low: -0.005826784440248756, high: 0.12582678444024875, p: math.NaN(), ctw: 0.9629887285373094, riskControl: 0.06049602260796878, riskTreatment: 0.0004960226079687808}},
		{name: "bayesian proper prior rel, negative control mean, \u03b1 0.1", // prior N(0.02,0.01) relative; absolute rescaled mean·|mA|, var·mA² (§6); precision-weighted posterior
			metric: Metric{Kind: KindMean, Inverse: false, Variants: []VariantSums{{Key: "a", N: 200, Sum: -400.0, SumSquares: 2591.0}, {Key: "b", N: 180, Sum: -342.0, SumSquares: 3513.8}}},
			opt:    Options{Engine: Bayesian, Alpha: 0.1, Prior: &Prior{Mean: 0.02, Variance: 0.01, Proper: true}},
			want:   crossWant{effect: 0.0034809613162789465, se: 0.08740787911222302, low: -0.14029220566559697, high: 0.14725412829815487, p: math.NaN(), ctw: 0.5158834154489179, riskControl: 0.03663882770707131, riskTreatment: 0.033157866390792365}},
		{name: "bayesian proper prior rel inverse, negative control mean, \u03b1 0.1", // prior N(0.02,0.01) relative; absolute rescaled mean·|mA|, var·mA² (§6); precision-weighted posterior
			metric: Metric{Kind: KindMean, Inverse: true, Variants: []VariantSums{{Key: "a", N: 200, Sum: -400.0, SumSquares: 2591.0}, {Key: "b", N: 180, Sum: -342.0, SumSquares: 3513.8}}},
			opt:    Options{Engine: Bayesian, Alpha: 0.1, Prior: &Prior{Mean: 0.02, Variance: 0.01, Proper: true}},
			want:   crossWant{effect: 0.0034809613162789465, se: 0.08740787911222302, low: -0.14029220566559697, high: 0.14725412829815487, p: math.NaN(), ctw: 0.4841165845510821, riskControl: 0.033157866390792365, riskTreatment: 0.03663882770707131}},
		{name: "bayesian proper prior abs, negative control mean, \u03b1 0.1", // prior N(0.02,0.01) relative; absolute rescaled mean·|mA|, var·mA² (§6); precision-weighted posterior
			metric: Metric{Kind: KindMean, Inverse: false, Variants: []VariantSums{{Key: "a", N: 200, Sum: -400.0, SumSquares: 2591.0}, {Key: "b", N: 180, Sum: -342.0, SumSquares: 3513.8}}},
			opt:    Options{Engine: Bayesian, Difference: Absolute, Alpha: 0.1, Prior: &Prior{Mean: 0.02, Variance: 0.01, Proper: true}},
			want:   crossWant{effect: 0.053801916932907375, se: 0.17549564679708848, low: -0.23486273421547826, high: 0.342466568081293, p: math.NaN(), ctw: 0.6204151239229707, riskControl: 0.10017816450588399, riskTreatment: 0.04637624757297662}},
		{name: "bayesian proper prior abs inverse, negative control mean, \u03b1 0.1", // prior N(0.02,0.01) relative; absolute rescaled mean·|mA|, var·mA² (§6); precision-weighted posterior
			metric: Metric{Kind: KindMean, Inverse: true, Variants: []VariantSums{{Key: "a", N: 200, Sum: -400.0, SumSquares: 2591.0}, {Key: "b", N: 180, Sum: -342.0, SumSquares: 3513.8}}},
			opt:    Options{Engine: Bayesian, Difference: Absolute, Alpha: 0.1, Prior: &Prior{Mean: 0.02, Variance: 0.01, Proper: true}},
			want:   crossWant{effect: 0.053801916932907375, se: 0.17549564679708848, low: -0.23486273421547826, high: 0.342466568081293, p: math.NaN(), ctw: 0.3795848760770293, riskControl: 0.04637624757297662, riskTreatment: 0.10017816450588399}},
	}
	const tol = 1e-8
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.metric.Key = "m"
			r := treatment(t, analyzeOne(t, tc.metric, tc.opt))
			check := func(what string, got, want float64) {
				t.Helper()
				if math.IsInf(want, 0) && got == want {
					return
				}
				if !close(got, want, tol) && math.Abs(got-want) > 1e-12 {
					t.Errorf("%s = %.15g, want %.15g", what, got, want)
				}
			}
			check("effect", *r.Effect, tc.want.effect)
			check("se", *r.SE, tc.want.se)
			check("ci low", r.CI.Low, tc.want.low)
			check("ci high", r.CI.High, tc.want.high)
			if math.IsNaN(tc.want.p) {
				if r.PValue != nil || r.ChanceToWin == nil {
					t.Fatalf("bayesian row must carry chance_to_win and no p-value: %+v", r)
				}
				check("chance_to_win", *r.ChanceToWin, tc.want.ctw)
				check("risk.control", r.Risk.Control, tc.want.riskControl)
				check("risk.treatment", r.Risk.Treatment, tc.want.riskTreatment)
				return
			}
			check("p", *r.PValue, tc.want.p)
		})
	}
}

// The correction family is every computed (metric, treatment) p-value of the request:
// here three metrics, one with two treatments, and a treatment that cannot be computed
// (one unit), which has no p-value and is left out. Expected p-values are the §3/§5 formulas
// in scipy; adjusted ones statsmodels.stats.multitest.multipletests(p, method="holm" |
// "fdr_bh"); adjusted intervals d ± norm.isf(α/2)·|d / norm.isf(p_adj/2)| (§8), unbounded
// when p_adj = 1.
func TestCrossCheckCorrectionFamily(t *testing.T) {
	broken := VariantSums{Key: "broken", N: 1, Sum: 10, SumSquares: 100}
	metrics := []Metric{
		{Key: "x", Kind: KindProportion, Variants: []VariantSums{proportion("a", 5000, 500), proportion("b", 5000, 575), proportion("c", 5000, 460)}},
		{Key: "y", Kind: KindMean, Variants: []VariantSums{meanSums("a", 800, 10, 16), broken, meanSums("b", 820, 10.6, 18)}},
		{Key: "z", Kind: KindMean, Variants: []VariantSums{meanSums("a", 300, 5, 4), meanSums("b", 310, 5.1, 4)}},
	}
	tests := []struct {
		method     Correction
		sequential *Sequential
		p, adj     []float64
		ci         []Interval
	}{
		{Holm, nil, []float64{0.024014979207511646, 0.15695663331868812, 0.004472878901376005, 0.5413423360165388}, []float64{0.07204493762253494, 0.31391326663737623, 0.01789151560550402, 0.5413423360165388}, []Interval{{-0.013436199127662696, 0.3134361991276627}, {-0.23570024838599585, 0.0757002483859957}, {0.010335722629045953, 0.10966427737095397}, {-0.0441785890704671, 0.08417858907046696}}},
		{BenjaminiHochberg, nil, []float64{0.024014979207511646, 0.15695663331868812, 0.004472878901376005, 0.5413423360165388}, []float64{0.04802995841502329, 0.20927551109158415, 0.01789151560550402, 0.5413423360165388}, []Interval{{0.001300332981004404, 0.2986996670189956}, {-0.20488221055854947, 0.044882210558549324}, {0.010335722629045953, 0.10966427737095397}, {-0.0441785890704671, 0.08417858907046696}}},
		{Holm, &Sequential{Tuning: 2000}, []float64{0.5314992434073595, 1.0, 0.08177254601242413, 1.0}, []float64{1.0, 1.0, 0.32709018404969653, 1.0}, []Interval{{math.Inf(-1), math.Inf(1)}, {math.Inf(-1), math.Inf(1)}, {-0.05999880343470603, 0.17999880343470595}, {math.Inf(-1), math.Inf(1)}}},
		{BenjaminiHochberg, &Sequential{Tuning: 2000}, []float64{0.5314992434073595, 1.0, 0.08177254601242413, 1.0}, []float64{1.0, 1.0, 0.32709018404969653, 1.0}, []Interval{{math.Inf(-1), math.Inf(1)}, {math.Inf(-1), math.Inf(1)}, {-0.05999880343470603, 0.17999880343470595}, {math.Inf(-1), math.Inf(1)}}},
	}
	same := func(got, want float64) bool {
		return got == want || close(got, want, 1e-8)
	}
	for _, tc := range tests {
		res, err := Analyze(Request{Options: Options{Sequential: tc.sequential}, Correction: tc.method, Metrics: metrics})
		if err != nil {
			t.Fatal(err)
		}
		var rows []VariantResult
		for _, m := range res.Metrics {
			for _, v := range m.Variants[1:] {
				if v.Error != nil {
					if v.PValueAdjusted != nil {
						t.Errorf("%s: a failed comparison has no adjusted p-value", tc.method)
					}
					continue
				}
				rows = append(rows, v)
			}
		}
		if len(rows) != len(tc.p) {
			t.Fatalf("%s: %d computed comparisons, want %d", tc.method, len(rows), len(tc.p))
		}
		for k, r := range rows {
			if !same(*r.PValue, tc.p[k]) || !same(*r.PValueAdjusted, tc.adj[k]) {
				t.Errorf("%s sequential=%v, comparison %d: p %.15g adjusted %.15g, want %.15g and %.15g",
					tc.method, tc.sequential != nil, k, *r.PValue, *r.PValueAdjusted, tc.p[k], tc.adj[k])
			}
			if !same(r.CIAdjusted.Low, tc.ci[k].Low) || !same(r.CIAdjusted.High, tc.ci[k].High) {
				t.Errorf("%s sequential=%v, comparison %d: adjusted interval %+v, want %+v",
					tc.method, tc.sequential != nil, k, *r.CIAdjusted, tc.ci[k])
			}
		}
	}
}

// Ties and a p-value that the step-up/step-down must carry past its neighbours;
// statsmodels.stats.multitest.multipletests(p, method="holm" | "fdr_bh").
func TestCrossCheckCorrectionsWithTies(t *testing.T) {
	p := []float64{0.01, 0.02, 0.02, 0.04, 0.5, 0.0001, 0.02}
	holm := []float64{0.06, 0.1, 0.1, 0.1, 0.5, 0.0007, 0.1}
	bh := []float64{0.028, 0.028, 0.028, 0.04666666666666667, 0.5, 0.0007000000000000001, 0.028}
	gotHolm, gotBH := HolmAdjust(p), BHAdjust(p)
	logP := make([]float64, len(p))
	for i := range p {
		logP[i] = math.Log(p[i])
	}
	// The same corrections on ln p, which Analyze uses for p-values below float64's range.
	logHolm, logBH := holmLog(logP), bhLog(logP)
	for i := range p {
		if !close(gotHolm[i], holm[i], 1e-12) || !close(gotBH[i], bh[i], 1e-12) {
			t.Errorf("p[%d] = %v: holm %v bh %v, want %v and %v", i, p[i], gotHolm[i], gotBH[i], holm[i], bh[i])
		}
		if !close(math.Exp(logHolm[i]), holm[i], 1e-12) || !close(math.Exp(logBH[i]), bh[i], 1e-12) {
			t.Errorf("p[%d] = %v: holm on logs %v, bh on logs %v, want %v and %v", i, p[i], math.Exp(logHolm[i]), math.Exp(logBH[i]), holm[i], bh[i])
		}
	}
}

// More than two arms, unequal weights, zero-weight arms (left out, with or without units)
// and an empty arm; scipy.stats.chisquare(counts[w>0], w[w>0]/Σw·Σcounts[w>0]).pvalue.
func TestCrossCheckSRM(t *testing.T) {
	tests := []struct {
		counts  []int64
		weights []float64
		want    float64
	}{
		{[]int64{1000, 2100, 950, 0}, []float64{0.25, 0.5, 0.25, 0}, 0.03353848383147017},
		{[]int64{1000, 2100, 950, 40}, []float64{0.25, 0.5, 0.25, 0}, 0.03353848383147017},
		{[]int64{3000, 1000, 1100, 920}, []float64{3, 1, 1, 1}, 0.0009939545904934421},
		{[]int64{100, 130, 0, 95}, []float64{0.2, 0.3, 0, 0.5}, 2.928914422028831e-13},
		{[]int64{5, 0}, []float64{1, 1}, 0.025347318677468325},
	}
	for _, tc := range tests {
		if got := SRMPValue(tc.counts, tc.weights); !close(got, tc.want, 1e-9) {
			t.Errorf("counts %v weights %v: p %.15g, want %.15g", tc.counts, tc.weights, got, tc.want)
		}
	}
	// The third case is just below the alert threshold, the first far above it.
	if !(SRMPValue([]int64{3000, 1000, 1100, 920}, []float64{3, 1, 1, 1}) < SRMAlertThreshold) {
		t.Error("a p-value below 0.001 must raise the SRM alert")
	}
}

// §9 with scipy: power = norm.sf(z*-e/se) + norm.cdf(-z*-e/se); the MDE at 90% power by
// scipy.optimize.brentq on that formula (xtol 1e-14). Covers a negative baseline mean,
// four arms, α 0.1 and 0.01, and the sequential widening.
func TestCrossCheckPower(t *testing.T) {
	tests := []struct {
		name       string
		req        PowerRequest
		effect     float64
		power, mde float64
	}{
		{"negative mean, 4 arms, α 0.1", PowerRequest{Mean: -3, Variance: 20, Users: 60000, Variants: 4, Alpha: 0.1, TargetPower: 0.9},
			0.04, 0.736655434658579, 0.05169104098403717},
		{"proportion-like, α 0.01, sequential 2000", PowerRequest{Mean: 0.05, Variance: 0.0475, Users: 100000, Variants: 2, Alpha: 0.01, TargetPower: 0.9, Sequential: &Sequential{Tuning: 2000}},
			0.1, 0.37254182929982693, 0.1781561849161181},
		{"reference 14, sequential, 90%", PowerRequest{Mean: 10, Variance: 3909.9997749994377, Users: 400000, Variants: 3, Alpha: 0.05, TargetPower: 0.9, Sequential: &Sequential{Tuning: 5000}},
			0.05, 0.20595674320506613, 0.14994924610340157},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Effect = &tc.effect
			res, err := Power(req)
			if err != nil {
				t.Fatal(err)
			}
			if !close(*res.Power, tc.power, 1e-9) || res.MDE == nil || !close(*res.MDE, tc.mde, 1e-9) {
				t.Errorf("power %v mde %v, want %v and %v", *res.Power, res.MDE, tc.power, tc.mde)
			}
		})
	}
}

// The Student-t tail and quantile that every p-value and interval rests on, at small
// (Welch) and very large degrees of freedom, where the engine switches to asymptotic forms.
// Tails are 0.5·I_{df/(df+x²)}(df/2, 1/2) in mpmath at 50 digits (scipy.stats.t.sf agrees
// to 1e-12); quantiles are scipy.stats.t.isf(p, df).
func TestCrossCheckStudentT(t *testing.T) {
	tails := []struct{ df, x, want float64 }{
		{1.5, 0.5, 0.34028355533497},
		{1.5, 1.96, 0.11482994867335712},
		{1.5, 4, 0.044916263477164126},
		{1.5, 8, 0.016459175470453412},
		{1.5, 20, 0.004207494331110465},
		{2.2, 0.5, 0.3313249611287415},
		{2.2, 1.96, 0.08867428111002823},
		{2.2, 4, 0.024365313363881987},
		{2.2, 8, 0.005745305948352889},
		{2.2, 20, 0.0007837288944276805},
		{3.5, 0.5, 0.3234252196612755},
		{3.5, 1.96, 0.06581128650636289},
		{3.5, 4, 0.010460308182701862},
		{3.5, 8, 0.0011386632223602399},
		{3.5, 20, 4.912908243274008e-05},
		{30, 0.5, 0.31036150244256366},
		{30, 1.96, 0.02967115644802524},
		{30, 4, 0.00019092281804187843},
		{30, 8, 3.1329112378503795e-09},
		{30, 20, 3.3745418328856433e-19},
		{10000.0, 0.5, 0.3085430396616167},
		{10000.0, 1.96, 0.025011760115916524},
		{10000.0, 4, 3.1899334411569814e-05},
		{10000.0, 8, 6.910604364532691e-16},
		{10000.0, 20, 1.3823262932703867e-87},
		{30000.0, 0.5, 0.30853937239010865},
		{30000.0, 1.96, 0.02500251668600846},
		{30000.0, 4, 3.1747143498329775e-05},
		{30000.0, 8, 6.443470672712701e-16},
		{30000.0, 20, 1.0392985407212544e-88},
		{250000.0, 0.5, 0.30853775876668},
		{250000.0, 1.96, 0.024998449726516395},
		{250000.0, 4, 3.1680343217555845e-05},
		{250000.0, 8, 6.2472834677961e-16},
		{250000.0, 20, 3.2334375346575905e-89},
		{1000000.0, 0.5, 0.30853759373618567},
		{1000000.0, 1.96, 0.024998033792634895},
		{1000000.0, 4, 3.167351700502405e-05},
		{1000000.0, 8, 6.22753171660126e-16},
		{1000000.0, 20, 2.866543523695186e-89},
		{100000000.0, 0.5, 0.30853753927608896},
		{100000000.0, 1.96, 0.024997896534664055},
		{100000000.0, 4, 3.167126458426411e-05},
		{100000000.0, 8, 6.22102625411477e-16},
		{100000000.0, 20, 2.7547312883288967e-89},
	}
	for _, tc := range tails {
		if got := tSF(tc.x, tc.df); !close(got, tc.want, 1e-9) {
			t.Errorf("P(T_%v > %v) = %.15g, want %.15g", tc.df, tc.x, got, tc.want)
		}
	}
	quantiles := []struct{ df, p, want float64 }{
		{1.5, 0.025, 6.016663104427933},
		{1.5, 0.05, 3.7051808200967518},
		{1.5, 1e-06, 5219.4693247069445},
		{1.5, 1e-12, 52194694.27344636},
		{2.2, 0.025, 3.948720749712724},
		{2.2, 0.05, 2.7467700534596933},
		{2.2, 1e-06, 414.4436220475254},
		{2.2, 1e-12, 221177.1751051791},
		{3.5, 0.025, 2.9400886379827296},
		{3.5, 0.05, 2.222433493649601},
		{3.5, 1e-06, 61.04512120772062},
		{3.5, 1e-12, 3163.0306837980147},
		{30, 0.025, 2.042272456301238},
		{30, 0.05, 1.6972608865939574},
		{30, 1e-06, 5.871117120418882},
		{30, 1e-12, 11.397217523311413},
		{10000.0, 0.025, 1.9602012398906263},
		{10000.0, 0.05, 1.6450060180692432},
		{10000.0, 1e-06, 4.75622968505678},
		{10000.0, 1e-12, 7.0433716020557755},
		{30000.0, 0.025, 1.9600430633839347},
		{30000.0, 0.05, 1.644904420834432},
		{30000.0, 1e-06, 4.754359113082051},
		{30000.0, 1e-12, 7.0374442922657465},
		{1000000.0, 0.025, 1.9599663568141072},
		{1000000.0, 0.05, 1.6448551507220406},
		{1000000.0, 1e-06, 4.75345234827968},
		{1000000.0, 1e-12, 7.034572608411255},
	}
	for _, tc := range quantiles {
		if got := tUpper(tc.p, tc.df); !close(got, tc.want, 1e-9) {
			t.Errorf("t(1-%v, %v) = %.15g, want %.15g", tc.p, tc.df, got, tc.want)
		}
	}
}

// A comparison so significant that its p-value underflows float64 (|t| ≳ 38, routine for a
// large lift on a million users) must still get a real adjusted interval: the §8 formula
// d ± z(1-α/2)·|d / z(1-p_adj/2)| with the true, tiny p_adj. Before, p_adj was 0 and the
// adjusted interval collapsed to the point [d, d]. Expected values in mpmath at 60 digits:
// the t tail by quadrature of the density (two partitions agreeing to 1e-11), sequential
// ln p from §5, the normal quantile by findroot on ln(erfc(z/√2)/2); Holm and BH over the
// metric's two treatments.
func TestCrossCheckAdjustedIntervalWhenPUnderflows(t *testing.T) {
	big := Metric{Key: "m", Kind: KindProportion, Variants: []VariantSums{
		proportion("a", 1000000, 100000), proportion("b", 1000000, 120000), proportion("c", 1000000, 100500)}}
	mean := Metric{Key: "m", Kind: KindMean, Variants: []VariantSums{
		meanSums("a", 3000, 10, 1), meanSums("b", 3000, 11.6, 1), meanSums("c", 3000, 10.05, 1)}}
	tests := []struct {
		name string
		req  Request
		want Interval
	}{
		// t = 41.24, df ≈ 2e6 (Hill's transformation), ln p = -853.9218470061896.
		{"holm, relative, fixed horizon", Request{Correction: Holm, Metrics: []Metric{big}},
			Interval{0.19048876893236245, 0.20951123106763755}},
		// ln p = -846.0407471607329 straight from the §5 formula.
		{"holm, relative, sequential", Request{Options: Options{Sequential: &Sequential{Tuning: 5000}}, Correction: Holm, Metrics: []Metric{big}},
			Interval{0.19044435511704676, 0.20955564488295324}},
		// t = 61.97 at df 5998, below the Hill switch: gonum's t tail underflows too.
		{"bh, absolute, fixed horizon", Request{Options: Options{Difference: Absolute}, Correction: BenjaminiHochberg, Metrics: []Metric{mean}},
			Interval{1.5424219157402757, 1.6575780842597243}},
		{"holm, absolute, greater", Request{Options: Options{Difference: Absolute, Sided: Greater}, Correction: Holm, Metrics: []Metric{mean}},
			Interval{1.5516789484528462, math.Inf(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Analyze(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			r := res.Metrics[0].Variants[1]
			if r.Error != nil || *r.PValue != 0 || *r.PValueAdjusted != 0 {
				t.Fatalf("the case must underflow the p-value: %+v", r)
			}
			got := *r.CIAdjusted
			if !close(got.Low, tc.want.Low, 1e-9) || !(got.High == tc.want.High || close(got.High, tc.want.High, 1e-9)) {
				t.Errorf("adjusted interval %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A relative effect whose treatment has no conversions at all: the §3 delta-method variance
// vB/(mA²nB) + vA·mB²/(mA⁴nA) is exactly 0 (vB = mB = 0), so the row is zero_variance, but
// the control does vary: the message must not claim that both arms are constant, and must
// point to the absolute difference, which is computable.
func TestRelativeEffectWithEmptyTreatmentExplainsItself(t *testing.T) {
	m := Metric{Key: "m", Kind: KindProportion, Variants: []VariantSums{proportion("a", 100, 10), proportion("b", 100, 0)}}
	for _, opt := range []Options{{}, {Engine: Bayesian}} {
		r := analyzeOne(t, m, opt).Variants[1]
		if r.Error == nil || r.Error.Code != CodeZeroVariance || !strings.Contains(r.Error.Message, "treatment mean is 0") || !strings.Contains(r.Error.Message, "absolute") {
			t.Errorf("engine %q: error %+v", opt.Engine, r.Error)
		}
	}
	opt := Options{Difference: Absolute}
	if r := analyzeOne(t, m, opt).Variants[1]; r.Error != nil || !close(*r.Effect, -0.1, 1e-12) || !close(*r.SE, 0.03, 1e-12) {
		t.Errorf("the absolute difference is computable (-0.1, se sqrt(0.09/100) = 0.03): %+v", r)
	}
}

// z(1-q) from ln q on both sides of the switch to the asymptotic tail (ln q = -700) and far
// below float64's range; mpmath findroot on ln(erfc(z/√2)/2) = ln q at 40 digits.
func TestCrossCheckNormalQuantileFromLog(t *testing.T) {
	tests := []struct{ logQ, want float64 }{
		{-690, 37.026172050294315}, {-699.9, 37.292400141264612}, {-700.1, 37.297758931809877},
		{-745, 38.4819489643302}, {-2000, 63.165418608783609}, {-1e5, 447.19789367852505},
	}
	for _, tc := range tests {
		if got := zUpperLog(tc.logQ); !close(got, tc.want, 1e-13) {
			t.Errorf("ln q = %v: z = %.17g, want %.17g", tc.logQ, got, tc.want)
		}
	}
}
