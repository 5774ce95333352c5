// Package resultsbench measures the experiment results queries at scale: it generates a large
// experiment straight into ClickHouse (INSERT … SELECT FROM numbers(N), which 18.16 runs fast),
// then times a full refresh (every day folded into the rollups, then five metrics' sums), an
// incremental refresh after one more day of data (the sums again with that day read raw, then
// the day folded, as the results workers' first refresh past its settle margin does), and a
// refresh later that day (the units advanced, the sums again). As the results workers do, the
// sums read the experiment's totals (the folded days added up per context) with the folds they
// lack, and the totals are brought up to date after each refresh's results; every refresh also
// computes the sums from every day's rollups and checks that the two agree, and (unless brief)
// the sums grouped in ClickHouse against those the worker adds up — for the full refresh also
// with its last folded day read raw, whose new units' CUPED covariates are read as events,
// both ways against the sums from that day's rollups.
package resultsbench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// Config sizes the data.
type Config struct {
	Exposures int64 // total exposure rows (two per unit)
	Events    int64 // total track rows, over five event keys
	Days      int   // days of the experiment before the incremental day
	// Reuse times the refreshes on data an earlier run generated (kept with -keep, or left by
	// a failed run) instead of generating it again; the rollups are emptied first.
	Reuse bool
	// RefoldDay, with Reuse, folds the incremental day again (under new fold ids; its earlier
	// folds stay in the table, unread), so its fold is timed on every re-run.
	RefoldDay bool
	// Brief leaves out the comparisons: one sums query per metric, and the sums from raw events.
	Brief bool
	// Steady times the incremental refresh as a worker refreshing every few minutes sees it:
	// its units base advanced through the day already, so that it merges only the exposures
	// received within its delivery margin (metricsql.UnitsMargin), as at noon.
	Steady bool
}

const (
	env = "bench-env"
	exp = "bench-exp"
)

// lateness is how long before its receipt an exposure may be stamped (ingest's -clock-skew-past;
// the stats service's -results-late-window).
const lateness = 168 * time.Hour

// Metrics are the five metrics refreshed: one per event key and kind, one with CUPED.
func Metrics() []*metricsql.Metric {
	week := 7 * 24 * time.Hour
	return []*metricsql.Metric{
		{Key: "conversion", Version: 1, Kind: metricsql.Proportion, EventKey: "purchase", WindowEnd: week},
		{Key: "revenue", Version: 1, Kind: metricsql.Sum, EventKey: "purchase", WindowEnd: week, CUPEDPreperiod: week},
		{Key: "signups", Version: 1, Kind: metricsql.Proportion, EventKey: "signup", WindowEnd: week},
		{Key: "clicks", Version: 1, Kind: metricsql.Count, EventKey: "click", WindowEnd: week},
		{Key: "errors", Version: 1, Kind: metricsql.Count, EventKey: "error", WindowEnd: week},
	}
}

// generate inserts exposures and events of the hours [from, to) after start for units
// [0, units).
func generate(ctx context.Context, conn driver.Conn, start time.Time, units, exposures, events int64, from, to time.Duration) error {
	startMs := start.UnixMilli()
	span := (to - from).Milliseconds()
	base := startMs + from.Milliseconds()
	// Two exposures per unit: the first at a hashed time in the span, the second an hour later.
	q := fmt.Sprintf(`INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(intDiv(ts, 1000)), ts, toInt64(ts), toDateTime(intDiv(ts, 1000)), 0, 'user',
		       concat('u', toString(u)), 'bench-flag', if(cityHash64(u) %% 2 = 0, 'off', 'on'), 1, 'SPLIT', '', '%s', 'bench', '1'
		FROM (SELECT number AS n, n %% %d AS u, toUInt64(%d + cityHash64(u, 1) %% %d + if(n >= %d, 3600000, 0)) AS ts FROM numbers(%d))`,
		env, exp, units, base, span, units, exposures)
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("generate exposures: %w", err)
	}
	// Events: a unit, a key, a time from 3 days before to 10 days after a hashed moment of the span.
	q = fmt.Sprintf(`INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(intDiv(ts, 1000)), ts, toInt64(ts), toDateTime(intDiv(ts, 1000)), 0, 'user',
		       concat('u', toString(u)), k, (cityHash64(n, 3) %% 10000) / 100, 1, 'bench', '1'
		FROM (SELECT number AS n, cityHash64(n, 2) %% %d AS u,
		             ['purchase', 'signup', 'click', 'view', 'error'][(n %% 5) + 1] AS k,
		             toUInt64(%d + cityHash64(n, 4) %% %d) AS ts FROM numbers(%d))`,
		env, units, base, span, events)
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("generate events: %w", err)
	}
	return nil
}

type dayKey struct {
	metric string
	part   int
	day    time.Time
}

// foldedDays lists the days already in the rollups (an earlier run's, with -database) and a
// fold id of each, as the results workers record them in Postgres.
func foldedDays(ctx context.Context, conn driver.Conn) (map[dayKey]int64, error) {
	rows, err := conn.Query(ctx, "SELECT metric_key, part, day, min(fold_id) FROM experiment_metric_rollups GROUP BY metric_key, part, day")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[dayKey]int64{}
	for rows.Next() {
		var k dayKey
		var part uint8
		var id uint64
		if err := rows.Scan(&k.metric, &part, &k.day, &id); err != nil {
			return nil, err
		}
		k.part, k.day = int(part), k.day.UTC()
		out[k] = int64(id)
	}
	return out, rows.Err()
}

// Run generates the data and times the refreshes, writing a report to out.
func Run(ctx context.Context, conn driver.Conn, cfg Config, out io.Writer) error {
	start := metricsql.Day(time.Now().Add(-time.Duration(cfg.Days+2) * 24 * time.Hour))
	units := cfg.Exposures / 2
	if cfg.Reuse {
		var first time.Time
		if err := conn.QueryRow(ctx, "SELECT min(timestamp) FROM exposures").Scan(&first); err != nil {
			return fmt.Errorf("reuse: %w", err)
		}
		start = metricsql.Day(first)
		fmt.Fprintf(out, "reusing the generated data from %s (days already folded are not folded again)\n", start.Format(time.DateOnly))
	} else {
		t0 := time.Now()
		if err := generate(ctx, conn, start, units, cfg.Exposures, cfg.Events, 0, time.Duration(cfg.Days)*24*time.Hour); err != nil {
			return err
		}
		fmt.Fprintf(out, "generated %d exposures (%d units) and %d events over %d days in %s\n", cfg.Exposures, units, cfg.Events, cfg.Days,
			time.Since(t0).Round(time.Second))
	}
	x := metricsql.Experiment{EnvironmentID: env, Key: exp, Start: start}
	metrics := Metrics()
	folded, err := foldedDays(ctx, conn)
	if err != nil {
		return err
	}
	end := start.Add(time.Duration(cfg.Days) * 24 * time.Hour)
	if cfg.RefoldDay {
		for k := range folded {
			if !k.day.Before(end) {
				delete(folded, k)
			}
		}
	}
	// refresh does what a results worker does: read the units (the full refresh merges every
	// state into the experiment's units base; the incremental one advances that base: the
	// contexts exposed since merged again, the rest copied), fold the days not folded yet
	// (reading those units), then every metric's sums. sums includes the units.
	var base *metricsql.UnitsBase
	var totals *metricsql.Totals
	defer func() {
		if base != nil {
			_ = metricsql.DropUnits(context.WithoutCancel(ctx), conn, base.ID)
		}
		if totals != nil {
			_ = metricsql.DropTotals(context.WithoutCancel(ctx), conn, totals.ID)
		}
	}()
	// refresh returns how long it took folding, for the units and the sums (the results), and
	// afterwards folding the day it read raw (if any) and writing the totals.
	refresh := func(from, until, now time.Time) (fold, sums, after time.Duration, err error) {
		t := time.Now()
		snap := metricsql.Snapshot{FoldedUpTo: until, Now: now, Folds: metricsql.Folds{}}
		// The base's watermark: everything generated so far was received before until.
		var next metricsql.UnitsBase
		var delta int64
		if base == nil {
			next, err = metricsql.BuildUnitsBase(ctx, conn, x, until)
		} else {
			next, delta, err = metricsql.AdvanceUnits(ctx, conn, x, *base, lateness, until)
		}
		if err != nil {
			return 0, 0, 0, err
		}
		if base != nil && base.ID != next.ID {
			_ = metricsql.DropUnits(context.WithoutCancel(ctx), conn, base.ID)
		}
		advanced := base != nil
		base = &next
		units, err := metricsql.BaseUnits(ctx, conn, x, next, snap.Now)
		if err != nil {
			return 0, 0, 0, err
		}
		xu := x.WithUnits(units)
		snap.Passes = metricsql.PassesFor(units.Exposure.Total())
		materialized := time.Since(t)
		if advanced {
			fmt.Fprintf(out, "  units (%d): the base advanced, the %d contexts exposed since merged again: %s\n", units.Exposure.Total(),
				delta, materialized.Round(time.Millisecond))
		} else {
			fmt.Fprintf(out, "  units (%d) merged from every state into a base: %s\n", units.Exposure.Total(), materialized.Round(time.Millisecond))
		}
		// As the worker folds: a day's metrics in one query, the CUPED cohort per metric.
		// covariates is the CUPED cohorts' share of the time.
		foldDays := func(from, until time.Time) (covariates time.Duration, err error) {
			for d := from; d.Before(until); d = d.Add(24 * time.Hour) {
				var todo []*metricsql.Metric
				for _, m := range metrics {
					if folded[dayKey{m.Key, metricsql.PartMetric, d}] == 0 {
						todo = append(todo, m)
					}
				}
				if len(todo) > 0 {
					ids, err := metricsql.FoldDays(ctx, conn, xu, todo, d)
					if err != nil {
						return 0, err
					}
					for i, m := range todo {
						folded[dayKey{m.Key, metricsql.PartMetric, d}] = ids[i]
					}
				}
				for _, m := range metrics {
					if k := (dayKey{m.Key, metricsql.PartCovariate, d}); m.CUPEDPreperiod > 0 && folded[k] == 0 {
						tc := time.Now()
						if folded[k], err = metricsql.FoldCovariates(ctx, conn, xu, m, d); err != nil {
							return 0, err
						}
						covariates += time.Since(tc)
					}
				}
			}
			return covariates, nil
		}
		// As the worker does (defersDay): the day just ended, if no metric has folded it, is
		// read raw by the sums and folded after them.
		foldTo := until
		if last := until.Add(-24 * time.Hour); !last.Before(from) && now.Sub(last) <= metricsql.OneReadTail {
			foldTo = last
			for k := range folded {
				if k.day.Equal(last) {
					foldTo = until
				}
			}
		}
		t = time.Now()
		covariates, err := foldDays(from, foldTo)
		if err != nil {
			return 0, 0, 0, err
		}
		fold = time.Since(t)
		fmt.Fprintf(out, "  folded %s to %s in %s (the CUPED cohorts' covariates %s of it)\n", from.Format(time.DateOnly), foldTo.Format(time.DateOnly),
			fold.Round(time.Millisecond), covariates.Round(time.Millisecond))
		// addFolds adds the folds of the days in [lo, hi) to into.
		addFolds := func(into metricsql.Folds, lo, hi time.Time) {
			for _, m := range metrics {
				for k, id := range folded {
					if k.metric == m.Key && !k.day.Before(lo) && k.day.Before(hi) {
						into.Add(m, k.part, id)
					}
				}
			}
		}
		snap.FoldedUpTo = foldTo
		addFolds(snap.Folds, time.Time{}, foldTo)
		// The sums read the totals as they are (behind by the days just folded, or none yet).
		snap.Totals = totals
		// What the worker does: every metric's sums in one query per pass.
		t = time.Now()
		reqs := make([]metricsql.SumsRequest, len(metrics))
		for i, m := range metrics {
			reqs[i] = metricsql.SumsRequest{Metric: m, CUPED: m.CUPEDPreperiod > 0}
		}
		withTotals, err := metricsql.SumsOf(ctx, conn, xu, reqs, snap)
		if err != nil {
			return 0, 0, 0, err
		}
		together := time.Since(t)
		read := "without totals"
		if totals != nil {
			read = "from the totals"
			if !totals.Current(snap.Folds) {
				read = "from the totals and the rollups of the days folded since"
			}
		}
		how := fmt.Sprintf("grouped in ClickHouse, one query per pass (%d passes)", snap.Passes)
		if metricsql.GroupInWorker && xu.HashedUnits() {
			how = fmt.Sprintf("added up in the worker (%d passes)", metricsql.WorkerPassesFor(units.Exposure.Total()))
		}
		fmt.Fprintf(out, "  sums of the %d metrics %s, %s: %s\n", len(metrics), how, read, together.Round(time.Millisecond))
		// compare times the same sums read another way (what) and checks that they agree: counts
		// exactly, sums to rounding.
		compare := func(what string, s metricsql.Snapshot) error {
			t := time.Now()
			other, err := metricsql.SumsOf(ctx, conn, xu, reqs, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "    (the same %s: %s)\n", what, time.Since(t).Round(time.Millisecond))
			if err := agree(withTotals, other); err != nil {
				return fmt.Errorf("the sums and the same %s: %w", what, err)
			}
			return nil
		}
		if !cfg.Brief && metricsql.GroupInWorker && xu.HashedUnits() {
			metricsql.GroupInWorker = false
			err := compare(fmt.Sprintf("grouped in ClickHouse, %d passes", snap.Passes), snap)
			metricsql.GroupInWorker = true
			if err != nil {
				return 0, 0, 0, err
			}
		}
		// The benchmark's incremental day brings no new units (its exposures re-expose those of
		// the first days), so no refresh above reads a CUPED covariates' tail. The full refresh
		// therefore also reads its last folded day raw, as a refresh after a day of new units
		// does: that day's new units' pre-periods read as events and added up in the worker,
		// then grouped in ClickHouse, each against the sums from that day's rollups.
		if !cfg.Brief && !advanced && metricsql.GroupInWorker && xu.HashedUnits() && !foldTo.Before(from.Add(24*time.Hour)) {
			last := foldTo.Add(-24 * time.Hour)
			fresh := snap
			fresh.FoldedUpTo, fresh.Folds, fresh.Totals = last, metricsql.Folds{}, nil
			addFolds(fresh.Folds, time.Time{}, last)
			var cohort uint64
			if err := conn.QueryRow(ctx, `SELECT count() FROM experiment_unit_snapshots WHERE snapshot_id = ? AND first_ms >= ?`,
				uint64(next.ID), uint64(last.UnixMilli())).Scan(&cohort); err != nil {
				return 0, 0, 0, err
			}
			day := last.Format(time.DateOnly)
			if err := compare(fmt.Sprintf("with %s read raw, the CUPED covariates of its %d contexts first exposed since read as events", day, cohort), fresh); err != nil {
				return 0, 0, 0, err
			}
			metricsql.GroupInWorker = false
			err := compare(fmt.Sprintf("with %s read raw, grouped in ClickHouse, %d passes", day, fresh.Passes), fresh)
			metricsql.GroupInWorker = true
			if err != nil {
				return 0, 0, 0, err
			}
		}
		// The same from every folded day's rollups, as before the totals.
		rolled := snap
		rolled.Totals = nil
		if err := compare("from every day's rollups", rolled); err != nil {
			return 0, 0, 0, err
		}
		if foldTo.Before(until) {
			t = time.Now()
			covariates, err := foldDays(foldTo, until)
			if err != nil {
				return 0, 0, 0, err
			}
			after = time.Since(t)
			fmt.Fprintf(out, "  then the day read raw, %s, folded: %s (the CUPED cohort's covariates %s of it)\n", foldTo.Format(time.DateOnly),
				after.Round(time.Millisecond), covariates.Round(time.Millisecond))
			addFolds(snap.Folds, foldTo, until)
			snap.FoldedUpTo = until
		}
		// Then, as the worker does once the snapshot is stored, the totals brought up to date.
		if xu.HashedUnits() && (totals == nil || !totals.Current(snap.Folds)) {
			t = time.Now()
			next, err := metricsql.UpdateTotals(ctx, conn, xu, totals, snap.Folds, snap.Passes)
			if err != nil {
				return 0, 0, 0, err
			}
			how := "from the rollups"
			if totals != nil {
				how = "from the previous totals and the rollups of the days folded since"
				_ = metricsql.DropTotals(context.WithoutCancel(ctx), conn, totals.ID)
			}
			took := time.Since(t)
			totals, after = &next, after+took
			fmt.Fprintf(out, "  then the totals of %d contexts written %s: %s\n", next.Rows, how, took.Round(time.Millisecond))
		}
		if foldTo.Before(until) && !cfg.Brief {
			snap.Totals = totals
			if err := compare("with the day folded", snap); err != nil {
				return 0, 0, 0, err
			}
		}
		// For comparison, one query per metric.
		for _, m := range metrics {
			if cfg.Brief {
				break
			}
			t := time.Now()
			if _, err := metricsql.Sums(ctx, conn, xu, m, snap, m.CUPEDPreperiod > 0); err != nil {
				return 0, 0, 0, err
			}
			fmt.Fprintf(out, "    (one query per metric: %s %s)\n", m.Key, time.Since(t).Round(time.Millisecond))
		}
		return fold, materialized + together, after, nil
	}
	// The full refresh reads the day after the folded ones raw up to its middle.
	fold, sums, after, err := refresh(start, end, end.Add(12*time.Hour))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "full refresh (5 metrics, %d days folded from scratch): results in %s (folding %s, units + sums %s), then %s (the totals written)\n",
		cfg.Days, (fold + sums).Round(time.Millisecond), fold.Round(time.Millisecond), sums.Round(time.Millisecond), after.Round(time.Millisecond))
	// One more day of data (a day's share of new exposures and events) and the next day's first
	// hour, then the incremental refresh. more generates a stretch unless a database reused has
	// it already; events tell: exposures spill past a stretch (every unit's second exposure
	// comes an hour after its first), so counting those would always find it "there".
	dayExposures, dayEvents := cfg.Exposures/int64(cfg.Days), cfg.Events/int64(cfg.Days)
	day := time.Duration(cfg.Days) * 24 * time.Hour
	more := func(from, to time.Duration) error {
		var later uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM tracks WHERE timestamp >= toDateTime(?)", start.Add(from).Unix()).Scan(&later); err != nil {
			return err
		}
		if later > 0 {
			return nil
		}
		share := float64(to-from) / float64(24*time.Hour)
		return generate(ctx, conn, start, units, int64(float64(dayExposures)*share), int64(float64(dayEvents)*share), from, to)
	}
	if err := more(day, day+24*time.Hour); err != nil {
		return err
	}
	if err := more(day+24*time.Hour, day+25*time.Hour); err != nil {
		return err
	}
	// The incremental refresh runs when the workers first take the day up: an hour (their
	// settle margin) into the next. As they do, it reads the day and the next one's first hour
	// raw, and folds the day once it has the sums (the results).
	next := end.Add(24 * time.Hour)
	if cfg.Steady {
		// The day's exposures re-expose units exposed before, with their variation (generate),
		// so a base advanced through them would hold the same states: skipping them is what the
		// earlier refreshes of the day would have left.
		base.Watermark = next.Add(time.Hour - metricsql.UnitsMargin)
	}
	fold, sums, after, err = refresh(end, next, next.Add(time.Hour))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "incremental refresh after one more day (%d exposures, %d events): results in %s (folding %s, units + sums with the day read raw %s), then %s (the day folded, the totals written)\n",
		dayExposures, dayEvents, (fold + sums).Round(time.Millisecond), fold.Round(time.Millisecond), sums.Round(time.Millisecond), after.Round(time.Millisecond))
	// The morning's data (with -database, generated by the first run already).
	if err := more(day+25*time.Hour, day+36*time.Hour); err != nil {
		return err
	}
	// A refresh later the same day, as the results workers run every few minutes, here at noon:
	// no day to fold, the day's 12 hours so far read raw, and the base advanced by the contexts
	// exposed within the workers' delivery margin (its watermark is the previous refresh's clock
	// less that margin).
	noon := next.Add(12 * time.Hour)
	base.Watermark = noon.Add(-metricsql.UnitsMargin)
	if _, sums, _, err = refresh(next, next, noon); err != nil {
		return err
	}
	fmt.Fprintf(out, "a refresh later the same day (noon: nothing to fold, 12 h of events read raw, the contexts exposed in the last %s merged into the units): %s\n",
		metricsql.UnitsMargin, sums.Round(time.Millisecond))
	if err := floor(ctx, conn, x, metrics, end, out); err != nil {
		return err
	}
	if cfg.Brief {
		return nil
	}
	// For comparison: the same sums read entirely from raw events (what the rollups avoid).
	t := time.Now()
	raw := metricsql.Snapshot{FoldedUpTo: start, Now: end.Add(36 * time.Hour), Passes: metricsql.PassesFor(units)}
	reqs := make([]metricsql.SumsRequest, len(metrics))
	for i, m := range metrics {
		reqs[i] = metricsql.SumsRequest{Metric: m, CUPED: m.CUPEDPreperiod > 0}
	}
	if _, err := metricsql.SumsOf(ctx, conn, x, reqs, raw); err != nil {
		return err
	}
	fmt.Fprintf(out, "for comparison, the same 5 metrics from raw events only (no rollups): %s\n", time.Since(t).Round(time.Millisecond))
	return nil
}

// agree checks that two computations of the same sums agree (from the totals and from the
// rollups; added up in the worker and grouped in ClickHouse): counts exactly, sums to a relative
// 1e-9 (float sums added in another order).
func agree(a, b [][]metricsql.VariantSums) error {
	close := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) }
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Errorf("metric %d: %d variations one way, %d the other", i, len(a[i]), len(b[i]))
		}
		for j, x := range a[i] {
			y := b[i][j]
			if x.Variation != y.Variation || x.N != y.N || !close(x.Sum, y.Sum) || !close(x.SumSquares, y.SumSquares) ||
				!close(x.CovSum, y.CovSum) || !close(x.CovSumSquares, y.CovSumSquares) || !close(x.MainCovProduct, y.MainCovProduct) {
				return fmt.Errorf("metric %d: one way gives %+v, the other %+v", i, x, y)
			}
		}
	}
	return nil
}

// floor times the least any incremental refresh must do with a new day of events, however its
// state is kept: group the day's events of the metrics' keys per unit and event key (a unit's
// total decides its winsorized value and its square), by a 64-bit hash of the context, without
// deduplication; and, the same joined with the units' first exposures (each unit's conversion
// window and variation). What a refresh does beyond that — windows, filters, deduplication,
// writing its state, the sums — comes on top.
func floor(ctx context.Context, conn driver.Conn, x metricsql.Experiment, metrics []*metricsql.Metric, day time.Time, out io.Writer) error {
	units, err := metricsql.MaterializeUnits(ctx, conn, x, day.Add(24*time.Hour))
	if err != nil {
		return err
	}
	defer func() { _ = metricsql.DropUnits(context.WithoutCancel(ctx), conn, units.ID) }()
	dayArgs := []any{x.EnvironmentID}
	var keys []string
	for _, m := range metrics {
		if !slices.Contains(dayArgs[1:], any(m.EventKey)) {
			keys, dayArgs = append(keys, "?"), append(dayArgs, m.EventKey)
		}
	}
	grouped := `SELECT cityHash64(context_kind, context_key) AS h, event_key, count() AS n, sum(value) AS v FROM tracks
		WHERE environment_id = ? AND event_key IN (` + strings.Join(keys, ", ") + `) AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)
		AND toDate(timestamp) = toDate(toDateTime(?)) GROUP BY h, event_key`
	dayArgs = append(dayArgs, day.Unix(), day.Add(24*time.Hour).Unix(), day.Unix())
	var groups, events uint64
	t := time.Now()
	if err := conn.QueryRow(ctx, `SELECT count(), sum(n) FROM (`+grouped+`)`, dayArgs...).Scan(&groups, &events); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	group := time.Since(t)
	var joined uint64
	t = time.Now()
	if err := conn.QueryRow(ctx, `SELECT count() FROM (`+grouped+`) ANY INNER JOIN (SELECT cityHash64(context_kind, context_key) AS h, first_ms
		FROM experiment_unit_snapshots WHERE snapshot_id = ?) USING h`, append(dayArgs, uint64(units.ID))...).Scan(&joined); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmt.Fprintf(out, "  floor of any incremental refresh: the day's %d events of the metrics' keys grouped per unit and key (%d groups) %s; "+
		"the same joined with the %d units (%d matched) %s\n", events, groups, group.Round(time.Millisecond), units.Exposure.Total(), joined,
		time.Since(t).Round(time.Millisecond))
	return nil
}
