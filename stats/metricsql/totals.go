package metricsql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Totals. The sums of a refresh group every unit's rows per context: its units row, and one
// rollup row per folded day for every metric part with events that day. At 5M units over two
// weeks that is 44M rows per refresh (the units and 7.1M rows per metric part), the largest
// part of every refresh, and it grows with the experiment's age. The folded days do not change
// between refreshes, so an experiment keeps them added up per context in a partition of
// experiment_metric_totals (ingest migration 00009): one row per context, with an array of
// events and one of value sums, element i for metric part Parts[i]. The sums then group the
// units, one totals row per context, and only what is not in the totals: the rollups of folds
// since (added) or of folds replaced since (taken away), and the raw events since the last
// fold. A refresh that folded a day writes new totals from the previous ones and the day's
// rollups (UpdateTotals) once its results are stored, so the totals are rewritten once a day,
// not read from every day (5M units: the sums of a refresh 7.9–8.7 s instead of 14.7–15.2 s
// without a raw tail, 12–14 s instead of 16–20 s with 12 hours of it; an update 8–10 s, totals
// from nothing 13–19 s; docs/benchmarks.md).
//
// Event counts and value sums add up, so the totals give exactly the sums the rollups give
// (value sums up to floating-point rounding, whose order a GROUP BY never fixes anyway).
// Contexts are named by cityHash64 only, so totals are used only when the units' hashes are
// distinct (Units); every context in them is a unit, as the rollups' are.

// Totals is a partition of experiment_metric_totals: per context, the events and value sums of
// the folds it adds up. The caller keeps it between refreshes (the results workers record it in
// Postgres) and passes it in Snapshot.Totals.
type Totals struct {
	ID int64
	// Parts are the metric parts added up, in the arrays' order.
	Parts []FoldKey
	// Folds are the fold ids added up, per part.
	Folds Folds
	// Rows is how many contexts the partition holds (a check that it is still there).
	Rows int64
}

// ErrTotalsGone: the totals' partition is not (or no longer) what was recorded.
var ErrTotalsGone = errors.New("metricsql: the totals are gone")

// index is part k's position in the arrays (1-based, as ClickHouse indexes them), 0 if the
// totals do not hold it.
func (t *Totals) index(k FoldKey) int {
	if t == nil {
		return 0
	}
	return slices.Index(t.Parts, k) + 1
}

// held are the fold ids of part k that t adds up (none: nil totals, or a part they lack).
func (t *Totals) held(k FoldKey) []int64 {
	if t == nil {
		return nil
	}
	return t.Folds[k]
}

// Current says whether t adds up exactly folds: the same parts, the same fold ids of each.
func (t Totals) Current(folds Folds) bool {
	if len(t.Parts) != len(folds) {
		return false
	}
	for _, k := range t.Parts {
		add, sub := foldChanges(t.Folds[k], folds[k])
		if _, ok := folds[k]; !ok || len(add) > 0 || len(sub) > 0 {
			return false
		}
	}
	return true
}

// Replaced says whether t adds up a fold that folds (the recorded ones) no longer lists: a day
// folded again since, whose rows bringing t up to date takes away.
func (t Totals) Replaced(folds Folds) bool {
	for _, k := range t.Parts {
		if _, sub := foldChanges(t.Folds[k], folds[k]); len(sub) > 0 {
			return true
		}
	}
	return false
}

// foldChanges are the fold ids of want not in have (to add) and of have not in want (to take
// away: folds replaced since).
func foldChanges(have, want []int64) (add, sub []int64) {
	for _, id := range want {
		if !slices.Contains(have, id) {
			add = append(add, id)
		}
	}
	for _, id := range have {
		if !slices.Contains(want, id) {
			sub = append(sub, id)
		}
	}
	return add, sub
}

// sortedParts are folds' parts in a fixed order.
func sortedParts(folds Folds) []FoldKey {
	parts := make([]FoldKey, 0, len(folds))
	for k := range folds {
		parts = append(parts, k)
	}
	slices.SortFunc(parts, func(a, b FoldKey) int {
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		if a.Version != b.Version {
			return int(a.Version - b.Version)
		}
		return a.Part - b.Part
	})
	return parts
}

// UpdateTotals writes totals adding up folds, from prev (nil: from the rollups alone): prev's
// rows, plus the rollups of the folds it lacks, less those of its folds no longer in folds (a
// day folded again); parts of prev not in folds are left out. The caller records the new
// totals and drops prev's partition; prev must be checked (CheckTotals). passes slices the contexts as Snapshot.Passes does the
// sums', so memory stays bounded.
func UpdateTotals(ctx context.Context, conn driver.Conn, x Experiment, prev *Totals, folds Folds, passes int) (Totals, error) {
	if x.rollout() {
		return Totals{}, fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	next := Totals{ID: newID(), Parts: sortedParts(folds), Folds: Folds{}}
	for _, k := range next.Parts {
		next.Folds[k] = slices.Clone(folds[k])
	}
	passes = min(max(passes, 1), sliceBuckets)
	for p := 0; p < passes; p++ {
		xp := x.pass(p, passes)
		var a args
		members := []string{}
		if prev != nil {
			members = append(members, `SELECT context_hash, toUInt16(0) AS j, toInt64(0) AS events, toFloat64(0) AS value_sum, ev, vs
			FROM (`+totalsRowsSQL(prev.ID, xp, &a)+`)`)
		}
		evs, sums := make([]string, len(next.Parts)), make([]string, len(next.Parts))
		for j, k := range next.Parts {
			head := fmt.Sprintf("cityHash64(context_kind, context_key) AS context_hash, toUInt16(%d) AS j", j+1)
			members = append(members, xp.changedFoldsSQL(prev, k, folds[k], head, true, &a)...)
			old := prev.index(k)
			evs[j], sums[j] = addedUp("events", "j", j+1, "ev", old), addedUp("value_sum", "j", j+1, "vs", old)
		}
		if len(members) == 0 {
			break // nothing folded: empty totals
		}
		q := `INSERT INTO experiment_metric_totals (totals_id, bucket, context_hash, events, value_sums)
		SELECT toUInt64(` + fmt.Sprint(uint64(next.ID)) + `), toUInt16(context_hash % ` + fmt.Sprint(sliceBuckets) + `), context_hash,
			[` + strings.Join(evs, ", ") + `], [` + strings.Join(sums, ", ") + `]
		FROM (` + strings.Join(members, "\n\t\tUNION ALL ") + `)
		GROUP BY context_hash`
		if err := conn.Exec(ctx, q, a...); err != nil {
			_ = DropTotals(context.WithoutCancel(ctx), conn, next.ID)
			return Totals{}, fmt.Errorf("metricsql: update the totals: %w", err)
		}
	}
	n, err := totalsRows(ctx, conn, next.ID)
	if err != nil {
		_ = DropTotals(context.WithoutCancel(ctx), conn, next.ID)
		return Totals{}, err
	}
	next.Rows = n
	return next, nil
}

// changedFoldsSQL selects the rollup rows by which part k's folds ids differ from what t adds
// up (t nil: adds up nothing): those of the folds t lacks, and, negated, those of the folds t
// holds that ids no longer lists (a day folded again). Columns: head's, then events and
// value_sum (Int64, Float64), then with arrays empty ev and vs arrays (the columns of the
// totals' rows in the same UNION). No fold changed: none.
func (x Experiment) changedFoldsSQL(t *Totals, k FoldKey, ids []int64, head string, arrays bool, a *args) []string {
	add, sub := foldChanges(t.held(k), ids)
	var out []string
	for _, c := range []struct {
		ids  []int64
		sign int
	}{{add, 1}, {sub, -1}} {
		if len(c.ids) > 0 {
			cols := fmt.Sprintf(`, toInt64(events) * %d AS events, value_sum * %d AS value_sum`, c.sign, c.sign)
			if arrays {
				cols += `, emptyArrayInt64() AS ev, emptyArrayFloat64() AS vs`
			}
			out = append(out, `SELECT `+head+cols+` FROM experiment_metric_rollups WHERE `+x.foldsWhereSQL(k, c.ids, a))
		}
	}
	return out
}

// foldsWhereSQL is the condition selecting the rollup rows of some folds of part k in x's slice.
func (x Experiment) foldsWhereSQL(k FoldKey, ids []int64, a *args) string {
	q := `environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + ` AND metric_key = ` + a.add(k.Metric) +
		` AND metric_version = toUInt64(` + a.add(k.Version) + `) AND part = toUInt8(` + a.add(k.Part) + `) AND fold_id IN (`
	for i, id := range ids {
		if i > 0 {
			q += ", "
		}
		q += a.add(uint64(id))
	}
	return q + `)` + x.slice()
}

// totalsRowsSQL selects a totals partition's rows in x's slice: context_hash, and its arrays as
// ev and vs (a query naming its own events or value_sum column could not read the arrays under
// those names: in ClickHouse an alias hides the column of the same name).
func totalsRowsSQL(id int64, x Experiment, a *args) string {
	return `SELECT context_hash, events AS ev, value_sums AS vs FROM experiment_metric_totals WHERE totals_id = ` + a.add(uint64(id)) + x.bucketSlice()
}

// bucketSlice is slice on the tables whose bucket column holds the slicing hash
// (experiment_unit_snapshots, experiment_metric_totals).
func (x Experiment) bucketSlice() string { return x.bucketSliceFrom(0) }

// bucketSliceFrom is bucketSlice for buckets numbered from offset (a units partition's
// revisions).
func (x Experiment) bucketSliceFrom(offset int) string {
	if x.hi == 0 {
		return ""
	}
	return fmt.Sprintf(" AND bucket BETWEEN %d AND %d", offset+x.lo, offset+x.hi-1)
}

// CheckTotals fails with ErrTotalsGone when t's partition does not hold t.Rows contexts
// (dropped, or never finished): update from nil then.
func CheckTotals(ctx context.Context, conn driver.Conn, t Totals) error {
	n, err := totalsRows(ctx, conn, t.ID)
	if err != nil {
		return err
	}
	if n != t.Rows {
		return fmt.Errorf("%w: partition %d holds %d contexts, the totals %d", ErrTotalsGone, t.ID, n, t.Rows)
	}
	return nil
}

func totalsRows(ctx context.Context, conn driver.Conn, id int64) (int64, error) {
	return partitionRows(ctx, conn, "experiment_metric_totals", "totals_id", id)
}

// DropTotals drops a totals partition.
func DropTotals(ctx context.Context, conn driver.Conn, id int64) error {
	return dropPartition(ctx, conn, "experiment_metric_totals", id)
}

// DropStaleTotals drops the totals partitions last written more than age ago but those in
// keep (the recorded totals): those of updates that failed half-way or whose record failed, and
// totals no longer recorded. It returns how many it dropped.
func DropStaleTotals(ctx context.Context, conn driver.Conn, age time.Duration, keep map[int64]bool) (int, error) {
	return dropStale(ctx, conn, "experiment_metric_totals", age, keep)
}

// HashedUnits says whether x reads a units partition whose contexts have distinct hashes, as
// totals need.
func (x Experiment) HashedUnits() bool { return x.units != 0 && x.hashed }

// totalsRead is how a sums query reads the totals t (nil: it does not).
func (x Experiment) totalsRead(s Snapshot) *Totals {
	if s.Totals == nil || !x.HashedUnits() || x.rollout() {
		return nil
	}
	return s.Totals
}
