package metricsql

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// VariantSums are one variation's sufficient statistics for a metric: n units and the sums of
// the per-unit value (main), its square, the covariate's and the cross-products; for ratios
// the denominator's too (STATS.md §1).
type VariantSums struct {
	Variation             string
	N                     int64
	Sum, SumSquares       float64
	DenSum, DenSumSquares float64
	MainDenProduct        float64
	CovSum, CovSumSquares float64
	MainCovProduct        float64
}

// Snapshot says which data a computation reads.
type Snapshot struct {
	// FoldedUpTo: days before it come from the rollup; events from it on are read raw.
	FoldedUpTo time.Time
	// Folds are the recorded folds of the days before FoldedUpTo; only their rows are read.
	Folds Folds
	// Now bounds the raw read and the units (first exposure before Now).
	Now time.Time
	// Passes splits Sums into that many passes over disjoint slices of the contexts (by hash),
	// whose sums add up: memory per query falls with the passes, the data is scanned once per
	// pass. 0 or 1: one pass. PassesFor picks it from the number of units.
	Passes int
}

// UnitsPerPass is how many units one pass of Sums aggregates at most (PassesFor): about
// 1.5 GiB of ClickHouse memory for a CUPED metric on 18.16.
var UnitsPerPass int64 = 1_000_000

// PassesFor is the number of Sums passes for an experiment with this many units.
func PassesFor(units int64) int {
	return int((units + UnitsPerPass - 1) / UnitsPerPass)
}

// partRowsSQL is a metric part's per-context rows, tagged src: the rollup's folded days plus
// raw events since FoldedUpTo (for CUPED the raw part covers the cohorts not folded yet). A
// context may have several rows; perContextSQL adds them up.
func partRowsSQL(x Experiment, m *Metric, part int, src int, s Snapshot, a *args) (string, error) {
	if x.rollout() {
		s.FoldedUpTo, s.Folds = x.Start, nil // never folded: every event since the start is read raw
	}
	tag := fmt.Sprintf("toUInt8(%d) AS src, context_kind, context_key, '' AS variation", src)
	var rolled string
	if ids := s.Folds[FoldKey{m.Key, m.Version, part}]; len(ids) > 0 {
		// Placeholders are bound in text order, so the fold ids are added after the columns before them.
		rolled = `SELECT ` + tag + `, events, value_sum FROM experiment_metric_rollups
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + ` AND metric_key = ` + a.add(m.Key) +
			` AND metric_version = toUInt64(` + a.add(m.Version) + `) AND part = toUInt8(` + a.add(part) + `) AND day < toDate(toDateTime(` + a.add(s.FoldedUpTo.Unix()) + `))
		AND fold_id IN (`
		for i, id := range ids {
			if i > 0 {
				rolled += ", "
			}
			rolled += a.add(uint64(id))
		}
		rolled += `)` + x.slice() + `
		UNION ALL `
	}
	var raw string
	var err error
	if part == PartMetric {
		raw, err = rawSQL(x, m, part, s.FoldedUpTo, s.Now, 0, 0, a)
	} else {
		raw, err = rawSQL(x, m, part, s.FoldedUpTo.Add(-m.CUPEDPreperiod), s.Now, s.FoldedUpTo.UnixMilli(), 0, a)
	}
	if err != nil {
		return "", err
	}
	return rolled + `SELECT ` + tag + `, events, value_sum FROM (` + raw + `)`, nil
}

// unitValue is the per-context value of a metric from its event count and value sum.
func unitValue(kind, events, sum string) string {
	switch kind {
	case Proportion:
		return "toFloat64(if(" + events + " > 0, 1, 0))"
	case Count:
		return "toFloat64(" + events + ")"
	case Mean:
		return "if(" + events + " > 0, " + sum + " / " + events + ", 0)"
	}
	return "toFloat64(" + sum + ")"
}

// perContextSQL selects every unit with one variation and its value columns: v (main), d
// (ratio denominator) and c (covariate), each unwinsorized; has (the unit counts toward n:
// always, except mean metrics count units with an event).
//
// It uses no join: the units (src 0) and the per-context rows of the metric's parts (src 1,
// and 2 for a ratio's denominator or the CUPED covariate) are combined in one GROUP BY per
// context. With millions of units a hash join keeps a whole side in memory; an aggregation
// holds a few numbers per context and can spill to disk (max_bytes_before_external_group_by).
func perContextSQL(x Experiment, m *Metric, s Snapshot, cuped bool, a *args) (string, error) {
	units := `SELECT toUInt8(0) AS src, context_kind, context_key, variation, toUInt64(0) AS events, toFloat64(0) AS value_sum FROM `
	if x.units != 0 {
		units += `experiment_unit_snapshots WHERE snapshot_id = ` + a.add(uint64(x.units)) + ` AND variation != ''` + x.unitSlice()
	} else {
		units += `(` + unitsSQL(x, a) + `) WHERE nvar = 1 AND first_ms < ` + a.add(uint64(s.Now.UnixMilli()))
	}
	main, den := m, (*Metric)(nil)
	if m.Kind == Ratio {
		main, den = m.Numerator, m.Denominator
	}
	first, err := partRowsSQL(x, main, PartMetric, 1, s, a)
	if err != nil {
		return "", err
	}
	parts := []string{units, first}
	switch {
	case den != nil:
		second, err := partRowsSQL(x, den, PartMetric, 2, s, a)
		if err != nil {
			return "", err
		}
		parts = append(parts, second)
	case cuped:
		second, err := partRowsSQL(x, main, PartCovariate, 2, s, a)
		if err != nil {
			return "", err
		}
		parts = append(parts, second)
	}
	q := `SELECT anyIf(variation, src = 0) AS variation, sumIf(events, src = 1) AS e1, sumIf(value_sum, src = 1) AS s1,
		sumIf(events, src = 2) AS e2, sumIf(value_sum, src = 2) AS s2
		FROM (` + strings.Join(parts, "\n\t\tUNION ALL ") + `)
		GROUP BY context_kind, context_key HAVING countIf(src = 0) > 0`
	v := unitValue(main.Kind, "e1", "s1")
	switch {
	case den != nil:
		return `SELECT variation, ` + v + ` AS v, ` + unitValue(den.Kind, "e2", "s2") + ` AS d, toFloat64(0) AS c, 1 AS has FROM (` + q + `)`, nil
	case cuped:
		return `SELECT variation, ` + v + ` AS v, toFloat64(0) AS d, ` + unitValue(main.Kind, "e2", "s2") + ` AS c, ` +
			hasExpr(main.Kind, "e1") + ` AS has FROM (` + q + `)`, nil
	}
	return `SELECT variation, ` + v + ` AS v, toFloat64(0) AS d, toFloat64(0) AS c, ` + hasExpr(main.Kind, "e1") + ` AS has FROM (` + q + `)`, nil
}

func hasExpr(kind, events string) string {
	if kind == Mean {
		return "if(" + events + " > 0, 1, 0)"
	}
	return "1"
}

// capExpr winsorizes a column with fixed bounds.
func capExpr(col string, lower, upper *float64, a *args) string {
	out := col
	if upper != nil {
		out = "least(" + out + ", " + a.add(*upper) + ")"
	}
	if lower != nil {
		out = "greatest(" + out + ", " + a.add(*lower) + ")"
	}
	return out
}

// Percentile computes the percentile cap of a metric: the q-quantile of the non-zero
// per-context values.
func Percentile(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, s Snapshot, q float64) (float64, error) {
	var a args
	inner, err := perContextSQL(x, m, s, false, &a)
	if err != nil {
		return 0, err
	}
	// The quantile level is a parameter of the function, which ClickHouse wants as a literal
	// (a float64 formatted by Go, so nothing can be injected).
	query := fmt.Sprintf("SELECT quantileExact(%g)(v) FROM (%s) WHERE v != 0 AND has = 1", q, inner)
	var capValue float64
	rows, err := conn.Query(ctx, query, a...)
	if err != nil {
		return 0, fmt.Errorf("metricsql: percentile of %s: %w", m.Key, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&capValue); err != nil {
			return 0, err
		}
	}
	return capValue, rows.Err()
}

// Sums computes a metric's per-variant sufficient statistics (units exposed to more than one
// variation excluded). cuped adds the covariate sums (non-ratio metrics with a pre-period).
func Sums(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, s Snapshot, cuped bool) ([]VariantSums, error) {
	cuped = cuped && m.Kind != Ratio && m.CUPEDPreperiod > 0
	lower, upper := m.Winsorize.Lower, m.Winsorize.Upper
	if m.Winsorize.Type == "percentile" && upper != nil {
		capValue, err := Percentile(ctx, conn, x, m, s, *upper)
		if err != nil {
			return nil, err
		}
		lower, upper = nil, &capValue
	} else if m.Winsorize.Type != "absolute" {
		lower, upper = nil, nil
	}
	passes := min(max(s.Passes, 1), sliceBuckets)
	total := map[string]*VariantSums{}
	var order []string
	for pass := 0; pass < passes; pass++ {
		x := x.pass(pass, passes)
		part, err := sumsPass(ctx, conn, x, m, s, cuped, lower, upper)
		if err != nil {
			return nil, err
		}
		for _, r := range part {
			t, ok := total[r.Variation]
			if !ok {
				t = &VariantSums{Variation: r.Variation}
				total[r.Variation] = t
				order = append(order, r.Variation)
			}
			t.add(r)
		}
	}
	slices.Sort(order)
	out := make([]VariantSums, len(order))
	for i, v := range order {
		out[i] = *total[v]
	}
	return out, nil
}

func (t *VariantSums) add(r VariantSums) {
	t.N += r.N
	t.Sum += r.Sum
	t.SumSquares += r.SumSquares
	t.DenSum += r.DenSum
	t.DenSumSquares += r.DenSumSquares
	t.MainDenProduct += r.MainDenProduct
	t.CovSum += r.CovSum
	t.CovSumSquares += r.CovSumSquares
	t.MainCovProduct += r.MainCovProduct
}

// sumsPass is one pass of Sums, over the contexts of x's slice.
func sumsPass(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, s Snapshot, cuped bool, lower, upper *float64) ([]VariantSums, error) {
	var a args
	v := capExpr("v", lower, upper, &a)
	c := capExpr("c", lower, upper, &a)
	inner, err := perContextSQL(x, m, s, cuped, &a)
	if err != nil {
		return nil, err
	}
	query := `SELECT variation, toInt64(sum(has)) AS n, sum(has * mv) AS s, sum(has * mv * mv) AS ss, sum(has * d) AS ds, sum(has * d * d) AS dss,
		sum(has * mv * d) AS mds, sum(has * mc) AS cs, sum(has * mc * mc) AS css, sum(has * mv * mc) AS mcs
		FROM (SELECT variation, has, d, ` + v + ` AS mv, ` + c + ` AS mc FROM (` + inner + `))
		GROUP BY variation ORDER BY variation`
	rows, err := conn.Query(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("metricsql: sums of %s: %w", m.Key, err)
	}
	defer rows.Close()
	var out []VariantSums
	for rows.Next() {
		var r VariantSums
		if err := rows.Scan(&r.Variation, &r.N, &r.Sum, &r.SumSquares, &r.DenSum, &r.DenSumSquares, &r.MainDenProduct,
			&r.CovSum, &r.CovSumSquares, &r.MainCovProduct); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Exposure is the experiment's unit counts.
type Exposure struct {
	// Units per variation, of units that saw exactly one variation.
	Units map[string]int64
	// Multiple is how many units saw more than one variation (excluded from the analysis).
	Multiple int64
}

// Total is every unit, those exposed to several variations included.
func (e Exposure) Total() int64 {
	n := e.Multiple
	for _, u := range e.Units {
		n += u
	}
	return n
}

// Exposures counts the experiment's units by variation, and those exposed to several.
func Exposures(ctx context.Context, conn driver.Conn, x Experiment, now time.Time) (Exposure, error) {
	var a args
	q := `SELECT if(nvar = 1, variation, ''), count() FROM (` + unitsSQL(x, &a) + `) WHERE first_ms < ` + a.add(uint64(now.UnixMilli())) +
		` GROUP BY if(nvar = 1, variation, '')`
	return exposureCounts(ctx, conn, q, a)
}

// exposureCounts reads (variation, units) rows; an empty variation counts the units exposed to
// several.
func exposureCounts(ctx context.Context, conn driver.Conn, q string, a args) (Exposure, error) {
	rows, err := conn.Query(ctx, q, a...)
	if err != nil {
		return Exposure{}, fmt.Errorf("metricsql: exposures: %w", err)
	}
	defer rows.Close()
	out := Exposure{Units: map[string]int64{}}
	for rows.Next() {
		var v string
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			return out, err
		}
		if v == "" {
			out.Multiple = int64(n)
		} else {
			out.Units[v] = int64(n)
		}
	}
	return out, rows.Err()
}
