package metricsql

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/stats/internal/chtest"
)

func chDatabase(t *testing.T) driver.Conn { return chtest.Database(t, "metricsql") }

type event struct {
	id       uuid.UUID
	kind     string
	key      string
	ts       int64 // ms
	value    float64
	noValue  bool // sent without a value (has_value = 0, stored as 0)
	currency string
}

type unit struct {
	key       string
	variation string
	firstMs   int64
	multiple  bool
}

// population generates a seeded experiment: units with first exposures over three days, a few
// exposed to both variations, and purchase events before, inside and after the conversion
// window, some with duplicate deliveries and some sharing an id with another context's event.
// The effect: variation B buys more.
func population(r *rand.Rand, start time.Time, n int) ([]unit, []event, [][5]any) {
	var units []unit
	var events []event
	var exposures [][5]any // key, variation, ts ms, event id, experiment
	for i := 0; i < n; i++ {
		u := unit{key: fmt.Sprintf("u%05d", i), variation: "a"}
		if r.IntN(2) == 1 {
			u.variation = "b"
		}
		u.firstMs = start.Add(time.Duration(r.Int64N(int64(72 * time.Hour)))).UnixMilli()
		exposures = append(exposures, [5]any{u.key, u.variation, u.firstMs, uuid.New(), "exp1"})
		// A later repeat exposure (same variation): changes nothing.
		exposures = append(exposures, [5]any{u.key, u.variation, u.firstMs + 3600_000, uuid.New(), "exp1"})
		if r.IntN(100) == 0 {
			u.multiple = true
			other := map[string]string{"a": "b", "b": "a"}[u.variation]
			exposures = append(exposures, [5]any{u.key, other, u.firstMs + 7200_000, uuid.New(), "exp1"})
		}
		units = append(units, u)
		rate := 1.0
		if u.variation == "b" {
			rate = 1.4
		}
		k := int(r.ExpFloat64() * rate * 2)
		for j := 0; j < k; j++ {
			// From 5 days before to 10 days after the first exposure.
			offset := time.Duration(r.Int64N(int64(15*24*time.Hour))) - 5*24*time.Hour
			e := event{id: uuid.New(), kind: "user", key: u.key, ts: u.firstMs + offset.Milliseconds(), value: math.Round(r.ExpFloat64()*4000) / 100,
				currency: []string{"EUR", "USD"}[r.IntN(2)]}
			if r.IntN(8) == 0 {
				e.value, e.noValue = 0, true // a Track without a value
			}
			events = append(events, e)
			if r.IntN(20) == 0 {
				events = append(events, e) // a duplicate delivery of the same event
			}
			if r.IntN(30) == 0 && len(units) > 1 {
				// An SDK that reused the id for another context's event: a different event, which
				// counts for that context too (events are identified by context, key and id).
				other := units[r.IntN(len(units)-1)]
				f := e
				f.key, f.ts = other.key, other.firstMs+offset.Milliseconds()
				events = append(events, f)
			}
		}
	}
	return units, events, exposures
}

// insertColumns inserts columns (name, slice) with one native batch naming every column.
func insertColumns(t *testing.T, conn driver.Conn, table string, names []string, cols ...any) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+table+" ("+strings.Join(names, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			t.Fatalf("%s.%s: %v", table, names[i], err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func insert(t *testing.T, conn driver.Conn, env string, events []event, exposures [][5]any) {
	insertWithReason(t, conn, env, "SPLIT", events, exposures)
}

// insertWithReason writes exposures with the given evaluation reason, and the events.
func insertWithReason(t *testing.T, conn driver.Conn, env, reason string, events []event, exposures [][5]any) {
	t.Helper()
	insertExposures(t, conn, env, reason, exposures, nil)
	insertEvents(t, conn, env, events)
}

// insertExposures writes exposures received at received[i] (nil: at their own time).
func insertExposures(t *testing.T, conn driver.Conn, env, reason string, exposures [][5]any, received []time.Time) {
	t.Helper()
	n := len(exposures)
	var (
		envs, kinds, keys, flags, vars, reasons, rules, exps, sdkN, sdkV = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ids      = make([]uuid.UUID, n)
		ts       = make([]time.Time, n)
		ms       = make([]uint64, n)
		client   = make([]int64, n)
		clamped  = make([]uint8, n)
		versions = make([]uint64, n)
	)
	for i, x := range exposures {
		m := x[2].(int64)
		envs[i], ids[i], ts[i], ms[i], client[i], kinds[i], keys[i] = env, x[3].(uuid.UUID), time.UnixMilli(m).UTC(), uint64(m), m, "user", x[0].(string)
		flags[i], vars[i], versions[i], reasons[i], exps[i], sdkN[i], sdkV[i] = "checkout", x[1].(string), 3, reason, x[4].(string), "go", "test"
	}
	if received == nil {
		received = ts
	}
	insertColumns(t, conn, "exposures", []string{"environment_id", "event_id", "timestamp", "timestamp_ms", "client_timestamp_ms",
		"received_at", "clamped", "context_kind", "context_key", "flag_key", "variation_key", "flag_version", "reason", "rule_id",
		"experiment_key", "sdk_name", "sdk_version"}, envs, ids, ts, ms, client, received, clamped, kinds, keys, flags, vars, versions, reasons, rules, exps, sdkN, sdkV)
}

// insertEvents writes purchase events, received at their own time.
func insertEvents(t *testing.T, conn driver.Conn, env string, events []event) {
	t.Helper()
	n := len(events)
	envs, kinds, keys, sdkN, sdkV := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	eventKeys := make([]string, n)
	ids, ts, ms, client, clamped := make([]uuid.UUID, n), make([]time.Time, n), make([]uint64, n), make([]int64, n), make([]uint8, n)
	values, hasValue := make([]float64, n), make([]uint8, n)
	pk, pt, pv := make([][]string, n), make([][]string, n), make([][]string, n)
	for i, e := range events {
		envs[i], ids[i], ts[i], ms[i], client[i], kinds[i], keys[i] = env, e.id, time.UnixMilli(e.ts).UTC(), uint64(e.ts), e.ts, e.kind, e.key
		eventKeys[i], values[i], hasValue[i], sdkN[i], sdkV[i] = "purchase", e.value, 1, "go", "test"
		if e.noValue {
			hasValue[i] = 0
		}
		pk[i], pt[i], pv[i] = []string{"currency"}, []string{"string"}, []string{e.currency}
	}
	insertColumns(t, conn, "tracks", []string{"environment_id", "event_id", "timestamp", "timestamp_ms", "client_timestamp_ms", "received_at",
		"clamped", "context_kind", "context_key", "event_key", "value", "has_value", "properties.key", "properties.type", "properties.value",
		"sdk_name", "sdk_version"}, envs, ids, ts, ms, client, ts, clamped, kinds, keys, eventKeys, values, hasValue, pk, pt, pv, sdkN, sdkV)
}

// partCap applies a metric's absolute winsorization to a value.
func partCap(m *Metric, x float64) float64 {
	if m.Winsorize.Type != "absolute" {
		return x
	}
	if m.Winsorize.Upper != nil {
		x = math.Min(x, *m.Winsorize.Upper)
	}
	if m.Winsorize.Lower != nil {
		x = math.Max(x, *m.Winsorize.Lower)
	}
	return x
}

// expected computes a metric's per-variant sums independently of ClickHouse.
func expected(units []unit, events []event, m *Metric, now int64, cuped bool, lower, upper *float64) map[string]VariantSums {
	byUnit := map[string][]event{}
	type identity struct {
		key string // the context's (one event key, one context kind here)
		id  uuid.UUID
	}
	seen := map[identity]bool{}
	for _, e := range events {
		if seen[identity{e.key, e.id}] {
			continue
		}
		seen[identity{e.key, e.id}] = true
		byUnit[e.key] = append(byUnit[e.key], e)
	}
	match := func(e event, mm *Metric) bool {
		for _, f := range mm.Filters {
			ok := false
			for _, v := range f.Values {
				ok = ok || v == e.currency
			}
			if !ok {
				return false
			}
		}
		return e.ts < now
	}
	value := func(u unit, mm *Metric, pre bool) (float64, bool) {
		n, sum := 0, 0.0
		for _, e := range byUnit[u.key] {
			if !match(e, mm) || (mm.Kind == Mean && e.noValue) {
				continue // a mean averages the events that carry a value
			}
			in := e.ts >= u.firstMs+mm.WindowStart.Milliseconds() && e.ts < u.firstMs+mm.WindowEnd.Milliseconds()
			if pre {
				in = e.ts < u.firstMs && e.ts+mm.CUPEDPreperiod.Milliseconds() >= u.firstMs
			}
			if in {
				n++
				sum += e.value
			}
		}
		switch mm.Kind {
		case Proportion:
			return map[bool]float64{true: 1, false: 0}[n > 0], true
		case Count:
			return float64(n), true
		case Mean:
			if n == 0 {
				return 0, false
			}
			return sum / float64(n), true
		}
		return sum, true
	}
	capv := func(x float64) float64 {
		if upper != nil {
			x = math.Min(x, *upper)
		}
		if lower != nil {
			x = math.Max(x, *lower)
		}
		return x
	}
	out := map[string]VariantSums{}
	for _, u := range units {
		if u.multiple || u.firstMs >= now {
			continue
		}
		s := out[u.variation]
		s.Variation = u.variation
		if m.Kind == Ratio {
			// Each part with its own metric's (absolute) cap; a ratio has none of its own.
			num, _ := value(u, m.Numerator, false)
			den, _ := value(u, m.Denominator, false)
			num, den = partCap(m.Numerator, num), partCap(m.Denominator, den)
			s.N++
			s.Sum += num
			s.SumSquares += num * num
			s.DenSum += den
			s.DenSumSquares += den * den
			s.MainDenProduct += num * den
			out[u.variation] = s
			continue
		}
		v, has := value(u, m, false)
		if !has {
			continue
		}
		v = capv(v)
		s.N++
		s.Sum += v
		s.SumSquares += v * v
		if cuped {
			c, _ := value(u, m, true)
			c = capv(c)
			s.CovSum += c
			s.CovSumSquares += c * c
			s.MainCovProduct += v * c
		}
		out[u.variation] = s
	}
	return out
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func compare(t *testing.T, got []VariantSums, want map[string]VariantSums) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d variants, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w := want[g.Variation]
		if g.N != w.N || !near(g.Sum, w.Sum) || !near(g.SumSquares, w.SumSquares) || !near(g.DenSum, w.DenSum) ||
			!near(g.DenSumSquares, w.DenSumSquares) || !near(g.MainDenProduct, w.MainDenProduct) || !near(g.CovSum, w.CovSum) ||
			!near(g.CovSumSquares, w.CovSumSquares) || !near(g.MainCovProduct, w.MainCovProduct) {
			t.Fatalf("variation %s:\n got  %+v\n want %+v", g.Variation, g, w)
		}
	}
}

// foldAll folds the days from x's start until until as the results workers fold: every metric
// of a day in one query, and the CUPED cohort of each metric with a pre-period.
func foldAll(t *testing.T, conn driver.Conn, x Experiment, ms []*Metric, until time.Time) Folds {
	t.Helper()
	folds := Folds{}
	foldDays(t, conn, x, ms, x.Start, until, folds)
	return folds
}

// foldDays folds the days [from, until) as foldAll does, adding the folds to folds.
func foldDays(t *testing.T, conn driver.Conn, x Experiment, ms []*Metric, from, until time.Time, folds Folds) {
	t.Helper()
	ctx := context.Background()
	for d := from; d.Before(until); d = d.Add(24 * time.Hour) {
		ids, err := FoldDays(ctx, conn, x, ms, d)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			folds.Add(m, PartMetric, ids[i])
			if m.CUPEDPreperiod > 0 {
				id, err := FoldCovariates(ctx, conn, x, m, d)
				if err != nil {
					t.Fatal(err)
				}
				folds.Add(m, PartCovariate, id)
			}
		}
	}
}

// TestSumsMatchAnIndependentComputation checks every metric kind, filters, windows, CUPED,
// winsorization, duplicate events and multiple exposures against sums computed in Go from the
// events the test inserted — with everything read raw, and again with most days folded into
// the daily rollup.
func TestSumsMatchAnIndependentComputation(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 11))
	units, events, exposures := population(r, start, 3000)
	insert(t, conn, "env1", events, exposures)
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: start.Add(-7 * 24 * time.Hour)}
	week := 7 * 24 * time.Hour
	now := start.Add(20 * 24 * time.Hour)
	fifty := 50.0
	count := &Metric{Key: "orders", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week}
	sum := &Metric{Key: "revenue", Version: 2, Kind: Sum, EventKey: "purchase", WindowEnd: week, CUPEDPreperiod: week}
	metrics := []struct {
		name         string
		m            *Metric
		cuped        bool
		lower, upper *float64
	}{
		{"proportion", &Metric{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week}, false, nil, nil},
		{"count", count, false, nil, nil},
		{"sum with CUPED", sum, true, nil, nil},
		{"mean, EUR only, window 1h-3d", &Metric{Key: "aov-eur", Version: 1, Kind: Mean, EventKey: "purchase", WindowStart: time.Hour,
			WindowEnd: 72 * time.Hour, Filters: []Filter{{Property: "currency", Op: "in", Values: []any{"EUR"}}}}, false, nil, nil},
		{"sum winsorized at 50", &Metric{Key: "rev-capped", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week,
			Winsorize: Winsorize{Type: "absolute", Upper: &fifty}}, false, nil, &fifty},
		{"ratio revenue per order", &Metric{Key: "rpo", Version: 1, Kind: Ratio, Numerator: sum, Denominator: count}, false, nil, nil},
	}
	three := 3.0
	cappedCount := &Metric{Key: "orders-capped", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week,
		Winsorize: Winsorize{Type: "absolute", Upper: &three}}
	metrics = append(metrics, struct {
		name         string
		m            *Metric
		cuped        bool
		lower, upper *float64
	}{"ratio of capped parts", &Metric{Key: "rpo-capped", Version: 1, Kind: Ratio, Numerator: metrics[4].m, Denominator: cappedCount}, false, nil, nil})
	for _, tc := range metrics {
		t.Run("raw/"+tc.name, func(t *testing.T) {
			got, err := Sums(ctx, conn, x, tc.m, Snapshot{FoldedUpTo: x.Start, Now: now}, tc.cuped)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, got, expected(units, events, tc.m, now.UnixMilli(), tc.cuped, tc.lower, tc.upper))
		})
	}
	// Three passes over slices of the contexts add up to the same sums.
	for _, tc := range metrics {
		t.Run("3 passes/"+tc.name, func(t *testing.T) {
			got, err := Sums(ctx, conn, x, tc.m, Snapshot{FoldedUpTo: x.Start, Now: now, Passes: 3}, tc.cuped)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, got, expected(units, events, tc.m, now.UnixMilli(), tc.cuped, tc.lower, tc.upper))
		})
	}
	// Fold every day up to day 12 (and the CUPED cohorts), then read rollups + raw.
	folded := start.Add(12 * 24 * time.Hour)
	foldedTogether := []*Metric{metrics[0].m, count, sum, metrics[3].m, metrics[4].m, cappedCount}
	folds := foldAll(t, conn, x, foldedTogether, folded)
	// Folding a day again (a worker that crashed before recording the first fold) writes rows
	// under another fold id; only the recorded folds are read, so nothing counts twice.
	for _, m := range []*Metric{count, sum} {
		if _, err := FoldDay(ctx, conn, x, m, start.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := FoldCovariates(ctx, conn, x, sum, start.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range metrics {
		t.Run("folded/"+tc.name, func(t *testing.T) {
			got, err := Sums(ctx, conn, x, tc.m, Snapshot{FoldedUpTo: folded, Folds: folds, Now: now, Passes: 2}, tc.cuped)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, got, expected(units, events, tc.m, now.UnixMilli(), tc.cuped, tc.lower, tc.upper))
		})
	}
	// The same from a materialized units snapshot (what the results workers read), written in
	// several slices.
	saved := StateRowsPerSlice
	StateRowsPerSlice = 700
	snapshot, err := MaterializeUnits(ctx, conn, x, now)
	StateRowsPerSlice = saved
	if err != nil {
		t.Fatal(err)
	}
	snapshotID, materialized := snapshot.ID, snapshot.Exposure
	if !snapshot.distinctHashes {
		t.Fatal("the units' context hashes are distinct, but the snapshot says they are not")
	}
	// Grouped by the contexts' hash (distinct here), and by their strings (after a collision).
	byStrings := snapshot
	byStrings.distinctHashes = false
	for _, u := range []Units{snapshot, byStrings} {
		if got := x.WithUnits(u).contextGroup(); strings.Contains(got, "cityHash64") != u.distinctHashes {
			t.Fatalf("distinct hashes %v, grouped by %s", u.distinctHashes, got)
		}
		for _, tc := range metrics {
			t.Run(fmt.Sprintf("folded, materialized units, hashed %v/%s", u.distinctHashes, tc.name), func(t *testing.T) {
				got, err := Sums(ctx, conn, x.WithUnits(u), tc.m, Snapshot{FoldedUpTo: folded, Folds: folds, Now: now, Passes: 3}, tc.cuped)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, got, expected(units, events, tc.m, now.UnixMilli(), tc.cuped, tc.lower, tc.upper))
			})
		}
	}
	exp, err := Exposures(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(materialized) != fmt.Sprint(exp) {
		t.Fatalf("units snapshot counts %+v, exposures %+v", materialized, exp)
	}
	wantMultiple, wantUnits := int64(0), map[string]int64{}
	for _, u := range units {
		if u.multiple {
			wantMultiple++
		} else {
			wantUnits[u.variation]++
		}
	}
	if exp.Multiple != wantMultiple || exp.Units["a"] != wantUnits["a"] || exp.Units["b"] != wantUnits["b"] {
		t.Fatalf("exposures %+v, want %v and %d multiple", exp, wantUnits, wantMultiple)
	}
	// A percentile cap equals the quantile of the non-zero per-unit values.
	p := &Metric{Key: "rev-p90", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, Winsorize: Winsorize{Type: "percentile", Upper: ptr(0.9)}}
	capValue, err := Percentile(ctx, conn, x, p, Snapshot{FoldedUpTo: x.Start, Now: now}, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if fromSnapshot, err := Percentile(ctx, conn, x.WithUnits(snapshot), p, Snapshot{FoldedUpTo: x.Start, Now: now}, 0.9); err != nil || fromSnapshot != capValue {
		t.Fatalf("p90 cap from the units snapshot %v (%v), from experiment_units %v", fromSnapshot, err, capValue)
	}
	// Dropped snapshots leave nothing; stale ones (here: every one) are found and dropped.
	if err := DropUnits(ctx, conn, snapshotID); err != nil {
		t.Fatal(err)
	}
	unitRows(t, conn, snapshotID, 0)
	other, err := MaterializeUnits(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	unitRows(t, conn, other.ID, len(units))
	if n, err := DropStaleUnits(ctx, conn, -time.Hour, nil); err != nil || n != 1 {
		t.Fatalf("DropStaleUnits dropped %d (%v), want 1", n, err)
	}
	unitRows(t, conn, other.ID, 0)
	plain := *p
	plain.Winsorize = Winsorize{Type: "none"}
	var nonzero []float64
	for _, u := range units {
		if u.multiple {
			continue
		}
		v := expected([]unit{u}, events, &plain, now.UnixMilli(), false, nil, nil)[u.variation].Sum
		if v != 0 {
			nonzero = append(nonzero, v)
		}
	}
	sort.Float64s(nonzero)
	if want := nonzero[int(0.9*float64(len(nonzero)-1))]; !near(capValue, want) && !near(capValue, nonzero[int(0.9*float64(len(nonzero)))]) {
		t.Fatalf("p90 cap %v, want about %v", capValue, want)
	}
	got, err := Sums(ctx, conn, x, p, Snapshot{FoldedUpTo: x.Start, Now: now}, false)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, got, expected(units, events, &plain, now.UnixMilli(), false, nil, &capValue))

	// Every metric at once (what the results worker does), four per query: the same sums, from
	// raw events (with the percentile-capped metric) and from the rollups.
	reqs := []SumsRequest{{Metric: p}}
	for _, tc := range metrics {
		reqs = append(reqs, SumsRequest{Metric: tc.m, CUPED: tc.cuped})
	}
	savedPerPass, savedSpan, savedWorkerPass := MetricsPerPass, shortRawSpan, WorkerUnitsPerPass
	MetricsPerPass = 4
	shortRawSpan = 60 * 24 * time.Hour // the test's few thousand units fit any join: combine even raw reads
	WorkerUnitsPerPass = 700           // the sums added up in the worker: several passes too
	defer func() { MetricsPerPass, shortRawSpan, WorkerUnitsPerPass = savedPerPass, savedSpan, savedWorkerPass }()
	again, err := MaterializeUnits(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	againByStrings := again
	againByStrings.distinctHashes = false
	// Folded by the results workers' way, from the units snapshot: the day's events joined with
	// the units by their hashes (rawPartsSQL), then grouped by the hash or by the strings.
	snapshotFolds := map[bool]Folds{}
	for _, u := range []Units{again, againByStrings} {
		snapshotFolds[u.distinctHashes] = foldAll(t, conn, x.WithUnits(u), foldedTogether, folded)
	}
	// Folded up to day 4 of the units' first exposures: the raw tail then holds most of the
	// events in the metrics' windows, read in one combined query.
	early := start.Add(4 * 24 * time.Hour)
	for _, snap := range []struct {
		name string
		x    Experiment
		reqs []SumsRequest
		s    Snapshot
	}{
		{"raw", x, reqs, Snapshot{FoldedUpTo: x.Start, Now: now, Passes: 2}},
		{"raw, materialized units, hashed", x.WithUnits(again), reqs, Snapshot{FoldedUpTo: x.Start, Now: now, Passes: 2}},
		{"folded", x, reqs[1:], Snapshot{FoldedUpTo: folded, Folds: folds, Now: now, Passes: 2}},
		{"folded, materialized units", x.WithUnits(again), reqs[1:], Snapshot{FoldedUpTo: folded, Folds: folds, Now: now, Passes: 2}},
		{"folded from the units snapshot, hashed", x.WithUnits(again), reqs[1:], Snapshot{FoldedUpTo: folded, Folds: snapshotFolds[true], Now: now, Passes: 2}},
		{"folded from the units snapshot, by strings", x.WithUnits(againByStrings), reqs[1:], Snapshot{FoldedUpTo: folded, Folds: snapshotFolds[false], Now: now, Passes: 2}},
		{"raw tail, materialized units, hashed", x.WithUnits(again), reqs[1:], Snapshot{FoldedUpTo: early, Folds: folds, Now: now, Passes: 2}},
		{"raw tail, materialized units, by strings", x.WithUnits(againByStrings), reqs[1:], Snapshot{FoldedUpTo: early, Folds: folds, Now: now, Passes: 2}},
	} {
		all, err := SumsOf(ctx, conn, snap.x, snap.reqs, snap.s)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(snap.reqs) {
			t.Fatalf("%d results for %d metrics", len(all), len(snap.reqs))
		}
		if snap.x.HashedUnits() {
			// Grouped in the worker; ClickHouse's own grouping gives the same sums.
			GroupInWorker = false
			inSQL, err := SumsOf(ctx, conn, snap.x, snap.reqs, snap.s)
			GroupInWorker = true
			if err != nil {
				t.Fatal(err)
			}
			for i := range inSQL {
				want := map[string]VariantSums{}
				for _, v := range inSQL[i] {
					want[v.Variation] = v
				}
				compare(t, all[i], want)
			}
		}
		if snap.reqs[0].Metric == p {
			compare(t, all[0], expected(units, events, &plain, now.UnixMilli(), false, nil, &capValue))
			all = all[1:]
		}
		for i, tc := range metrics {
			t.Run("all at once, "+snap.name+"/"+tc.name, func(t *testing.T) {
				compare(t, all[i], expected(units, events, tc.m, now.UnixMilli(), tc.cuped, tc.lower, tc.upper))
			})
		}
	}
}

// TestRolloutSums: a plain rollout's units are the contexts its rollout served (reason SPLIT,
// no experiment key) one of the guarded variations since the start; contexts the flag served
// by targeting, or before the start, are not units.
func TestRolloutSums(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	units, events, exposures := population(rand.New(rand.NewPCG(3, 5)), start, 2000)
	for i := range exposures {
		exposures[i][4] = "" // no experiment
	}
	insert(t, conn, "env-r", events, exposures)
	// Noise that must not count: targeted contexts (all buyers), and rollout exposures
	// before the guardrail's start.
	var noise [][5]any
	var noiseEvents []event
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("vip%03d", i)
		noise = append(noise, [5]any{key, "b", start.Add(time.Hour).UnixMilli(), uuid.New(), ""})
		noiseEvents = append(noiseEvents, event{id: uuid.New(), kind: "user", key: key, ts: start.Add(2 * time.Hour).UnixMilli(), value: 500, currency: "EUR"})
	}
	insertWithReason(t, conn, "env-r", "TARGETING_MATCH", noiseEvents, noise)
	var early [][5]any
	for i := 0; i < 300; i++ {
		early = append(early, [5]any{fmt.Sprintf("early%03d", i), "a", start.Add(-48 * time.Hour).UnixMilli(), uuid.New(), ""})
	}
	insert(t, conn, "env-r", nil, early)

	x := Experiment{EnvironmentID: "env-r", Flag: "checkout", Variations: []string{"a", "b"}, Start: start}
	now := start.Add(20 * 24 * time.Hour)
	week := 7 * 24 * time.Hour
	for _, m := range []*Metric{
		{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week},
		{Key: "revenue", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week},
	} {
		// FoldedUpTo is ignored for a rollout: everything since the start is read raw.
		got, err := Sums(ctx, conn, x, m, Snapshot{FoldedUpTo: start.Add(10 * 24 * time.Hour), Now: now}, false)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, got, expected(units, events, m, now.UnixMilli(), false, nil, nil))
	}
	if _, err := FoldDay(ctx, conn, x, &Metric{Key: "conv", Kind: Proportion, EventKey: "purchase", WindowEnd: week}, start); err == nil {
		t.Fatal("folding a rollout succeeded")
	}
	exp, err := Exposures(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	if total := exp.Units["a"] + exp.Units["b"] + exp.Multiple; total != int64(len(units)) {
		t.Fatalf("rollout units %+v, want %d in all", exp, len(units))
	}
	// A rollout's units materialized the same way.
	snapshot, err := MaterializeUnits(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(snapshot.Exposure) != fmt.Sprint(exp) {
		t.Fatalf("rollout units snapshot counts %+v, exposures %+v", snapshot.Exposure, exp)
	}
	m := &Metric{Key: "revenue", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week}
	got, err := Sums(ctx, conn, x.WithUnits(snapshot), m, Snapshot{Now: now, Passes: 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, got, expected(units, events, m, now.UnixMilli(), false, nil, nil))
}

// unitRows checks how many rows a units snapshot has.
func unitRows(t *testing.T, conn driver.Conn, id int64, want int) {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM experiment_unit_snapshots WHERE snapshot_id = ?", uint64(id)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != want {
		t.Fatalf("units snapshot %d has %d rows, want %d", id, n, want)
	}
}

func ptr(f float64) *float64 { return &f }

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestPercentileCapWithoutValues: a percentile cap over no non-zero per-unit value (no event
// yet, or only zero values) is NaN; the sums are then the uncapped ones, not NaN.
func TestPercentileCapWithoutValues(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(24 * time.Hour)
	var units []unit
	var exposures [][5]any
	var zeros []event
	for i := 0; i < 40; i++ {
		u := unit{key: fmt.Sprintf("u%02d", i), variation: []string{"a", "b"}[i%2], firstMs: start.Add(time.Duration(i) * time.Minute).UnixMilli()}
		units = append(units, u)
		exposures = append(exposures, [5]any{u.key, u.variation, u.firstMs, uuid.New(), "exp1"})
		if i%3 == 0 {
			zeros = append(zeros, event{id: uuid.New(), kind: "user", key: u.key, ts: u.firstMs + 60_000, value: 0, currency: "EUR"})
		}
	}
	insert(t, conn, "env-none", nil, exposures)
	insert(t, conn, "env-zeros", zeros, exposures)
	week := 7 * 24 * time.Hour
	capped := &Metric{Key: "revenue", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, Winsorize: Winsorize{Type: "percentile", Upper: ptr(0.99)}}
	plain := *capped
	plain.Winsorize = Winsorize{}
	for _, tc := range []struct {
		env    string
		events []event
	}{{"env-none", nil}, {"env-zeros", zeros}} {
		t.Run(tc.env, func(t *testing.T) {
			x := Experiment{EnvironmentID: tc.env, Key: "exp1", Start: start}
			s := Snapshot{FoldedUpTo: start, Now: now}
			if c, err := Percentile(ctx, conn, x, capped, s, 0.99); err != nil || !math.IsNaN(c) {
				t.Fatalf("cap over no values %v (%v), want NaN", c, err)
			}
			got, err := Sums(ctx, conn, x, capped, s, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				for _, v := range []float64{g.Sum, g.SumSquares, g.CovSum, g.MainCovProduct} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("variation %s: sums %+v are not finite", g.Variation, g)
					}
				}
			}
			compare(t, got, expected(units, tc.events, &plain, now.UnixMilli(), false, nil, nil))
			uncapped, err := Sums(ctx, conn, x, &plain, s, false)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(uncapped) {
				t.Fatalf("capped %+v, uncapped %+v", got, uncapped)
			}
		})
	}
}

// TestNumericFilters: a number in a filter matches the stored property whatever its size —
// ingest stores numbers in Go's 'g' form (2500000 as "2.5e+06", 0.00001 as "1e-05") — and the
// comparison operators order numbers, never text that is not one.
func TestNumericFilters(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	// Properties as ingest writes them: a number's text is strconv 'g' (event.Property.Text).
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	props := []struct {
		name     string
		typ, val string
	}{
		{"big", "number", g(2500000)},
		{"tiny", "number", g(1e-5)},
		{"plain", "number", g(42.5)},
		{"million", "number", g(1e6)},
		{"full", "number", g(9.696951891448458e-17)}, // 18.16 parses this text one ulp off
		{"text", "string", "abc"},
		{"numeric text", "string", "2500000.0"},
		{"missing", "", ""},
	}
	n := len(props)
	envs, kinds, keys, eventKeys, sdkN, sdkV := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ids, ts, ms, client, clamped := make([]uuid.UUID, n), make([]time.Time, n), make([]uint64, n), make([]int64, n), make([]uint8, n)
	values, hasValue := make([]float64, n), make([]uint8, n)
	pk, pt, pv := make([][]string, n), make([][]string, n), make([][]string, n)
	at := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	for i, p := range props {
		envs[i], ids[i], ts[i], ms[i], client[i], kinds[i], keys[i] = "env-num", uuid.New(), at, uint64(at.UnixMilli()), at.UnixMilli(), "user", p.name
		eventKeys[i], sdkN[i], sdkV[i] = "purchase", "go", "test"
		pk[i], pt[i], pv[i] = []string{"currency"}, []string{"string"}, []string{"EUR"}
		if p.typ != "" {
			pk[i], pt[i], pv[i] = append(pk[i], "amount"), append(pt[i], p.typ), append(pv[i], p.val)
		}
	}
	insertColumns(t, conn, "tracks", []string{"environment_id", "event_id", "timestamp", "timestamp_ms", "client_timestamp_ms", "received_at",
		"clamped", "context_kind", "context_key", "event_key", "value", "has_value", "properties.key", "properties.type", "properties.value",
		"sdk_name", "sdk_version"}, envs, ids, ts, ms, client, ts, clamped, kinds, keys, eventKeys, values, hasValue, pk, pt, pv, sdkN, sdkV)

	all := []string{"big", "tiny", "plain", "million", "full", "text", "numeric text", "missing"}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"eq big", Filter{"amount", "eq", []any{2500000.0}}, []string{"big", "numeric text"}},
		{"eq tiny", Filter{"amount", "eq", []any{1e-5}}, []string{"tiny"}},
		{"eq plain", Filter{"amount", "eq", []any{42.5}}, []string{"plain"}},
		{"eq million", Filter{"amount", "eq", []any{1e6}}, []string{"million"}},
		{"eq 17 digits", Filter{"amount", "eq", []any{9.696951891448458e-17}}, []string{"full"}},
		{"eq text", Filter{"amount", "eq", []any{"abc"}}, []string{"text"}},
		{"in numbers and text", Filter{"amount", "in", []any{1e-5, 1e6, "abc"}}, []string{"tiny", "million", "text"}},
		{"neq big", Filter{"amount", "neq", []any{2500000.0}}, []string{"tiny", "plain", "million", "full", "text", "missing"}},
		{"not_in", Filter{"amount", "not_in", []any{1e-5, 42.5}}, []string{"big", "million", "full", "text", "numeric text", "missing"}},
		{"gt 1e6", Filter{"amount", "gt", []any{1e6}}, []string{"big", "numeric text"}},
		{"gte 1e6", Filter{"amount", "gte", []any{1e6}}, []string{"big", "million", "numeric text"}},
		{"lt 1", Filter{"amount", "lt", []any{1.0}}, []string{"tiny", "full"}},
		{"lte 1e-5", Filter{"amount", "lte", []any{1e-5}}, []string{"tiny", "full"}},
		{"lte 17 digits", Filter{"amount", "lte", []any{9.696951891448458e-17}}, []string{"full"}},
		{"gt 17 digits", Filter{"amount", "gt", []any{9.696951891448458e-17}}, []string{"big", "tiny", "plain", "million", "numeric text"}},
		{"gt 0 on other events", Filter{"currency", "gt", []any{0.0}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a args
			cond, err := filterSQL([]Filter{tc.f}, &a)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, "SELECT context_key FROM tracks WHERE environment_id = 'env-num' AND "+cond+" ORDER BY context_key", a...)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				got = append(got, k)
			}
			rows.Close()
			want := append([]string{}, tc.want...)
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%+v matched %q, want %q (of %q)", tc.f, got, want, all)
			}
		})
	}
	// The same through a metric's sums: the units whose purchase was 2500000.
	var exposures [][5]any
	for _, p := range props {
		exposures = append(exposures, [5]any{p.name, "a", at.Add(-time.Hour).UnixMilli(), uuid.New(), "exp1"})
	}
	insert(t, conn, "env-num", nil, exposures)
	m := &Metric{Key: "big-buyers", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: 24 * time.Hour,
		Filters: []Filter{{Property: "amount", Op: "in", Values: []any{2500000.0}}}}
	got, err := Sums(ctx, conn, Experiment{EnvironmentID: "env-num", Key: "exp1", Start: at.Add(-48 * time.Hour)}, m,
		Snapshot{FoldedUpTo: at.Add(-48 * time.Hour), Now: at.Add(time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].N != int64(len(props)) || got[0].Sum != 2 {
		t.Fatalf("sums %+v, want %d units of which 2 converted", got, len(props))
	}
}

// TestUnitsStartOnTheStartsDay: a unit whose first exposure is stamped before the analysis'
// first day (a client clock days behind) is not counted — its events before that day are never
// read — while one stamped earlier on the start's day is; and for an experiment started just
// after midnight UTC, so is one stamped a moment before midnight (within ClockSkew: the
// analysis then starts the day before).
func TestUnitsStartOnTheStartsDay(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 15, 0, 0, 0, time.UTC)
	midnight := time.Date(2026, 10, 5, 0, 0, 30, 0, time.UTC)
	exposures := [][5]any{
		{"skewed", "on", start.Add(-2 * 24 * time.Hour).UnixMilli(), uuid.New(), "exp1"},
		{"early", "off", start.Add(-10 * time.Hour).UnixMilli(), uuid.New(), "exp1"},
		{"on-time", "on", start.Add(time.Hour).UnixMilli(), uuid.New(), "exp1"},
		{"a moment before", "on", midnight.Add(-time.Minute).UnixMilli(), uuid.New(), "exp2"},
		{"the day before", "off", midnight.Add(-20 * time.Hour).UnixMilli(), uuid.New(), "exp2"},
		{"two days before", "off", midnight.Add(-26 * time.Hour).UnixMilli(), uuid.New(), "exp2"},
	}
	insert(t, conn, "env1", nil, exposures)
	for _, c := range []struct {
		x        Experiment
		on, off  int64
		what     string
		firstDay time.Time
	}{
		{Experiment{EnvironmentID: "env1", Key: "exp1", Start: start}, 1, 1, "the early unit of the start's day and the on-time one, not the skewed one", Day(start)},
		{Experiment{EnvironmentID: "env1", Key: "exp2", Start: midnight}, 1, 1, "the units of the day before a start just after midnight, not two days before", Day(midnight).AddDate(0, 0, -1)},
	} {
		if got := c.x.FirstDay(); !got.Equal(c.firstDay) {
			t.Fatalf("%s: first day %v, want %v", c.x.Key, got, c.firstDay)
		}
		units, err := MaterializeUnits(ctx, conn, c.x, c.x.Start.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got := units.Exposure.Units
		DropUnits(ctx, conn, units.ID)
		if got["on"] != c.on || got["off"] != c.off || len(got) != 2 {
			t.Fatalf("%s: units %v, want %s", c.x.Key, got, c.what)
		}
	}
}

// TestUnitsAcrossInsertBlocks: experiment_units holds a state row per context and insert block
// until background merges join them. A context's variations and first exposure are those of
// all its rows: exposures delivered in separate inserts, the earliest last, one context seeing a
// second variation only in a later insert and another seeing both in one.
func TestUnitsAcrossInsertBlocks(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) int64 { return start.Add(time.Duration(h) * time.Hour).UnixMilli() }
	blocks := [][][5]any{
		{{"same", "on", at(5), uuid.New(), "exp1"}, {"late-first", "on", at(5), uuid.New(), "exp1"}, {"switched", "off", at(2), uuid.New(), "exp1"},
			{"both", "on", at(3), uuid.New(), "exp1"}, {"both", "off", at(4), uuid.New(), "exp1"}},
		{{"same", "on", at(6), uuid.New(), "exp1"}, {"late-first", "off", at(1), uuid.New(), "exp1"}},
		{{"same", "on", at(1), uuid.New(), "exp1"}, {"switched", "on", at(3), uuid.New(), "exp1"}, {"single", "off", at(7), uuid.New(), "exp1"}},
	}
	for _, b := range blocks {
		insert(t, conn, "env1", nil, b)
	}
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: start}
	now := start.Add(24 * time.Hour)
	units, err := MaterializeUnits(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	defer DropUnits(ctx, conn, units.ID)
	rows, err := conn.Query(ctx, `SELECT context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ? ORDER BY context_key`, uint64(units.ID))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var key, variation string
		var first uint64
		if err := rows.Scan(&key, &variation, &first); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%s@%d", key, variation, (int64(first)-start.UnixMilli())/3600_000))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// A context seeing several variations keeps its first exposure but no variation.
	want := []string{"both:@3", "late-first:@1", "same:on@1", "single:off@7", "switched:@2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("units %v, want %v", got, want)
	}
	if e := units.Exposure; e.Multiple != 3 || e.Units["on"] != 1 || e.Units["off"] != 1 {
		t.Fatalf("exposure counts %+v, want on 1, off 1, multiple 3", e)
	}
	if e, err := Exposures(ctx, conn, x, now); err != nil || fmt.Sprint(e) != fmt.Sprint(units.Exposure) {
		t.Fatalf("Exposures %+v (%v), units snapshot %+v", e, err, units.Exposure)
	}
}

// TestRawReadsKeepTheUnitsAtTheirWindowsEdges: a raw read of a day (a fold, or the tail since
// the last fold) joins only the units whose conversion windows can reach into it (windowUnits).
// Units whose windows end a millisecond into the day, or start a millisecond before its end,
// with an event at that millisecond, still count; their neighbours a millisecond further out,
// and older units with events that day, do not. Folded and raw, the sums equal the independent
// computation.
func TestRawReadsKeepTheUnitsAtTheirWindowsEdges(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	day := start.Add(8 * 24 * time.Hour) // the day read: [day, end)
	end := day.Add(24 * time.Hour)
	week := 7 * 24 * time.Hour
	conv := &Metric{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week}
	count := &Metric{Key: "orders", Version: 1, Kind: Count, EventKey: "purchase", WindowEnd: week}
	mean := &Metric{Key: "aov", Version: 1, Kind: Mean, EventKey: "purchase", WindowStart: time.Hour, WindowEnd: 72 * time.Hour}

	r := rand.New(rand.NewPCG(23, 29))
	units, events, exposures := population(r, start, 400)
	edge := func(key, variation string, first time.Time, at ...time.Time) {
		u := unit{key: key, variation: variation, firstMs: first.UnixMilli()}
		units = append(units, u)
		exposures = append(exposures, [5]any{u.key, u.variation, u.firstMs, uuid.New(), "exp1"})
		for _, ts := range at {
			events = append(events, event{id: uuid.New(), kind: "user", key: key, ts: ts.UnixMilli(), value: 12.5, currency: "EUR"})
		}
	}
	ms := time.Millisecond
	// The week's window ends a millisecond after the day starts: counted, for conv and orders.
	edge("edge-week-in", "a", day.Add(-week+ms), day)
	edge("edge-week-out", "b", day.Add(-week), day)
	// The mean's window (1h-72h) starts a millisecond before the day ends: counted.
	edge("edge-mean-in", "b", end.Add(-time.Hour-ms), end.Add(-ms))
	edge("edge-mean-out", "a", end.Add(-time.Hour), end.Add(-ms))
	// Old units active on the day, long past their windows.
	for i := 0; i < 20; i++ {
		edge(fmt.Sprintf("old-%02d", i), []string{"a", "b"}[i%2], start.Add(time.Duration(i)*time.Minute), day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i)*time.Hour+time.Minute))
	}
	insert(t, conn, "env1", events, exposures)
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: start}
	u, err := MaterializeUnits(ctx, conn, x, end)
	if err != nil {
		t.Fatal(err)
	}
	defer DropUnits(ctx, conn, u.ID)
	xu := x.WithUnits(u)

	// Folded as the results workers fold, with the units snapshot: conv and orders together
	// (windows from 0), the mean alone (its window from 1h bounds the units by the day's end).
	folds := foldAll(t, conn, xu, []*Metric{conv, count}, end)
	for k, ids := range foldAll(t, conn, xu, []*Metric{mean}, end) {
		folds[k] = ids
	}
	reqs := []SumsRequest{{Metric: conv}, {Metric: count}, {Metric: mean}}
	for _, s := range []struct {
		name string
		snap Snapshot
	}{
		{"folded", Snapshot{FoldedUpTo: end, Folds: folds, Now: end}},
		{"the day raw", Snapshot{FoldedUpTo: day, Folds: foldAll(t, conn, x, []*Metric{conv, count, mean}, day), Now: end}},
	} {
		t.Run(s.name, func(t *testing.T) {
			got, err := SumsOf(ctx, conn, xu, reqs, s.snap)
			if err != nil {
				t.Fatal(err)
			}
			for i, req := range reqs {
				compare(t, got[i], expected(units, events, req.Metric, end.UnixMilli(), false, nil, nil))
			}
		})
	}
}
