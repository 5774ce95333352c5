// Package metricsql turns metric definitions into ClickHouse queries over Switchyard's event
// tables: per-variant sufficient statistics of a metric for an experiment (STATS.md §1), with
// each context's conversion window measured from its first exposure, event-property filters,
// per-context winsorization, CUPED pre-exposure covariates, exclusion of contexts exposed to
// more than one variation, and daily rollups so a refresh reads the new day plus the rollups
// rather than every raw event again. The results workers and the jobs service's guardrail
// monitor share it.
//
// The SQL runs on Debian's ClickHouse 18.16 as well as current releases: one JOIN per SELECT
// level with explicit strictness, time conditions after the join, no window functions, and
// every INSERT names its columns. Values are bound as parameters, never spliced.
package metricsql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of metric.
const (
	Proportion = "proportion"
	Mean       = "mean"
	Sum        = "sum"
	Count      = "count"
	Ratio      = "ratio"
)

// Filter keeps events whose property satisfies the operator.
type Filter struct {
	Property string `json:"property"`
	Op       string `json:"op"` // eq neq in not_in gt gte lt lte contains
	Values   []any  `json:"values"`
}

// Winsorize caps per-context values: Type "absolute" (Lower/Upper) or "percentile" (Upper,
// the quantile of the non-zero per-context values).
type Winsorize struct {
	Type  string   `json:"type"`
	Lower *float64 `json:"lower"`
	Upper *float64 `json:"upper"`
}

// Metric is the part of a metric definition the queries need.
type Metric struct {
	Key         string
	Version     int64
	Kind        string
	EventKey    string
	WindowStart time.Duration
	WindowEnd   time.Duration
	Filters     []Filter
	Winsorize   Winsorize
	// CUPEDPreperiod is the pre-exposure window of the covariate (0: no CUPED).
	CUPEDPreperiod time.Duration
	// Numerator and Denominator are a ratio's parts.
	Numerator, Denominator *Metric
}

// Experiment identifies the exposures a metric is analysed over: an experiment's (Key set),
// or a plain percentage rollout's (Key empty, Flag and Variations set) — the contexts the
// flag's rollout served one of Variations (reason SPLIT, no experiment key) since Start, as a
// guardrail on a rollout watches them. Rollouts are read raw, never folded into rollups.
type Experiment struct {
	EnvironmentID string
	Key           string
	// Start bounds the raw scans from below (the experiment's start, the rollout guardrail's
	// creation).
	Start time.Time
	// Flag and Variations select a plain rollout's units.
	Flag       string
	Variations []string

	// lo and hi restrict a pass to the contexts whose bucket is in [lo, hi) (hi 0: every
	// context; Snapshot.Passes).
	lo, hi int
	// units is the materialized units partition the queries read (WithUnits; 0: none);
	// unitsNow (unix ms) bounds its units' first exposures.
	units, unitsNow int64
	// hashed: the snapshot's contexts have distinct 64-bit hashes, so per-context GROUP BYs
	// group by the hash (contextGroup).
	hashed bool
	// revised: the units partition holds revisions (Units.revised).
	revised bool
}

// ClockSkew is how far behind the servers' clocks a client's may run with its exposures still
// counted: a unit first exposed up to ClockSkew before the experiment started is a unit, and the
// experiment's analysis (units, folds, raw reads) starts at the UTC day of Start - ClockSkew
// (FirstDay). It started at Start's own day before, so an experiment started just after
// midnight UTC lost every unit whose client stamped its first exposure a moment earlier.
const ClockSkew = time.Hour

// FirstDay is the first UTC day of an experiment's analysis: that of Start - ClockSkew.
func (x Experiment) FirstDay() time.Time { return Day(x.Start.Add(-ClockSkew)) }

// WithUnits makes every query on the returned experiment (sums, folds, percentiles) read its
// units from a units partition (MaterializeUnits, BaseUnits), instead of merging them from
// experiment_units.
func (x Experiment) WithUnits(u Units) Experiment {
	x.units, x.unitsNow, x.hashed, x.revised = u.ID, u.Now.UnixMilli(), u.distinctHashes, u.revised
	return x
}

// contextGroup is what the per-context GROUP BY of the sums groups rows by. A 64-bit hash of the
// context is a fixed-size key, which ClickHouse groups about four times as fast as the two
// strings (18.16, 8.6M rows of 1M units: 0.75 s vs 3.0 s). It is exact when the units snapshot's
// contexts have distinct hashes (MaterializeUnits checks), because every row grouped is a unit's:
// rollups and raw events are joined with the units before they are grouped. Without a
// snapshot, or in the (2^-64-per-pair) event of a collision, the strings.
func (x Experiment) contextGroup() string {
	if x.HashedUnits() {
		return "cityHash64(context_kind, context_key)"
	}
	return "context_kind, context_key"
}

// sliceBuckets is how many buckets the contexts are hashed into; a pass takes a range of them.
const sliceBuckets = 1024

// pass restricts x to the contexts of one of passes passes (all of them with one pass).
func (x Experiment) pass(pass, passes int) Experiment {
	x.lo, x.hi = 0, 0
	if passes > 1 {
		x.lo, x.hi = pass*sliceBuckets/passes, (pass+1)*sliceBuckets/passes
	}
	return x
}

// slice is the condition keeping the contexts of the current pass ("" with one pass). Every
// source of a pass (units, rollups, raw events) is restricted the same way, so a pass's
// per-context values are exact and the passes' sums add up. The rollups are sorted by this
// very expression after the fold id (ingest migration 7), so on them a pass reads only its part.
func (x Experiment) slice() string {
	if x.hi == 0 {
		return ""
	}
	return fmt.Sprintf(" AND cityHash64(context_kind, context_key) %% %d BETWEEN %d AND %d", sliceBuckets, x.lo, x.hi-1)
}

// rollout says the units are a plain rollout's.
func (x Experiment) rollout() bool { return x.Key == "" }

// args accumulates bound parameters.
type args []any

func (a *args) add(v any) string { *a = append(*a, v); return "?" }

// filterSQL renders the metric's filters as a condition on the tracks table. Properties are
// stored as text in the Nested column properties(key, type, value), numbers in Go's shortest
// 'g' form (ingest's Property.Text: 1000000 is "1e+06"); an event without the property never
// matches a positive condition. A number in a filter compares numerically with the stored
// text (numberSQL), so 1000000, 1e6 and 1.0e6 are equal; strings and booleans compare as text.
// Placeholders are added in the order they are written.
func filterSQL(fs []Filter, a *args) (string, error) {
	var parts []string
	for i, f := range fs {
		has := func() string { return "has(properties.key, " + a.add(f.Property) + ")" }
		prop := func() string { return "properties.value[indexOf(properties.key, " + a.add(f.Property) + ")]" }
		if len(f.Values) == 0 {
			return "", fmt.Errorf("metricsql: filters[%d]: %s needs a value", i, f.Op)
		}
		var cond string
		switch f.Op {
		case "eq", "in":
			cond = has() + " AND " + matchSQL(prop, f.Values, a)
		case "neq", "not_in":
			cond = "NOT " + matchSQL(prop, f.Values, a)
		case "gt", "gte", "lt", "lte":
			n, ok := number(f.Values[0])
			if !ok {
				return "", fmt.Errorf("metricsql: filters[%d]: %s needs a number", i, f.Op)
			}
			sym := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[f.Op]
			// The exact text of the bound decides equality (see numberSQL): gte/lte include it,
			// gt/lt exclude it.
			if f.Op == "gte" || f.Op == "lte" {
				cond = has() + " AND (" + prop() + " = " + a.add(formatNumber(n)) + " OR " + numberSQL(prop()) + " " + sym + " " + a.add(n) + ")"
			} else {
				cond = has() + " AND " + prop() + " != " + a.add(formatNumber(n)) + " AND " + numberSQL(prop()) + " " + sym + " " + a.add(n)
			}
		case "contains":
			sub, ok := f.Values[0].(string)
			if !ok {
				return "", fmt.Errorf("metricsql: filters[%d]: contains needs a string", i)
			}
			cond = has() + " AND position(" + prop() + ", " + a.add(sub) + ") > 0"
		default:
			return "", fmt.Errorf("metricsql: filters[%d]: unknown operator %q", i, f.Op)
		}
		parts = append(parts, "("+cond+")")
	}
	if len(parts) == 0 {
		return "1", nil
	}
	return strings.Join(parts, " AND "), nil
}

// eventSQL is the condition an event must meet to count for metric m: its filters and, for a
// mean, a value. An event sent without a value (Track without one; has_value = 0, stored as 0)
// is no observation of the value a mean averages: counting it as 0 would pull the mean down, so
// a mean skips it — as SQL's avg skips NULL. Every other kind counts it as it is: an event
// (proportion, count) of value 0 (sum).
func eventSQL(m *Metric, a *args) (string, error) {
	cond, err := filterSQL(m.Filters, a)
	if err != nil {
		return "", err
	}
	if m.Kind == Mean {
		cond += " AND has_value = 1"
	}
	return cond, nil
}

// matchSQL is true when the property equals one of the values: as text (strings, booleans, and
// numbers in the form ingest stores them), or, for numbers, numerically. The property is "" when
// the event lacks it, which matches no number.
func matchSQL(prop func() string, vs []any, a *args) string {
	var texts, nums []any
	for _, v := range vs {
		if n, ok := number(v); ok {
			texts, nums = append(texts, formatNumber(n)), append(nums, n)
		} else {
			texts = append(texts, valueString(v))
		}
	}
	cond := "(" + prop() + " IN (" + placeholders(texts, a) + ")"
	if len(nums) > 0 {
		cond += " OR " + numberSQL(prop()) + " IN (" // the property's placeholder before the numbers'
		for i, n := range nums {
			if i > 0 {
				cond += ", "
			}
			cond += a.add(n)
		}
		cond += ")"
	}
	return cond + ")"
}

// numberSQL is a property's text as a Float64, NaN when it is not a number (NaN equals and
// orders against nothing, so such events match no numeric comparison, and no Nullable reaches
// the comparison). ClickHouse 18.16's text parser can be one unit in the last place off for
// numbers with 17 significant digits, which is why equality also compares the text.
func numberSQL(prop string) string { return "ifNull(toFloat64OrNull(" + prop + "), nan)" }

// number is a filter value that is a number (JSON numbers decode as float64).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// formatNumber is a number's text as ingest stores it (Go's shortest 'g' form).
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func placeholders(vs []any, a *args) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = a.add(valueString(v))
	}
	return strings.Join(out, ", ")
}

// valueString is how a string or boolean filter value compares with a stored property.
func valueString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return formatNumber(x)
	}
	return fmt.Sprint(v)
}

// unitsSQL selects the experiment's units: first variation, first exposure (ms) and how many
// variations each context saw. An experiment's come from the experiment_units aggregate; a
// rollout's from its raw exposures (argMin, min and uniqExact ignore duplicate deliveries).
func unitsSQL(x Experiment, a *args) string {
	q := mergedUnitsSQL(x, a)
	if x.analysedFrom() {
		// A unit whose first exposure is stamped before the analysis' first day (a client clock
		// far behind, uncorrected) is not a unit: its events before that day are never folded or
		// read, so it would count in n and the split with a value of 0.
		q += ` HAVING first_ms >= ` + a.add(uint64(x.FirstDay().UnixMilli()))
	}
	return q
}

// mergedUnitsSQL is unitsSQL for every context, whenever first exposed.
func mergedUnitsSQL(x Experiment, a *args) string {
	if x.rollout() {
		return `SELECT context_kind, context_key, argMin(variation_key, timestamp_ms) AS variation,
		min(timestamp_ms) AS first_ms, uniqExact(variation_key) AS nvar
		FROM exposures WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND flag_key = ` + a.add(x.Flag) +
			` AND experiment_key = '' AND reason = 'SPLIT' AND variation_key IN (` + placeholders(stringsToAny(x.Variations), a) + `)
		AND timestamp >= toDateTime(` + a.add(x.Start.Unix()) + `)` + x.slice() + `
		GROUP BY context_kind, context_key`
	}
	return `SELECT context_kind, context_key, argMinMerge(first_variation) AS variation,
		minMerge(first_exposed_ms) AS first_ms, uniqExactMerge(variations) AS nvar
		FROM experiment_units WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + x.slice() + `
		GROUP BY context_kind, context_key`
}

// analysedFrom says whether an experiment's units must be first exposed on or after its
// analysis' first day (an experiment's with a start; a rollout's raw exposures are read from
// its start instead).
func (x Experiment) analysedFrom() bool {
	return !x.rollout() && !x.Start.IsZero() && x.Start.Unix() > 0
}

// Part of a rollup row: the metric's conversion window, or the CUPED pre-exposure window.
const (
	PartMetric    = 0
	PartCovariate = 1
)

// rawSQL aggregates raw events per context for one metric part, over events in
// [from, to) (to zero: unbounded) for units that first saw the experiment in
// [cohortFrom, cohortTo) (unix ms; 0: unbounded). Parameters are bound in the order the
// placeholders appear in the text, so each piece is built where it is written.
func rawSQL(x Experiment, m *Metric, part int, from, to time.Time, cohortFrom, cohortTo int64, a *args) (string, error) {
	cohort := cohortFrom > 0 || cohortTo > 0
	eventsSQL := func() (string, error) {
		events := `SELECT context_kind, context_key, event_id, any(value) AS value, any(timestamp_ms) AS ts
		FROM tracks WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND event_key = ` + a.add(m.EventKey) +
			` AND timestamp >= toDateTime(` + a.add(from.Unix()) + `)`
		if !to.IsZero() {
			events += beforeSQL(to, a)
		}
		events += daysSQL(from, to, a)
		filters, err := eventSQL(m, a)
		if err != nil {
			return "", err
		}
		events += ` AND ` + filters + x.slice()
		if cohort {
			// Only the cohort's events are grouped: a CUPED pre-period spans days of every
			// context's events, the cohort is one day's new units.
			events += ` AND (context_kind, context_key) IN (SELECT context_kind, context_key FROM (` + firstExposuresSQL(x, cohortFrom, cohortTo, a) + `))`
		}
		return events + ` GROUP BY context_kind, context_key, event_id`, nil
	}
	// ClickHouse builds the join's right side into an in-memory hash table, so the smaller side
	// goes there. A results refresh reads raw only a recent stretch — a day being folded, the
	// tail since the last fold, a cohort's pre-period (restricted to the cohort) — which has
	// fewer rows than the experiment's units. A rollout, or a read of raw events only, spans
	// every event since the start: its units go on the right.
	eventsRight := !x.rollout() && (cohort || (!to.IsZero() && to.Sub(from) <= shortRawSpan))
	var left, right string
	var err error
	if eventsRight { // built in text order: placeholders are bound in the order they appear
		left = firstExposuresSQL(x, cohortFrom, cohortTo, a)
		right, err = eventsSQL()
	} else {
		left, err = eventsSQL()
		right = firstExposuresSQL(x, cohortFrom, cohortTo, a)
	}
	if err != nil {
		return "", err
	}
	var window string
	if part == PartMetric {
		window = fmt.Sprintf("ts >= first_ms + %d AND ts < first_ms + %d", m.WindowStart.Milliseconds(), m.WindowEnd.Milliseconds())
	} else {
		window = fmt.Sprintf("ts < first_ms AND ts + %d >= first_ms", m.CUPEDPreperiod.Milliseconds())
	}
	return `SELECT context_kind, context_key, count() AS events, sum(value) AS value_sum FROM (` + left + `)
		ALL INNER JOIN (` + right + `) USING (context_kind, context_key)
		WHERE ` + window + `
		GROUP BY context_kind, context_key`, nil
}

// rawPart is one metric's conversion-window part in a combined raw read (rawPartsSQL), tagged src.
type rawPart struct {
	m   *Metric
	src int
}

// rawPartsSQL is rawSQL for the conversion-window parts of several metrics at once, over a short
// stretch of an experiment's raw events [from, to) (a day being folded, the tail since the last
// fold): the events of all their event keys are read, deduplicated and joined with the units
// once, instead of once per metric, and each context's events are split by metric after the
// join. Rows: (src, context_kind, context_key, events, value_sum), one per part and context
// with events in the part's window; byHash (the sums over totals, whose rows name a context by
// its hash) gives (src, context_hash, events, value_sum) instead, and spares the grouping the
// copies of the context's strings (a 12 h tail, a pass of 1.67M units: 2.4-2.8 s against
// 2.9-3.3 s). (1M units, 5 metrics, half a day of 572k events on 18.16: 1.7 s, where five
// rawSQL reads took 2.5 s.)
//
// Four things make it cheaper than rawSQL's way, which it otherwise follows. Events are
// deduplicated by the same identity, an event_id within a context and event key, but keyed by
// the id and one 64-bit hash of the other three, fixed-size where the strings cost half as much
// again (an id an SDK reused for another context or key still counts once for each). The units
// are joined by contextHashes, not by the strings: the hash table holds two numbers per event
// instead of two strings, the join matches on the first and keeps a row only when the second
// agrees too, and a context's rows are then grouped as contextGroup says. The per-part rows
// come from parallel arrays rather than an array of tuples. And only the units whose windows
// can reach into [from, to) are joined (windowUnits), and only their events deduplicated: on
// the 5M-unit benchmark a day's fold joins 2.5M units instead of 5M, its select 5.8-8.4 s
// against 7.4-10.2 s, and 4.4-5.5 s with the events filtered by the units' hashes, same rows.
// Where every event is a unit's and no unit is past its windows, that filter costs about
// 0.6 s at 5M units; real events also come from contexts outside the experiment, which it drops
// before they are deduplicated.
func rawPartsSQL(x Experiment, parts []rawPart, from, to time.Time, byHash bool, a *args) (string, error) {
	conds, err := rawConditions(x, parts, from, to)
	if err != nil {
		return "", err
	}
	if byHash && !x.HashedUnits() {
		return "", fmt.Errorf("metricsql: contexts named by hash need units with distinct hashes")
	}
	lo, hi := windowUnits(parts, from, to)
	var cols, srcs, events, sums []string
	for c, cond := range conds {
		in := fmt.Sprintf("bitTest(mask%d, %d) AND ts >= first_ms + %d AND ts < first_ms + %d", c/64, c%64, cond.m.WindowStart.Milliseconds(), cond.m.WindowEnd.Milliseconds())
		cols = append(cols, fmt.Sprintf("countIf(%s) AS e%d, sumIf(value, %s) AS s%d", in, c, in, c))
		for _, src := range cond.srcs {
			srcs, events, sums = append(srcs, fmt.Sprintf("toUInt8(%d)", src)), append(events, fmt.Sprintf("e%d", c)), append(sums, fmt.Sprintf("s%d", c))
		}
	}
	// The context: its strings, or the units' hash the join matched on (contextGroup's then).
	context, unit, group := `unit_kind AS context_kind, unit_key AS context_key`, `any(context_kind) AS unit_kind, any(context_key) AS unit_key`, x.contextGroup()
	if byHash {
		context, unit, group = `unit_hash AS context_hash`, `context_hash AS unit_hash`, `context_hash`
	}
	q := `SELECT src, ` + context + `, part_events AS events, part_sum AS value_sum FROM (
		SELECT ` + unit + `, ` + strings.Join(cols, ", ") + `
		FROM (SELECT context_kind, context_key, first_ms, ` + contextHashes("", "") + ` FROM (` + firstExposuresSQL(x, lo, hi, a) + `))
		ALL INNER JOIN (SELECT ` + contextHashes("any", "event_") + `, event_id, any(value) AS value, any(timestamp_ms) AS ts`
	masks, keys, err := rawMasks(conds, 0, "any", a)
	if err != nil {
		return "", err
	}
	q += masks + ` FROM tracks WHERE ` + rawEventsWhere(x, keys, from, to, a)
	// Only those units' events are deduplicated and built into the join's hash table: a set of
	// their hashes filters the events first (from a units snapshot: merging experiment_units
	// again for it would cost more than it saves).
	if x.units != 0 {
		q += ` AND cityHash64(context_kind, context_key) IN (SELECT cityHash64(context_kind, context_key) FROM (` + firstExposuresSQL(x, lo, hi, a) + `))`
	}
	q += `
		GROUP BY event_id, cityHash64(context_kind, context_key, event_key)) USING (context_hash)
		WHERE context_check = event_context_check
		GROUP BY ` + group + `)
		ARRAY JOIN [` + strings.Join(srcs, ", ") + `] AS src, [` + strings.Join(events, ", ") + `] AS part_events, [` + strings.Join(sums, ", ") + `] AS part_sum
		WHERE part_events > 0`
	return q, nil
}

// rawCondition is what a combined raw read tests an event for: its metric's event key, filters
// and conversion window (m's), shared by the parts that count the same events — as a proportion
// and a sum of one event often do — whose srcs it lists.
type rawCondition struct {
	m    *Metric
	srcs []int
}

// rawConditions are the conditions of a combined raw read of parts over [from, to), in the
// order of their first parts.
func rawConditions(x Experiment, parts []rawPart, from, to time.Time) ([]*rawCondition, error) {
	if x.rollout() || to.IsZero() || to.Sub(from) > shortRawSpan || len(parts) == 0 {
		return nil, fmt.Errorf("metricsql: a combined raw read is for a short stretch of an experiment's events, of at least one metric")
	}
	type key struct {
		key, filters string
		start, end   time.Duration
	}
	index := map[key]int{}
	var conds []*rawCondition
	for i, p := range parts {
		if p.m.Kind == Ratio || p.src < 1 || p.src > 255 {
			return nil, fmt.Errorf("metricsql: combined raw part %d: metric %q (src %d)", i, p.m.Key, p.src)
		}
		k := key{p.m.EventKey, fmt.Sprintf("%#v", p.m.Filters), p.m.WindowStart, p.m.WindowEnd}
		c, ok := index[k]
		if !ok {
			c = len(conds)
			index[k], conds = c, append(conds, &rawCondition{m: p.m})
		}
		conds[c].srcs = append(conds[c].srcs, p.src)
	}
	return conds, nil
}

// rawMasks selects, for an event, which conditions it meets by its key and filters (not yet
// its window): condition c is bit i%64 of ", agg(…) AS mask<i/64>", i = bit0 + c — for a
// deduplicated event agg is "any", one aggregate for up to 64 conditions instead of one each
// (18.16 calls aggregates a row at a time: a day's fold of five metrics at 5M units, its select
// 3.4-3.7 s against 3.6-4.2 s); for an event read as it is, "". keys are the conditions' event
// keys, each once.
func rawMasks(conds []*rawCondition, bit0 int, agg string, a *args) (masks string, keys []any, err error) {
	seen := map[string]bool{}
	var bits []string
	for c, cond := range conds {
		key := a.add(cond.m.EventKey) // before the filters' placeholders, as in the text
		filters, err := eventSQL(cond.m, a)
		if err != nil {
			return "", nil, fmt.Errorf("metric %s: %w", cond.m.Key, err)
		}
		i := bit0 + c
		bits = append(bits, fmt.Sprintf("toUInt64(event_key = %s AND %s) * %d", key, filters, uint64(1)<<(i%64)))
		if i%64 == 63 || c == len(conds)-1 {
			masks += fmt.Sprintf(", %s(%s) AS mask%d", agg, strings.Join(bits, " + "), i/64)
			bits = nil
		}
		if !seen[cond.m.EventKey] {
			seen[cond.m.EventKey] = true
			keys = append(keys, cond.m.EventKey)
		}
	}
	return masks, keys, nil
}

// rawEventsWhere is the condition on tracks of a combined raw read of x's slice over [from, to)
// of events of keys.
func rawEventsWhere(x Experiment, keys []any, from, to time.Time, a *args) string {
	return `environment_id = ` + a.add(x.EnvironmentID) + ` AND event_key IN (` + placeholders(keys, a) + `)
		AND timestamp >= toDateTime(` + a.add(from.Unix()) + `)` + beforeSQL(to, a) + daysSQL(from, to, a) + x.slice()
}

// rawEventsSQL selects events of x's units for the results worker to join with its units
// itself (sumsInWorker): those in [from, to) of conds' keys of the units first exposed in
// [lo, hi) (ms; 0: unbounded), one row per delivered event — its context's hash
// (context_hash), time (ts, Int64), value, id (event_id) and which conditions it meets by its
// key and filters (mask0: condition c is bit bit0 + c; at most 64 bits) — without the join,
// the grouping per context and the deduplication, which the worker does (the copies of an
// event: the same context, id and conditions). They were most of the cost of reading a raw
// tail grouped (rawPartsSQL; a 25 h tail at 5M units: 2.6-2.9 s on its own; 1.6-1.7 s with
// the deduplication left; 0.93-1.04 s without, whose rows ClickHouse streams as it reads
// them). The units' events are selected by the pair of their context's hashes
// (contextHashes): every row is a unit's (two contexts agree on both with a chance of about
// 2^-128), and as x's units have distinct hashes the worker finds it by the first alone.
func rawEventsSQL(x Experiment, conds []*rawCondition, bit0 int, from, to time.Time, lo, hi int64, a *args) (string, error) {
	if !x.HashedUnits() {
		return "", fmt.Errorf("metricsql: the worker joins the raw events with units of distinct hashes only")
	}
	if bit0+len(conds) > 64 {
		return "", fmt.Errorf("metricsql: %d conditions from bit %d do not fit one mask", len(conds), bit0)
	}
	masks, keys, err := rawMasks(conds, bit0, "", a)
	if err != nil {
		return "", err
	}
	pair := `cityHash64(context_kind, context_key), metroHash64(context_kind, context_key)`
	return `SELECT cityHash64(context_kind, context_key) AS context_hash, toInt64(timestamp_ms) AS ts, value, event_id` + masks + `
		FROM tracks WHERE ` + rawEventsWhere(x, keys, from, to, a) + `
		AND (` + pair + `) IN (SELECT ` + pair + ` FROM (` + firstExposuresSQL(x, lo, hi, a) + `))`, nil
}

// windowUnits bounds the first exposures, [lo, hi) in ms, of the units whose conversion windows
// of parts can hold events of a raw read [from, to): an event counts for a unit when first +
// WindowStart <= ts < first + WindowEnd, and the read has from's second <= ts < to's millisecond
// (beforeSQL). The other units' events would be joined and grouped only to be counted as none
// (at a day's fold, every unit exposed more than the longest window before it, in a two-week
// experiment with a week's window half of them).
func windowUnits(parts []rawPart, from, to time.Time) (lo, hi int64) {
	var end time.Duration
	start := parts[0].m.WindowStart
	for _, p := range parts {
		end, start = max(end, p.m.WindowEnd), min(start, p.m.WindowStart)
	}
	return from.Unix()*1000 - end.Milliseconds() + 1, to.UnixMilli() - start.Milliseconds()
}

// contextHashes selects a context's two independent 64-bit hashes, context_hash (cityHash64,
// contextGroup's) and context_check (metroHash64), the second prefixed by prefix; agg, when set,
// is the aggregate the columns are taken from in a GROUP BY. Two different contexts agree on
// both with a chance of about 2^-128, so joining on the first and requiring the second to agree
// is, in practice, joining on the context itself. In a GROUP BY the hashes are aggregated, not
// the strings they hash: the groups keep two numbers each instead of copies of two strings (a
// day's 5.7M events deduplicated on 18.16: 2.5-2.9 s against 3.1-4.1 s).
func contextHashes(agg, prefix string) string {
	of := func(h string) string {
		if agg == "" {
			return h + "(context_kind, context_key)"
		}
		return agg + "(" + h + "(context_kind, context_key))"
	}
	return of("cityHash64") + " AS context_hash, " + of("metroHash64") + " AS " + prefix + "context_check"
}

// daysSQL repeats a read's bounds on tracks' timestamp, [from, to) (to zero: unbounded), as
// bounds on its day. tracks is sorted by day (ingest migration 6), and ClickHouse 18.16 uses
// that part of the index only for conditions on toDate(timestamp) itself: without these, a
// read of one day scans every granule of the month's events of its keys. toDate is monotonic
// in the server's time zone, so the day bounds keep every row the timestamp bounds keep.
func daysSQL(from, to time.Time, a *args) string {
	q := ` AND toDate(timestamp) >= toDate(toDateTime(` + a.add(from.Unix()) + `))`
	if !to.IsZero() {
		// timestamp < ceil(to) holds whole seconds: its day is at most the day of the second
		// before (a day read [d, d+1) would otherwise take the whole of d+1 too).
		q += ` AND toDate(timestamp) <= toDate(toDateTime(` + a.add(ceilSecond(to)-1) + `))`
	}
	return q
}

// beforeSQL bounds a read of tracks to events before to, to the millisecond. The units are
// those first exposed before to in milliseconds (first_ms < to), and a read ending at a stop
// time or a refresh's clock (not a whole second) must keep their events of that last second:
// timestamp (whole seconds, which the index sorts by) is bounded by to rounded up, and
// timestamp_ms by to itself.
func beforeSQL(to time.Time, a *args) string {
	return ` AND timestamp < toDateTime(` + a.add(ceilSecond(to)) + `) AND timestamp_ms < ` + a.add(uint64(to.UnixMilli()))
}

// ceilSecond is t in unix seconds, rounded up.
func ceilSecond(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}

// shortRawSpan is the longest stretch of raw events whose join puts the events, not the units,
// in the hash table (rawSQL), and that SumsOf reads for several metrics in one query.
var shortRawSpan = 48 * time.Hour

// firstExposuresSQL selects (context_kind, context_key, first_ms) of the units of x's slice
// whose first exposure is in [cohortFrom, cohortTo) (unix ms; 0: unbounded): from the units
// snapshot when there is one, else merged from experiment_units (or a rollout's exposures).
func firstExposuresSQL(x Experiment, cohortFrom, cohortTo int64, a *args) string {
	var q string
	switch {
	case x.units != 0:
		q = `SELECT context_kind, context_key, first_ms FROM (` + x.snapshotUnitsSQL(false, a) + `) WHERE 1`
	case x.rollout():
		q = `SELECT context_kind, context_key, first_ms FROM (` + unitsSQL(x, a) + `) WHERE 1`
	default:
		q = `SELECT context_kind, context_key, first_ms FROM (SELECT context_kind, context_key, minMerge(first_exposed_ms) AS first_ms FROM experiment_units
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + x.slice() + ` GROUP BY context_kind, context_key) WHERE 1`
	}
	if cohortFrom > 0 {
		q += " AND first_ms >= " + a.add(uint64(cohortFrom))
	}
	if cohortTo > 0 {
		q += " AND first_ms < " + a.add(uint64(cohortTo))
	}
	return q
}
