package metricsql

import (
	"context"
	"fmt"
	"maps"
	"math"
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
	// Totals, when set, hold folds added up per context (UpdateTotals): the sums read them and
	// only the rollups of Folds they do not (or no longer) hold. They are read when the units'
	// context hashes are distinct (Units), else the rollups are.
	Totals *Totals
}

// UnitsPerPass is how many units one pass of Sums aggregates at most (PassesFor). On 18.16 five
// metrics (one with CUPED) over half a day of raw tail needed 0.6–0.8 GB of ClickHouse memory
// per million units grouped by hash (contextGroup), 1–1.5 GB by the context strings: about
// 1.6 GB per pass here. The sums added up in the worker read their raw tail in these passes, and
// their other rows in passes of WorkerUnitsPerPass.
var UnitsPerPass int64 = 2_000_000

// PassesFor is the number of Sums passes for an experiment with this many units.
func PassesFor(units int64) int {
	return int((units + UnitsPerPass - 1) / UnitsPerPass)
}

// partRowsSQL is a metric part's per-context rows, tagged src: the rollup's folded days plus
// raw events since FoldedUpTo (for CUPED the raw part covers the cohorts not folded yet), or
// only the folded days without raw (perContextSQL reads the raw events of several metrics in
// one rawPartsSQL then; "" when there are none). A context may have several rows;
// perContextSQL adds them up.
func partRowsSQL(x Experiment, m *Metric, part int, src int, s Snapshot, shape rowShape, withRaw bool, a *args) (string, error) {
	rolled := rolledRowsSQL(x, m, part, src, s, shape, a)
	if withRaw {
		raw, err := rawRowsSQL(x, m, part, src, s, shape, a)
		if err != nil {
			return "", err
		}
		rolled = append(rolled, raw)
	}
	return strings.Join(rolled, `
		UNION ALL `), nil
}

// rolledRowsSQL is a part's rows from the rollups: those of its recorded folds, or with totals
// those the totals do not (or no longer) hold. None for a rollout, which is read raw.
func rolledRowsSQL(x Experiment, m *Metric, part int, src int, s Snapshot, shape rowShape, a *args) []string {
	if x.rollout() {
		return nil // never folded: every event since the start is read raw
	}
	k := FoldKey{m.Key, m.Version, part}
	if t := shape.totals; t != nil {
		// The folds the totals do not hold, and those they hold that were replaced since.
		return x.changedFoldsSQL(t, k, s.Folds[k], shape.head(src), shape.arrays, a)
	}
	if ids := s.Folds[k]; len(ids) > 0 {
		// Placeholders are bound in text order, so the day's after the fold ids.
		return []string{`SELECT ` + shape.head(src) + shape.tail() + ` FROM experiment_metric_rollups
		WHERE ` + x.foldsWhereSQL(k, ids, a) + ` AND day < toDate(toDateTime(` + a.add(s.FoldedUpTo.Unix()) + `))`}
	}
	return nil
}

// rawRowsSQL is a part's rows from the raw events since FoldedUpTo (every event since the
// start for a rollout); for CUPED the cohorts not folded yet.
func rawRowsSQL(x Experiment, m *Metric, part int, src int, s Snapshot, shape rowShape, a *args) (string, error) {
	if x.rollout() {
		s.FoldedUpTo = x.Start
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
	return `SELECT ` + shape.head(src) + shape.tail() + ` FROM (` + raw + `)`, nil
}

// rowShape is the columns of perContextSQL's UNION: src, the context, variation, events,
// value_sum, and when it reads totals ev and vs (their arrays; empty on every other row).
// When the units' context hashes are distinct (Units) the context is its hash, context_hash,
// computed where each row is read — all the totals know of it, and cheaper to carry and group
// than the two strings (a full refresh at 5M units, 14 days of rollups: each pass's 26M rows);
// otherwise it is its two strings.
type rowShape struct {
	hashed bool
	totals *Totals // nil: the sums do not read totals
	// arrays: every row carries the ev and vs arrays (the totals are read in the same UNION);
	// ints: events are Int64 (the changed folds' are, negated for a fold taken away).
	arrays, ints bool
}

func (x Experiment) shape(s Snapshot) rowShape {
	t := x.totalsRead(s)
	return rowShape{hashed: x.HashedUnits(), totals: t, arrays: t != nil, ints: t != nil}
}

// head is a row's src, context and variation (”) columns.
func (r rowShape) head(src int) string {
	if r.hashed {
		return fmt.Sprintf("toUInt8(%d) AS src, cityHash64(context_kind, context_key) AS context_hash, '' AS variation", src)
	}
	return fmt.Sprintf("toUInt8(%d) AS src, context_kind, context_key, '' AS variation", src)
}

// rawHead is head for the rows of rawPartsSQL, which carry their own src and, when hashed,
// name their context by its hash already (its byHash).
func (r rowShape) rawHead() string {
	if r.hashed {
		return "src, context_hash, '' AS variation"
	}
	return "src, context_kind, context_key, '' AS variation"
}

// tail is a row's remaining columns, from events and value_sum: events as Int64 when ints, and
// the empty ev and vs arrays when arrays.
func (r rowShape) tail() string {
	out := ", events, value_sum"
	if r.ints {
		out = ", toInt64(events) AS events, value_sum"
	}
	if r.arrays {
		out += ", emptyArrayInt64() AS ev, emptyArrayFloat64() AS vs"
	}
	return out
}

// group is what the per-context GROUP BY groups by.
func (r rowShape) group() string {
	if r.hashed {
		return "context_hash"
	}
	return "context_kind, context_key"
}

// sum is a part's per-context total of col (events or value_sum) from its rows tagged src, and
// from the totals' arrays (arr) when they hold the part.
func (r rowShape) sum(col, arr string, src int, k FoldKey) string {
	return addedUp(col, "src", src, arr, r.totals.index(k))
}

// addedUp is a context's total of col over its rows whose tag column is n, plus element i of
// their totals array arr when i > 0: one aggregate over both (an element of the other rows'
// empty arrays is 0), where two cost a fifth more (a sums pass of 1.67M units and five metrics
// on 18.16: 2.06-2.11 s against 2.5-2.7 s).
func addedUp(col, tag string, n int, arr string, i int) string {
	if i > 0 {
		return fmt.Sprintf("sum(if(%s = %d, %s, 0) + %s[%d])", tag, n, col, arr, i)
	}
	return fmt.Sprintf("sumIf(%s, %s = %d)", col, tag, n)
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

// SumsRequest is one metric whose sums a pass computes; CUPED adds the covariate sums (non-ratio
// metrics with a pre-period).
type SumsRequest struct {
	Metric *Metric
	CUPED  bool
}

// cuped says whether r's covariate is read: CUPED asked for, of a non-ratio metric with a
// pre-period.
func (r SumsRequest) cuped() bool {
	return r.CUPED && r.Metric.Kind != Ratio && r.Metric.CUPEDPreperiod > 0
}

// combinesRaw says whether n metrics' conversion-window parts read their raw tail since
// s.FoldedUpTo in one combined read (rawPartsSQL): several metrics of an experiment over a short
// tail.
func (x Experiment) combinesRaw(n int, s Snapshot) bool {
	return n > 1 && !x.rollout() && s.Now.Sub(s.FoldedUpTo) <= shortRawSpan
}

// perContextSQL selects every unit with one variation and, for each request i, its value
// columns: v<i> (main), d<i> (ratio denominator) and c<i> (covariate), each unwinsorized, and
// has<i> (the unit counts toward n: always, except mean metrics count units with an event).
//
// It uses no join: the units (src 0) and the per-context rows of every request's metric parts
// (src 1+2i, and 2+2i for a ratio's denominator or the CUPED covariate) are combined in one
// GROUP BY per context. With millions of units a hash join keeps a whole side in memory; an
// aggregation holds a few numbers per context and can spill to disk
// (max_bytes_before_external_group_by). Several metrics in one GROUP BY read and hash the
// units once instead of once per metric.
func perContextSQL(x Experiment, reqs []SumsRequest, s Snapshot, a *args) (string, error) {
	shape := x.shape(s)
	var units string
	switch {
	case shape.totals != nil:
		units = `SELECT toUInt8(0) AS src, cityHash64(context_kind, context_key) AS context_hash, variation, toInt64(0) AS events, toFloat64(0) AS value_sum,
		emptyArrayInt64() AS ev, emptyArrayFloat64() AS vs FROM (` + x.snapshotUnitsSQL(true, a) + `)`
	case shape.hashed:
		units = `SELECT toUInt8(0) AS src, cityHash64(context_kind, context_key) AS context_hash, variation, toUInt64(0) AS events, toFloat64(0) AS value_sum
		FROM (` + x.snapshotUnitsSQL(true, a) + `)`
	case x.units != 0:
		units = `SELECT toUInt8(0) AS src, context_kind, context_key, variation, toUInt64(0) AS events, toFloat64(0) AS value_sum FROM (` + x.snapshotUnitsSQL(true, a) + `)`
	default:
		units = `SELECT toUInt8(0) AS src, context_kind, context_key, variation, toUInt64(0) AS events, toFloat64(0) AS value_sum FROM (` + unitsSQL(x, a) +
			`) WHERE nvar = 1 AND first_ms < ` + a.add(uint64(s.Now.UnixMilli()))
	}
	parts := []string{units}
	if t := shape.totals; t != nil {
		parts = append(parts, `SELECT toUInt8(`+fmt.Sprint(totalsSrc)+`) AS src, context_hash, '' AS variation, toInt64(0) AS events, toFloat64(0) AS value_sum,
		ev, vs FROM (`+totalsRowsSQL(t.ID, x, a)+`)`)
	}
	// Several metrics over a short raw tail: their conversion-window parts' raw events are read
	// and joined with the units once (rawPartsSQL), after their rollups.
	combined := x.combinesRaw(len(reqs), s)
	var rawParts []rawPart
	add := func(m *Metric, part, src int) error {
		rows, err := partRowsSQL(x, m, part, src, s, shape, !combined || part != PartMetric, a)
		if err != nil {
			return err
		}
		if rows != "" {
			parts = append(parts, rows)
		}
		if combined && part == PartMetric {
			rawParts = append(rawParts, rawPart{m, src})
		}
		return nil
	}
	sums := []string{`anyIf(variation, src = 0) AS variation`}
	var cols []string
	for i, r := range reqs {
		m := r.Metric
		cuped := r.cuped()
		main, den := m.parts()
		if err := add(main, PartMetric, 1+2*i); err != nil {
			return "", err
		}
		second := FoldKey{}
		switch {
		case den != nil:
			if err := add(den, PartMetric, 2+2*i); err != nil {
				return "", err
			}
			second = FoldKey{den.Key, den.Version, PartMetric}
		case cuped:
			if err := add(main, PartCovariate, 2+2*i); err != nil {
				return "", err
			}
			second = FoldKey{main.Key, main.Version, PartCovariate}
		}
		first := FoldKey{main.Key, main.Version, PartMetric}
		e1, s1, e2, s2 := fmt.Sprintf("e1_%d", i), fmt.Sprintf("s1_%d", i), fmt.Sprintf("e2_%d", i), fmt.Sprintf("s2_%d", i)
		sums = append(sums, fmt.Sprintf("%s AS %s, %s AS %s, %s AS %s, %s AS %s",
			shape.sum("events", "ev", 1+2*i, first), e1, shape.sum("value_sum", "vs", 1+2*i, first), s1,
			shape.sum("events", "ev", 2+2*i, second), e2, shape.sum("value_sum", "vs", 2+2*i, second), s2))
		v, d, c, has := unitValue(main.Kind, e1, s1), "toFloat64(0)", "toFloat64(0)", hasExpr(main.Kind, e1)
		switch {
		case den != nil:
			d, has = unitValue(den.Kind, e2, s2), "1"
		case cuped:
			c = unitValue(main.Kind, e2, s2)
		}
		cols = append(cols, fmt.Sprintf("%s AS v%d, %s AS d%d, %s AS c%d, %s AS has%d", v, i, d, i, c, i, has, i))
	}
	if 2*len(reqs) >= totalsSrc {
		return "", fmt.Errorf("metricsql: too many metrics in one pass (%d)", len(reqs))
	}
	if len(rawParts) > 0 {
		raw, err := rawPartsSQL(x, rawParts, s.FoldedUpTo, s.Now, shape.hashed, a)
		if err != nil {
			return "", err
		}
		parts = append(parts, `SELECT `+shape.rawHead()+shape.tail()+` FROM (`+raw+`)`)
	}
	q := `SELECT ` + strings.Join(sums, ", ") + `
		FROM (` + strings.Join(parts, "\n\t\tUNION ALL ") + `)
		GROUP BY ` + shape.group() + ` HAVING countIf(src = 0) > 0`
	return `SELECT variation, ` + strings.Join(cols, ", ") + ` FROM (` + q + `)`, nil
}

// totalsSrc tags the totals' rows in perContextSQL (the parts take 1 to 2 × metrics).
const totalsSrc = 255

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
// per-context values. It is NaN when there are none (no unit has a non-zero value yet, as in
// an experiment's first hours or with a rare filtered event); SumsOf then caps nothing.
func Percentile(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, s Snapshot, q float64) (float64, error) {
	var a args
	inner, err := perContextSQL(x, []SumsRequest{{Metric: m}}, s, &a)
	if err != nil {
		return 0, err
	}
	// The quantile level is a parameter of the function, which ClickHouse wants as a literal
	// (a float64 formatted by Go, so nothing can be injected).
	query := fmt.Sprintf("SELECT quantileExact(%g)(v0) FROM (%s) WHERE v0 != 0 AND has0 = 1", q, inner)
	capValue := math.NaN()
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
	out, err := SumsOf(ctx, conn, x, []SumsRequest{{Metric: m, CUPED: cuped}}, s)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// SumsOf computes the per-variant sums of several metrics at once: each pass over a hash slice
// of the contexts reads the units once for all of them. With units whose hashes are distinct the
// rows are added up per context in this process (GroupInWorker, sumsInWorker), otherwise
// grouped by ClickHouse. out[i] holds reqs[i]'s sums, sorted by variation.
func SumsOf(ctx context.Context, conn driver.Conn, x Experiment, reqs []SumsRequest, s Snapshot) ([][]VariantSums, error) {
	// Reads of many raw days (a rollout, or rollups not folded yet) join every metric's events
	// with the units held in a hash table: one metric per query then, or the tables add up.
	perQuery := max(MetricsPerPass, 1)
	if x.rollout() || s.Now.Sub(s.FoldedUpTo) > shortRawSpan {
		perQuery = 1
	}
	out := make([][]VariantSums, 0, len(reqs))
	for len(reqs) > 0 {
		n := min(len(reqs), perQuery)
		batch, err := sumsOf(ctx, conn, x, reqs[:n], s)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		reqs = reqs[n:]
	}
	return out, nil
}

// MetricsPerPass bounds how many metrics one sums query aggregates (SumsOf): their per-context
// state adds up in ClickHouse's memory, next to the units' keys that UnitsPerPass bounds. (At
// 1M units, 5 metrics in one query took 7.9 s where one query each took 11.5 s in all.)
var MetricsPerPass = 5

func sumsOf(ctx context.Context, conn driver.Conn, x Experiment, reqs []SumsRequest, s Snapshot) ([][]VariantSums, error) {
	if GroupInWorker && x.HashedUnits() && !x.rollout() {
		return sumsInWorker(ctx, conn, x, reqs, s)
	}
	// Each value is winsorized with its own metric's cap: a ratio's numerator and denominator
	// with their metrics' caps (a ratio has none of its own).
	// A metric that is also a ratio's part in the same batch has its percentile computed once.
	known := map[version]bounds{}
	capOnce := func(m *Metric) (bounds, error) {
		if m == nil {
			return bounds{}, nil
		}
		b, ok := known[version{m.Key, m.Version}]
		if !ok {
			var err error
			if b, err = capOf(ctx, conn, x, m, s); err != nil {
				return b, err
			}
			known[version{m.Key, m.Version}] = b
		}
		return b, nil
	}
	caps := make([][2]bounds, len(reqs))
	for i, r := range reqs {
		main, den := r.Metric.parts()
		var err error
		if caps[i][0], err = capOnce(main); err != nil {
			return nil, err
		}
		if caps[i][1], err = capOnce(den); err != nil {
			return nil, err
		}
	}
	passes := min(max(s.Passes, 1), sliceBuckets)
	totals := make([]map[string]*VariantSums, len(reqs))
	for i := range totals {
		totals[i] = map[string]*VariantSums{}
	}
	for pass := 0; pass < passes; pass++ {
		part, err := sumsPass(ctx, conn, x.pass(pass, passes), reqs, s, caps)
		if err != nil {
			return nil, err
		}
		for i, rows := range part {
			for _, r := range rows {
				t, ok := totals[i][r.Variation]
				if !ok {
					t = &VariantSums{Variation: r.Variation}
					totals[i][r.Variation] = t
				}
				t.add(r)
			}
		}
	}
	out := make([][]VariantSums, len(reqs))
	for i, byVar := range totals {
		order := slices.Sorted(maps.Keys(byVar))
		out[i] = make([]VariantSums, len(order))
		for j, v := range order {
			out[i][j] = *byVar[v]
		}
	}
	return out, nil
}

// bounds are a metric's winsorization bounds (nil: none).
type bounds struct{ lower, upper *float64 }

// parts is the metric whose values a metric's main sums are of — a ratio's numerator, else the
// metric itself — and a ratio's denominator (nil otherwise).
func (m *Metric) parts() (main, den *Metric) {
	if m.Kind == Ratio {
		return m.Numerator, m.Denominator
	}
	return m, nil
}

// capOf is a (non-ratio) metric's winsorization bounds: its absolute bounds, or its percentile
// cap computed over the experiment's contexts.
func capOf(ctx context.Context, conn driver.Conn, x Experiment, m *Metric, s Snapshot) (bounds, error) {
	if b, percentile := m.fixedBounds(); !percentile {
		return b, nil
	}
	capValue, err := Percentile(ctx, conn, x, m, s, *m.Winsorize.Upper)
	if err != nil || math.IsNaN(capValue) {
		// No non-zero value to take a quantile of: least(v, nan) would make every sum NaN,
		// and nothing needs capping.
		return bounds{}, err
	}
	return bounds{nil, &capValue}, nil
}

// fixedBounds are a (non-ratio) metric's winsorization bounds when they do not depend on the
// data: its absolute bounds, or none; percentile says they are a percentile cap instead.
func (m *Metric) fixedBounds() (b bounds, percentile bool) {
	switch {
	case m.Winsorize.Type == "absolute":
		return bounds{m.Winsorize.Lower, m.Winsorize.Upper}, false
	case m.Winsorize.Type == "percentile" && m.Winsorize.Upper != nil:
		return bounds{}, true
	}
	return bounds{}, false
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

// sumsPass is one pass of SumsOf, over the contexts of x's slice: out[i] holds reqs[i]'s rows.
func sumsPass(ctx context.Context, conn driver.Conn, x Experiment, reqs []SumsRequest, s Snapshot, caps [][2]bounds) ([][]VariantSums, error) {
	var a args
	capped := make([]string, len(reqs))
	for i, b := range caps {
		main, den := b[0], b[1]
		capped[i] = fmt.Sprintf("v%d, d%d, c%d, has%d, %s AS mv%d, %s AS md%d, %s AS mc%d", i, i, i, i,
			capExpr(fmt.Sprintf("v%d", i), main.lower, main.upper, &a), i, capExpr(fmt.Sprintf("d%d", i), den.lower, den.upper, &a), i,
			capExpr(fmt.Sprintf("c%d", i), main.lower, main.upper, &a), i)
	}
	inner, err := perContextSQL(x, reqs, s, &a)
	if err != nil {
		return nil, err
	}
	aggs := make([]string, len(reqs))
	for i := range reqs {
		aggs[i] = strings.NewReplacer("#", fmt.Sprint(i)).Replace(`toInt64(sum(has#)), sum(has# * mv#), sum(has# * mv# * mv#), sum(has# * md#), sum(has# * md# * md#),
		sum(has# * mv# * md#), sum(has# * mc#), sum(has# * mc# * mc#), sum(has# * mv# * mc#)`)
	}
	query := `SELECT variation, ` + strings.Join(aggs, ", ") + `
		FROM (SELECT variation, ` + strings.Join(capped, ", ") + ` FROM (` + inner + `))
		GROUP BY variation ORDER BY variation`
	names := make([]string, 0, len(reqs))
	for _, r := range reqs {
		names = append(names, r.Metric.Key)
	}
	rows, err := conn.Query(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("metricsql: sums of %s: %w", strings.Join(names, ", "), err)
	}
	defer rows.Close()
	out := make([][]VariantSums, len(reqs))
	for rows.Next() {
		var variation string
		vals := make([]VariantSums, len(reqs))
		dest := []any{&variation}
		for i := range vals {
			r := &vals[i]
			dest = append(dest, &r.N, &r.Sum, &r.SumSquares, &r.DenSum, &r.DenSumSquares, &r.MainDenProduct,
				&r.CovSum, &r.CovSumSquares, &r.MainCovProduct)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i := range vals {
			vals[i].Variation = variation
			out[i] = append(out[i], vals[i])
		}
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
