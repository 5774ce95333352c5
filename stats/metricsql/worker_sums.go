package metricsql

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// Sums grouped in the worker. On 18.16 the per-context GROUP BY of the sums is the refresh's
// largest cost, and most of it is not the grouping but the aggregate functions, called one row
// at a time: a pass of 1.67M units and five metrics over 14 days of rollups groups its 12M rows
// by hash alone in 0.85 s, and with the parts' sums, the variation and the per-variant sums in
// 2.0-2.4 s, however the aggregates are written (sumIf per part, plain sums over zeroed columns,
// sumForEach over an array, the variation as a number: all within 0.2 s of each other). So when
// the units' hashes are distinct (HashedUnits), ClickHouse only selects the rows — the units,
// the rollups or the totals and the folds they lack, the raw tail's events as delivered, the
// CUPED covariates' pre-periods among them (beyond 64 conditions, grouped per context as
// before) — and the results worker drops the copies of an event, joins the events with its
// units and adds every row up per context and per variation (sumsInWorker). Every row is the
// same as the SQL's, and every event is tested as the SQL's join and countIf/sumIf test it, so
// the sums are the same up to the order of floating-point additions; the percentile caps are
// taken from the same per-context values in one read, where the SQL computes every capped
// metric's values twice.
//
// The rows of a rollup arrive sorted by fold, then bucket: a context's rows are far apart, and
// adding each row to its context where it arrives misses the CPU's caches on every row (2 s
// per 7M rows, against 0.8 s to read them). The rows are therefore first appended to their
// bucket's buffer, and each bucket is then added up on its own, its contexts' index and sums
// small enough to stay in cache (41M rows of a full refresh: 0.6 s). The buffers hold a pass's
// rows, so passes are sized by WorkerUnitsPerPass rather than UnitsPerPass.

// GroupInWorker makes SumsOf group per context in the worker whenever the units' hashes are
// distinct (a variable so that tests can compare both ways).
var GroupInWorker = true

// WorkerUnitsPerPass is how many units one pass of sumsInWorker reads at most: its rows (about
// eight per unit for five metrics over two weeks, 32 bytes each) are buffered in memory.
var WorkerUnitsPerPass int64 = 500_000

// WorkerPassesFor is the number of passes of the sums added up in the worker for an experiment
// with this many units.
func WorkerPassesFor(units int64) int {
	return int(min(max((units+WorkerUnitsPerPass-1)/WorkerUnitsPerPass, 1), sliceBuckets))
}

// workerRow is a row read for sumsInWorker: its source tag (src of perContextSQL), the
// context's hash, the events (a unit's variation number for src 0) and the value sum.
type workerRow struct {
	h   uint64
	ev  int64
	vs  float64
	src uint8
}

// workerSums adds up the rows of a sums computation per context, then per variation.
type workerSums struct {
	reqs  []SumsRequest
	main  []*Metric // per request: the metric whose values the main sums are of
	den   []*Metric // a ratio's denominator, else nil
	cuped []bool    // the covariate is read (src 2+2i)
	nsrc  int
	// fromTotals lists, per element j of the totals' arrays (index j-1), the srcs it adds to.
	fromTotals [][]int
	caps       [][2]bounds // per request: main's and den's (percentile caps once known)
	// percentile: the metrics capped at a percentile of their values, each with the src its
	// values are read from and, once read, its values (non-zero, of units it counts).
	percentile []*quantileInput
	// held: per request, whether its sums wait for percentile caps (its values are kept).
	held  []bool
	kept  [][]keptValue
	sums  [][]VariantSums // [request][variation number - 1]
	units []int64         // units seen per variation number - 1
	// rawParts are the conversion-window parts whose raw tail is read at once (combinesRaw),
	// none otherwise; when its events are joined here with the units (joinRaw), rawConds are
	// their conditions, covConds those of the CUPED covariates' tail when they are read as
	// events too (their bits follow rawConds'; at most 64 in all), and windows the conditions'
	// windows as bucket tests them.
	rawParts []rawPart
	rawConds []*rawCondition
	covConds []*rawCondition
	windows  []rawWindow
	// per-bucket scratch
	index  unitIndex
	seen   eventSet
	codes  []int64
	firsts []int64 // the units' first exposures (unix ms)
	events []int64
	values []float64
}

// rawWindow is a raw read's condition as the worker tests it once an event's key and filters
// have (its bit of the event's mask): the window [first + start, first + end) in ms — a
// conversion window, or a CUPED pre-period [first - preperiod, first) — for the units first
// exposed from cohort on (ms: the covariates' tail is the units' first exposed in the tail;
// math.MinInt64 for every unit), and the srcs of the parts that count it.
type rawWindow struct {
	start, end, cohort int64
	srcs               []int
}

// rawEvent is an event of the raw tail as delivered (rawEventsSQL): its context's hash, time
// (unix ms), value, the conditions its key and filters meet (bit c), and its id.
type rawEvent struct {
	h    uint64
	ts   int64
	v    float64
	mask uint64
	id   uuid.UUID
}

type version struct {
	key     string
	version int64
}

type quantileInput struct {
	metric *Metric
	src    int
	values []float64
}

// keptValue is one unit's values for a request whose sums wait for percentile caps.
type keptValue struct {
	code    int32
	has     float64
	v, d, c float64
}

// OneReadTail is the longest raw tail the sums added up in the worker read in one query: a day
// and the results workers' settle margin (an hour), with an hour to spare — what a refresh reads
// when it leaves the day just ended to be folded after its snapshot. At 5M units the join of a
// 12 h tail held 0.6-0.7 GB and took 0.4-0.9 s less than in three queries; of a 25 h tail 0.99
// GB, and 0.8 s less (4.3 s against 5.1 s); its events deduplicated for the worker to join
// 0.89 GB, and as delivered, for the worker to deduplicate too (rawEventsSQL), 0.29 GB; a day's
// fold holds 1.55-1.67 GB.
const OneReadTail = 26 * time.Hour

// sumsInWorker is SumsOf's computation with the per-context grouping done here (see above);
// x's units have distinct hashes. The raw tail is read while the first pass is, and each pass
// is read while the one before is added up (two passes' buffers).
func sumsInWorker(ctx context.Context, conn driver.Conn, x Experiment, reqs []SumsRequest, s Snapshot) ([][]VariantSums, error) {
	if 2*len(reqs) >= totalsSrc {
		return nil, fmt.Errorf("metricsql: too many metrics in one pass (%d)", len(reqs)) // src is a UInt8, as in perContextSQL
	}
	variations, units, cohort, err := unitVariations(ctx, conn, x, s.FoldedUpTo)
	if err != nil {
		return nil, err
	}
	w := newWorkerSums(x, reqs, s, len(variations))
	if len(variations) == 0 {
		return w.finish(variations), nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The raw tail once for every pass: reading its events (and, beyond 64 conditions, their
	// deduplication and joins) is what costs, and reading it per pass would cost it again. A
	// tail of at most OneReadTail read for several metrics at once is one query, which holds
	// less than a day's fold does; a longer one is read in the SQL's passes (UnitsPerPass),
	// which ClickHouse's memory is sized for.
	if err := w.joinRaw(x, s); err != nil {
		return nil, err
	}
	raw, events, covariates := make([][]workerRow, sliceBuckets), make([][]rawEvent, sliceBuckets), make([][]rawEvent, sliceBuckets)
	rawPasses := min(max(s.Passes, 1), sliceBuckets)
	if len(w.rawParts) > 0 && s.Now.Sub(s.FoldedUpTo) <= OneReadTail {
		rawPasses = 1
	}
	// The rows grouped by ClickHouse and the events joined here are read side by side.
	rawRead := make(chan error, 3)
	readRaw := func(read func(px Experiment) error) {
		rawRead <- func() error {
			for p := 0; p < rawPasses; p++ {
				if err := read(x.pass(p, rawPasses)); err != nil {
					return fmt.Errorf("metricsql: sums' raw events: %w", err)
				}
			}
			return nil
		}()
	}
	go readRaw(func(px Experiment) error {
		q, a, err := w.rawSQL(px, s)
		if err != nil || q == "" {
			return err
		}
		return scatter(ctx, conn, q, a, raw, 0)
	})
	go readRaw(func(px Experiment) error {
		if w.rawConds == nil {
			return nil
		}
		var a args
		lo, hi := windowUnits(w.rawParts, s.FoldedUpTo, s.Now)
		q, err := rawEventsSQL(px, w.rawConds, 0, s.FoldedUpTo, s.Now, lo, hi, &a)
		if err != nil {
			return err
		}
		return scatterEvents(ctx, conn, q, a, events)
	})
	// The CUPED covariates' tail: the pre-periods of the units first exposed since the folds
	// (none: no such unit, as when an experiment's traffic only re-exposes its units).
	go readRaw(func(px Experiment) error {
		if w.covConds == nil || cohort == 0 {
			return nil
		}
		var a args
		q, err := rawEventsSQL(px, w.covConds, len(w.rawConds), s.FoldedUpTo.Add(-w.longestPreperiod()), s.Now, s.FoldedUpTo.UnixMilli(), 0, &a)
		if err != nil {
			return err
		}
		return scatterEvents(ctx, conn, q, a, covariates)
	})
	passes := WorkerPassesFor(units)
	free, full, read := make(chan *passRows, 2), make(chan *passRows, 1), make(chan error, 1)
	for range 2 {
		free <- &passRows{rows: make([][]workerRow, (sliceBuckets+passes-1)/passes)}
	}
	go func() {
		defer close(full)
		for p := 0; p < passes; p++ {
			var buf *passRows
			select {
			case buf = <-free:
			case <-ctx.Done():
				read <- ctx.Err()
				return
			}
			if err := w.readPass(ctx, conn, x.pass(p, passes), s, variations, buf); err != nil {
				read <- err
				return
			}
			select {
			case full <- buf:
			case <-ctx.Done():
				read <- ctx.Err()
				return
			}
		}
		read <- nil
	}()
	for range 3 {
		if err := <-rawRead; err != nil {
			return nil, err
		}
	}
	for buf := range full {
		for b := buf.lo; b < buf.hi; b++ {
			if err := w.bucket(append(events[b], covariates[b]...), buf.rows[b-buf.lo], raw[b]); err != nil {
				return nil, err
			}
			buf.rows[b-buf.lo], raw[b], events[b], covariates[b] = buf.rows[b-buf.lo][:0], nil, nil, nil
		}
		free <- buf
	}
	if err := <-read; err != nil {
		return nil, err
	}
	return w.finish(variations), nil
}

// passRows are a pass's rows, by bucket: rows[b-lo] for bucket b of [lo, hi).
type passRows struct {
	lo, hi int
	rows   [][]workerRow
}

// readPass reads pass x's units, rollup rows and totals into buf.
func (w *workerSums) readPass(ctx context.Context, conn driver.Conn, x Experiment, s Snapshot, variations []string, buf *passRows) error {
	buf.lo, buf.hi = x.lo, x.hi
	if buf.hi == 0 {
		buf.lo, buf.hi = 0, sliceBuckets
	}
	q, a := w.passSQL(x, s, variations)
	if err := scatter(ctx, conn, q, a, buf.rows, buf.lo); err != nil {
		return fmt.Errorf("metricsql: sums' rows: %w", err)
	}
	if t := x.totalsRead(s); t != nil {
		if err := w.readTotals(ctx, conn, x, t, buf.rows, buf.lo); err != nil {
			return fmt.Errorf("metricsql: sums' totals: %w", err)
		}
	}
	return nil
}

// unitVariations are the variations of x's units (each exposed to one) in order, how many units
// there are, and how many of them were first exposed from since on.
func unitVariations(ctx context.Context, conn driver.Conn, x Experiment, since time.Time) (variations []string, units, later int64, err error) {
	var a args
	q := `SELECT variation, count(), countIf(first_ms >= ` + a.add(since.UnixMilli()) + `) FROM (` + x.snapshotUnitsSQL(true, &a) + `)
		GROUP BY variation ORDER BY variation`
	rows, err := conn.Query(ctx, q, a...)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("metricsql: units' variations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		var n, l uint64
		if err := rows.Scan(&v, &n, &l); err != nil {
			return nil, 0, 0, err
		}
		variations, units, later = append(variations, v), units+int64(n), later+int64(l)
	}
	return variations, units, later, rows.Err()
}

func newWorkerSums(x Experiment, reqs []SumsRequest, s Snapshot, variations int) *workerSums {
	w := &workerSums{reqs: reqs, nsrc: 1 + 2*len(reqs)}
	for i, r := range reqs {
		main, den := r.Metric.parts()
		w.main, w.den, w.cuped = append(w.main, main), append(w.den, den), append(w.cuped, r.cuped())
		var c [2]bounds
		held := false
		for k, m := range []*Metric{main, den} {
			if m == nil {
				continue
			}
			b, percentile := m.fixedBounds()
			c[k] = b
			if percentile {
				held = true
				if !slices.ContainsFunc(w.percentile, func(q *quantileInput) bool { return q.metric.Key == m.Key && q.metric.Version == m.Version }) {
					w.percentile = append(w.percentile, &quantileInput{metric: m, src: 1 + 2*i + k})
				}
			}
		}
		w.caps, w.held = append(w.caps, c), append(w.held, held)
	}
	if t := x.totalsRead(s); t != nil {
		w.fromTotals = make([][]int, len(t.Parts))
		w.eachPart(func(m *Metric, part, src int) {
			if j := t.index(FoldKey{m.Key, m.Version, part}); j > 0 {
				w.fromTotals[j-1] = append(w.fromTotals[j-1], src)
			}
		})
	}
	w.kept = make([][]keptValue, len(reqs))
	w.sums = make([][]VariantSums, len(reqs))
	for i := range w.sums {
		w.sums[i] = make([]VariantSums, variations)
	}
	w.units = make([]int64, variations)
	return w
}

// workerShape is the rows' shape: contexts by hash, events as Int64, no arrays; the rollups read
// are those the totals lack when there are totals, which are read apart (readTotals).
func (x Experiment) workerShape(s Snapshot) rowShape {
	return rowShape{hashed: true, totals: x.totalsRead(s), ints: true}
}

// passSQL selects a pass's units (src 0, the variation's number in variations as events, the
// first exposure in ms as value_sum: exact in a float64) and its parts' rollup rows.
func (w *workerSums) passSQL(x Experiment, s Snapshot, variations []string) (string, args) {
	var a args
	shape := x.workerShape(s)
	head := `SELECT src, context_hash, if(src = 0, toInt64(indexOf(` + a.add(variations) + `, variation)), events) AS events, value_sum FROM (`
	members := []string{`SELECT toUInt8(0) AS src, cityHash64(context_kind, context_key) AS context_hash, variation, toInt64(0) AS events, toFloat64(first_ms) AS value_sum
		FROM (` + x.snapshotUnitsSQL(true, &a) + `)`}
	w.eachPart(func(m *Metric, part, src int) {
		members = append(members, rolledRowsSQL(x, m, part, src, s, shape, &a)...)
	})
	return head + strings.Join(members, "\n\t\tUNION ALL ") + `)`, a
}

// rawSQL selects the raw tail's rows of every part, grouped per context ("" when there are none),
// but those of the parts whose events are joined here (joinRaw).
func (w *workerSums) rawSQL(x Experiment, s Snapshot) (string, args, error) {
	var a args
	shape := x.workerShape(s)
	var members []string
	var err error
	w.eachPart(func(m *Metric, part, src int) {
		if err != nil || (len(w.rawParts) > 0 && part == PartMetric) || (w.covConds != nil && part == PartCovariate) {
			return // read with the combined parts, or as events
		}
		var q string
		if q, err = rawRowsSQL(x, m, part, src, s, shape, &a); err == nil {
			members = append(members, q)
		}
	})
	if err != nil {
		return "", nil, err
	}
	if len(w.rawParts) > 0 && w.rawConds == nil {
		raw, err := rawPartsSQL(x, w.rawParts, s.FoldedUpTo, s.Now, true, &a)
		if err != nil {
			return "", nil, err
		}
		members = append(members, `SELECT `+shape.rawHead()+shape.tail()+` FROM (`+raw+`)`)
	}
	if len(members) == 0 {
		return "", nil, nil
	}
	return `SELECT src, context_hash, events, value_sum FROM (` + strings.Join(members, "\n\t\tUNION ALL ") + `)`, a, nil
}

// joinRaw lists the parts whose raw tail is read at once (combinesRaw: the conversion-window
// parts of several metrics, rawPartsSQL) and decides whether that read is joined with the units
// here: its events read as delivered (rawEventsSQL), each matched with its unit and tested
// against its conditions' windows in bucket. Its conditions must fit one mask (64); otherwise
// ClickHouse joins and groups them. The CUPED covariates' tail is then read as events too, a
// condition per covariate (its pre-period, for the units first exposed in the tail), when
// they fit the same mask; otherwise ClickHouse joins and groups it (rawRowsSQL).
func (w *workerSums) joinRaw(x Experiment, s Snapshot) error {
	if !x.combinesRaw(len(w.reqs), s) {
		return nil
	}
	w.eachPart(func(m *Metric, part, src int) {
		if part == PartMetric {
			w.rawParts = append(w.rawParts, rawPart{m, src})
		}
	})
	conds, err := rawConditions(x, w.rawParts, s.FoldedUpTo, s.Now)
	if err != nil || len(conds) > 64 {
		return err
	}
	w.rawConds, w.windows = conds, make([]rawWindow, len(conds))
	for c, cond := range conds {
		w.windows[c] = rawWindow{start: cond.m.WindowStart.Milliseconds(), end: cond.m.WindowEnd.Milliseconds(), cohort: math.MinInt64, srcs: cond.srcs}
	}
	var cov []*rawCondition
	var windows []rawWindow
	w.eachPart(func(m *Metric, part, src int) {
		if part == PartCovariate {
			cov = append(cov, &rawCondition{m: m, srcs: []int{src}})
			windows = append(windows, rawWindow{start: -m.CUPEDPreperiod.Milliseconds(), cohort: s.FoldedUpTo.UnixMilli(), srcs: []int{src}})
		}
	})
	if len(cov) > 0 && len(conds)+len(cov) <= 64 {
		w.covConds, w.windows = cov, append(w.windows, windows...)
	}
	return nil
}

// longestPreperiod is the longest CUPED pre-period of the covariates read as events.
func (w *workerSums) longestPreperiod() time.Duration {
	var p time.Duration
	for _, c := range w.covConds {
		p = max(p, c.m.CUPEDPreperiod)
	}
	return p
}

// eachPart calls fn for every part read, in perContextSQL's order: each request's main part,
// then its ratio denominator or its CUPED covariate.
func (w *workerSums) eachPart(fn func(m *Metric, part, src int)) {
	for i := range w.reqs {
		fn(w.main[i], PartMetric, 1+2*i)
		switch {
		case w.den[i] != nil:
			fn(w.den[i], PartMetric, 2+2*i)
		case w.cuped[i]:
			fn(w.main[i], PartCovariate, 2+2*i)
		}
	}
}

// readTotals reads the elements of the totals t the requests read into into (by bucket, from
// lo): one row per context with those elements side by side, each element with events or a
// value buffered as a row of every src it adds to. (Unnesting the arrays in ClickHouse
// instead, one row per element, cost about a third more: 21.5M rows against 5M at 5M units.)
func (w *workerSums) readTotals(ctx context.Context, conn driver.Conn, x Experiment, t *Totals, into [][]workerRow, lo int) error {
	var js []int
	var cols []string
	for j, srcs := range w.fromTotals {
		if len(srcs) > 0 {
			js = append(js, j+1)
			cols = append(cols, fmt.Sprintf("events[%d], value_sums[%d]", j+1, j+1))
		}
	}
	if len(js) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT context_hash, `+strings.Join(cols, ", ")+` FROM experiment_metric_totals
		WHERE totals_id = ?`+x.bucketSlice(), uint64(t.ID))
	if err != nil {
		return err
	}
	defer rows.Close()
	var h uint64
	events, values := make([]int64, len(js)), make([]float64, len(js))
	dest := []any{&h}
	for k := range js {
		dest = append(dest, &events[k], &values[k])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for k, j := range js {
			if events[k] == 0 && values[k] == 0 {
				continue
			}
			for _, src := range w.fromTotals[j-1] {
				if err := buffer(into, lo, h, workerRow{h: h, ev: events[k], vs: values[k], src: uint8(src)}); err != nil {
					return err
				}
			}
		}
	}
	return rows.Err()
}

// buffer appends r, of context hash h, to its bucket's buffer, into[b-lo] for bucket b.
func buffer[T any](into [][]T, lo int, h uint64, r T) error {
	b := int(h%sliceBuckets) - lo
	if b < 0 || b >= len(into) {
		return fmt.Errorf("a row of context hash %d outside the pass's buckets", h)
	}
	into[b] = append(into[b], r)
	return nil
}

// scatter reads q's rows (src, context hash, events, value sum) into their buckets' buffers:
// into[b-lo] for bucket b.
func scatter(ctx context.Context, conn driver.Conn, q string, a args, into [][]workerRow, lo int) error {
	return scatterRows(ctx, conn, q, a, into, lo, func(r *workerRow) ([]any, *uint64) { return []any{&r.src, &r.h, &r.ev, &r.vs}, &r.h })
}

// scatterEvents reads q's raw events (rawEventsSQL: context hash, time, value, id, mask) into their
// buckets' buffers: into[b] for bucket b.
func scatterEvents(ctx context.Context, conn driver.Conn, q string, a args, into [][]rawEvent) error {
	return scatterRows(ctx, conn, q, a, into, 0, func(e *rawEvent) ([]any, *uint64) { return []any{&e.h, &e.ts, &e.v, &e.id, &e.mask}, &e.h })
}

// scatterRows reads q's rows into their buckets' buffers, into[b-lo] for bucket b: fields gives
// the scan destinations of a row's columns and its context hash, which picks the bucket. One
// destination list serves every row (a list per call would be allocated per row).
func scatterRows[T any](ctx context.Context, conn driver.Conn, q string, a args, into [][]T, lo int, fields func(*T) ([]any, *uint64)) error {
	rows, err := conn.Query(ctx, q, a...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r T
	dest, h := fields(&r)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := buffer(into, lo, *h, r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// bucket adds up one bucket's rows: per unit (a src 0 row), every row of its context, and every
// raw event of its context in a condition's window (the SQL's join and countIf/sumIf), each
// event once however many times it was delivered (the SQL's GROUP BY event_id and context and
// key); rows of contexts that are not units are left out, as the SQL's HAVING leaves them.
func (w *workerSums) bucket(events []rawEvent, parts ...[]workerRow) error {
	w.codes, w.firsts = w.codes[:0], w.firsts[:0]
	units := 0
	for _, rows := range parts {
		for _, r := range rows {
			if r.src == 0 {
				units++
			}
		}
	}
	w.index.reset(units)
	for _, rows := range parts {
		for _, r := range rows {
			if r.src != 0 {
				continue
			}
			if r.ev < 1 || int(r.ev) > len(w.units) {
				// The variations were read from the same units (under the experiment's refresh
				// lock, which keeps them as they are).
				return fmt.Errorf("metricsql: a unit (context hash %d) of a variation not among the units' variations", r.h)
			}
			w.index.put(r.h, int32(len(w.codes)))
			w.codes, w.firsts = append(w.codes, r.ev), append(w.firsts, int64(r.vs))
		}
	}
	n := len(w.codes) * w.nsrc
	w.events, w.values = slices.Grow(w.events[:0], n)[:n], slices.Grow(w.values[:0], n)[:n]
	clear(w.events)
	clear(w.values)
	for _, rows := range parts {
		for _, r := range rows {
			if r.src == 0 {
				continue
			}
			i := w.index.get(r.h)
			if i < 0 {
				continue
			}
			at := int(i) * w.nsrc
			w.events[at+int(r.src)] += r.ev
			w.values[at+int(r.src)] += r.vs
		}
	}
	w.seen.reset(len(events))
	for k := range events {
		e := &events[k]
		i := w.index.get(e.h)
		if i < 0 || e.mask == 0 || !w.seen.add(events, int32(k)) {
			continue // a unit exposed to several variations, an event no condition counts, or a copy
		}
		first, at := w.firsts[i], int(i)*w.nsrc
		for m := e.mask; m != 0; m &= m - 1 {
			c := &w.windows[bits.TrailingZeros64(m)]
			if e.ts >= first+c.start && e.ts < first+c.end && first >= c.cohort {
				for _, src := range c.srcs {
					w.events[at+src]++
					w.values[at+src] += e.v
				}
			}
		}
	}
	for i, code := range w.codes {
		w.unit(code, w.events[i*w.nsrc:(i+1)*w.nsrc], w.values[i*w.nsrc:(i+1)*w.nsrc])
	}
	return nil
}

// unitIndex finds a bucket's units by their context hash: open addressing on the hash's bits
// above the bucket's (the low ones are the same for every context of a bucket), sized to at
// most half full, small enough to stay in cache with the bucket's sums.
type unitIndex struct {
	slots []indexSlot
	mask  uint64
}

type indexSlot struct {
	h uint64
	i int32 // the unit's number + 1; 0: empty
}

func (x *unitIndex) reset(n int) {
	x.slots = emptyTable(x.slots, n)
	x.mask = uint64(len(x.slots) - 1)
}

// emptyTable is an open-addressing table for n entries, at most half full: slots reused when
// they are large enough, cleared, their number a power of two (at least 16).
func emptyTable[T any](slots []T, n int) []T {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if cap(slots) < size {
		return make([]T, size)
	}
	slots = slots[:size]
	clear(slots)
	return slots
}

func (x *unitIndex) put(h uint64, i int32) {
	for at := (h / sliceBuckets) & x.mask; ; at = (at + 1) & x.mask {
		if s := &x.slots[at]; s.i == 0 || s.h == h {
			s.h, s.i = h, i+1
			return
		}
	}
}

// get is h's unit number, -1 when h is not a unit's.
func (x *unitIndex) get(h uint64) int32 {
	for at := (h / sliceBuckets) & x.mask; ; at = (at + 1) & x.mask {
		s := x.slots[at]
		if s.i == 0 {
			return -1
		}
		if s.h == h {
			return s.i - 1
		}
	}
}

// eventSet finds the copies of a bucket's events: open addressing on a mix of their ids and
// contexts (ids are an SDK's, random or not: a time-ordered id's first bytes are its time), of
// the events' numbers in the bucket's list.
type eventSet struct {
	slots []int32 // an event's number + 1; 0: empty
	mask  uint64
	shift uint
}

func (x *eventSet) reset(n int) {
	x.slots = emptyTable(x.slots, n)
	x.mask, x.shift = uint64(len(x.slots)-1), uint(64-bits.TrailingZeros(uint(len(x.slots))))
}

// slot is where the events of context hash h and id start their probe.
func (x *eventSet) slot(h uint64, id uuid.UUID) uint64 {
	return (binary.LittleEndian.Uint64(id[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(id[8:]), 32) ^ h) * 0x9e3779b97f4a7c15 >> x.shift
}

// add adds events[k] unless an event of the same context, id and conditions was added before:
// an event ingest received twice (delivery is at least once), which counts once.
func (x *eventSet) add(events []rawEvent, k int32) bool {
	e := &events[k]
	for at := x.slot(e.h, e.id); ; at = (at + 1) & x.mask {
		s := x.slots[at]
		if s == 0 {
			x.slots[at] = k + 1
			return true
		}
		if o := &events[s-1]; o.id == e.id && o.h == e.h && o.mask == e.mask {
			return false
		}
	}
}

// unit adds one unit's values (events and value sums per src) to its variation's sums, or
// keeps them for a request waiting for its percentile caps; and collects the percentile-capped
// metrics' values.
func (w *workerSums) unit(code int64, events []int64, values []float64) {
	w.units[code-1]++
	for _, q := range w.percentile {
		m := q.metric
		if v := unitValueOf(m.Kind, events[q.src], values[q.src]); hasOf(m.Kind, events[q.src]) == 1 && v != 0 && !math.IsNaN(v) {
			q.values = append(q.values, v)
		}
	}
	for i := range w.reqs {
		e1, s1, e2, s2 := events[1+2*i], values[1+2*i], events[2+2*i], values[2+2*i]
		main := w.main[i]
		v, d, c, has := unitValueOf(main.Kind, e1, s1), 0.0, 0.0, hasOf(main.Kind, e1)
		switch {
		case w.den[i] != nil:
			d, has = unitValueOf(w.den[i].Kind, e2, s2), 1
		case w.cuped[i]:
			c = unitValueOf(main.Kind, e2, s2)
		}
		if w.held[i] {
			w.kept[i] = append(w.kept[i], keptValue{code: int32(code), has: has, v: v, d: d, c: c})
			continue
		}
		w.sums[i][code-1].addUnit(has, v, d, c, w.caps[i])
	}
}

// addUnit adds a unit's values, winsorized by caps (main's, den's), as the SQL's sums do.
func (t *VariantSums) addUnit(has, v, d, c float64, caps [2]bounds) {
	mv, md, mc := caps[0].apply(v), caps[1].apply(d), caps[0].apply(c)
	t.N += int64(has)
	t.Sum += has * mv
	t.SumSquares += has * mv * mv
	t.DenSum += has * md
	t.DenSumSquares += has * md * md
	t.MainDenProduct += has * mv * md
	t.CovSum += has * mc
	t.CovSumSquares += has * mc * mc
	t.MainCovProduct += has * mv * mc
}

// apply winsorizes v as capExpr does: ClickHouse's least and greatest (a NaN value gives the
// bound).
func (b bounds) apply(v float64) float64 {
	if b.upper != nil && !(v < *b.upper) {
		v = *b.upper
	}
	if b.lower != nil && !(v > *b.lower) {
		v = *b.lower
	}
	return v
}

// unitValueOf is unitValue's value.
func unitValueOf(kind string, events int64, sum float64) float64 {
	switch kind {
	case Proportion:
		if events > 0 {
			return 1
		}
		return 0
	case Count:
		return float64(events)
	case Mean:
		if events > 0 {
			return sum / float64(events)
		}
		return 0
	}
	return sum
}

// hasOf is hasExpr's value.
func hasOf(kind string, events int64) float64 {
	if kind == Mean && events <= 0 {
		return 0
	}
	return 1
}

// finish takes the percentile caps, adds up the kept values with them, and returns the sums per
// request, by variation (those with units), as sumsOf does.
func (w *workerSums) finish(variations []string) [][]VariantSums {
	capOf := map[version]bounds{}
	for _, q := range w.percentile {
		if v := quantileExact(q.values, *q.metric.Winsorize.Upper); !math.IsNaN(v) {
			capOf[version{q.metric.Key, q.metric.Version}] = bounds{nil, &v}
		}
	}
	for i, kept := range w.kept {
		if !w.held[i] {
			continue
		}
		caps := w.caps[i]
		for k, m := range []*Metric{w.main[i], w.den[i]} {
			if m == nil {
				continue
			}
			if b, ok := capOf[version{m.Key, m.Version}]; ok {
				caps[k] = b
			}
		}
		for _, u := range kept {
			w.sums[i][u.code-1].addUnit(u.has, u.v, u.d, u.c, caps)
		}
	}
	out := make([][]VariantSums, len(w.reqs))
	for i := range out {
		out[i] = []VariantSums{}
		for code, v := range variations {
			if w.units[code] > 0 {
				s := w.sums[i][code]
				s.Variation = v
				out[i] = append(out[i], s)
			}
		}
	}
	return out
}

// quantileExact is ClickHouse's quantileExact(level) of values: the element a partial sort puts
// at level × n (truncated; the last for a level of 1 or more); NaN when there are none.
func quantileExact(values []float64, level float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	n := len(values) - 1
	if level < 1 {
		n = int(level * float64(len(values)))
	}
	slices.Sort(values)
	return values[n]
}
