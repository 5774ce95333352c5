package metricsql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The units of an experiment are merged from experiment_units' aggregate states (first
// variation, first exposure, how many variations), which costs a read of every state row. A
// refresh needs them in every query — twice per pass of every metric (the units and the
// conversion-window join), and in every fold — so it materializes them once into a partition of
// experiment_unit_snapshots (ingest migration 00005) that every query on x.WithUnits(units)
// reads.
//
// Merging every state row is itself the largest step of a refresh at scale (5M units: 9.4M
// state rows merged and 5M rows written, 12–20 s on 18.16), and it grows with the experiment's
// age, not with what changed. So the partition is kept between refreshes as the experiment's
// units base (UnitsBase), and each refresh advances it (AdvanceUnits): the exposures received
// since its watermark are aggregated per context (a delta, from the raw exposures: what
// experiment_units aggregates, without reading its other states), and a new partition is
// written from the base's other contexts as they are and each delta context merged with its
// base row. argMin, min and "more than one variation" merge exactly, and an exposure in both
// (received just before the watermark) changes nothing, so the result is what a merge of every
// state gives (TestAdvancedUnitsMatchAFreshMerge), whatever arrived: new units, a second
// variation, an earlier first exposure, an exposure stamped before the analysis' first day.
// At 5M units and a day's 727k exposed contexts it takes 6.4–6.9 s where merging every state
// takes 12.5 s.
//
// A partition holds every context's merged state, unfiltered; the readers apply the unit's
// definition (snapshotUnitsSQL): first exposed on or after the analysis' first day and before
// the refresh's Now.

// StateRowsPerSlice bounds the aggregate-state rows (about 2 per unit before background merges)
// one base query merges. Each slice re-reads every state row, so slices are few and large
// (18.16, 10M state rows: a fifth of the units took 3.4 s, all of them in one query 12.5 s).
var StateRowsPerSlice int64 = 8_000_000

// UnitsBase is a partition of units: every context's merged state as of its watermark. The
// caller keeps it between refreshes (the results workers record it in Postgres).
type UnitsBase struct {
	ID int64
	// Watermark: exposures received (received_at) at or after it may be missing from the base;
	// AdvanceUnits merges their contexts again. The builder's clock before its read, less the
	// delivery margin (an exposure received before it is in ClickHouse by then).
	Watermark time.Time
	// Rows is how many contexts the base holds (a check that its partition is still there).
	Rows int64
}

// Units is what a refresh reads its units from: a base partition, as of Now.
type Units struct {
	ID int64
	// Now: units first exposed from Now on are not units of this refresh.
	Now      time.Time
	Exposure Exposure
	// distinctHashes: no two of the units' contexts share cityHash64(context_kind,
	// context_key) (Experiment.contextGroup).
	distinctHashes bool
}

// MaterializeUnits writes the experiment's units into a new base partition and returns them as
// of now (units first exposed before now) with their counts; queries read them through
// x.WithUnits, and DropUnits drops the partition.
func MaterializeUnits(ctx context.Context, conn driver.Conn, x Experiment, now time.Time) (Units, error) {
	base, err := BuildUnitsBase(ctx, conn, x, time.Time{})
	if err != nil {
		return Units{}, err
	}
	u, err := BaseUnits(ctx, conn, x, base, now)
	if err != nil {
		_ = DropUnits(context.WithoutCancel(ctx), conn, base.ID)
	}
	return u, err
}

// BuildUnitsBase merges every context's aggregate states into a new base partition, in slices
// of at most StateRowsPerSlice state rows, so memory stays bounded.
func BuildUnitsBase(ctx context.Context, conn driver.Conn, x Experiment, watermark time.Time) (UnitsBase, error) {
	// Slices from the number of state rows, an upper bound of the units (unmerged parts repeat
	// contexts); a rollout's units come from raw exposures, bounded the same way.
	var a args
	var table, cond string
	if x.rollout() {
		table, cond = `exposures`, `environment_id = `+a.add(x.EnvironmentID)+` AND flag_key = `+a.add(x.Flag)+
			` AND experiment_key = '' AND timestamp >= toDateTime(`+a.add(x.Start.Unix())+`)`
	} else {
		table, cond = `experiment_units`, `environment_id = `+a.add(x.EnvironmentID)+` AND experiment_key = `+a.add(x.Key)
	}
	var rows uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM `+table+` WHERE `+cond, a...).Scan(&rows); err != nil {
		return UnitsBase{}, fmt.Errorf("metricsql: count units: %w", err)
	}
	id := newID()
	slices := min(max(int((int64(rows)+StateRowsPerSlice-1)/StateRowsPerSlice), 1), sliceBuckets)
	for i := 0; i < slices; i++ {
		var a args
		q := snapshotInsert(id, &a) + `(` + mergedUnitsSQL(x.pass(i, slices), &a) + `)`
		if err := conn.Exec(ctx, q, a...); err != nil {
			_ = DropUnits(context.WithoutCancel(ctx), conn, id)
			return UnitsBase{}, fmt.Errorf("metricsql: materialize units: %w", err)
		}
	}
	n, err := unitPartitionRows(ctx, conn, id)
	if err != nil {
		_ = DropUnits(context.WithoutCancel(ctx), conn, id)
		return UnitsBase{}, err
	}
	return UnitsBase{ID: id, Watermark: watermark, Rows: n}, nil
}

// AdvanceUnits brings a base up to a new watermark: the exposures received since the base's
// watermark are aggregated per context (exposed: how many contexts), and a new partition is
// written from the base's other contexts and those, merged with their base rows; the caller
// records it and drops the old one. With no such exposures it is the same partition under the
// new watermark. Exposures received late are stamped at most lateness before their receipt
// (ingest clamps older times), which bounds the exposures it reads. It fails with
// ErrUnitsBaseGone when the base's partition does not hold base.Rows contexts (dropped, or
// never finished): build a new base then.
func AdvanceUnits(ctx context.Context, conn driver.Conn, x Experiment, base UnitsBase, lateness time.Duration, watermark time.Time) (
	next UnitsBase, exposed int64, err error) {
	if x.rollout() {
		return base, 0, fmt.Errorf("metricsql: a rollout's units (flag %q) have no base", x.Flag)
	}
	if n, err := unitPartitionRows(ctx, conn, base.ID); err != nil {
		return base, 0, err
	} else if n != base.Rows {
		return base, 0, fmt.Errorf("%w: partition %d holds %d contexts, the base %d", ErrUnitsBaseGone, base.ID, n, base.Rows)
	}
	// The delta: the exposures received since the watermark, aggregated per context as
	// experiment_units aggregates them (variation '' when they name several).
	deltaID := newID()
	defer func() { _ = DropUnits(context.WithoutCancel(ctx), conn, deltaID) }()
	var a args
	q := snapshotInsert(deltaID, &a) + `(SELECT context_kind, context_key, argMin(variation_key, timestamp_ms) AS variation,
		min(timestamp_ms) AS first_ms, uniqExact(variation_key) AS nvar FROM exposures
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + `
		AND timestamp >= toDateTime(` + a.add(base.Watermark.Add(-lateness).Unix()) + `) AND received_at >= toDateTime(` + a.add(base.Watermark.Unix()) + `)
		GROUP BY context_kind, context_key)`
	if err := conn.Exec(ctx, q, a...); err != nil {
		return base, 0, fmt.Errorf("metricsql: units exposed since the base: %w", err)
	}
	if exposed, err = unitPartitionRows(ctx, conn, deltaID); err != nil || exposed == 0 {
		base.Watermark = watermark
		return base, 0, err
	}
	// The new partition: the base's other contexts as they are, and each delta context merged
	// with its base row (the earlier first exposure; several variations between the two, or
	// in either, make it a multiple exposure). Ids are numbers this package generated.
	next.ID = newID()
	id, b, d := fmt.Sprint(uint64(next.ID)), fmt.Sprint(uint64(base.ID)), fmt.Sprint(uint64(deltaID))
	delta := func(in string) string {
		return `(context_kind, context_key) ` + in + ` (SELECT context_kind, context_key FROM experiment_unit_snapshots WHERE snapshot_id = ` + d + `)`
	}
	q = `INSERT INTO experiment_unit_snapshots (snapshot_id, bucket, context_kind, context_key, variation, first_ms)
		SELECT toUInt64(` + id + `), bucket, context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots
		WHERE snapshot_id = ` + b + ` AND ` + delta("NOT IN") + `
		UNION ALL
		SELECT toUInt64(` + id + `), bucket, context_kind, context_key,
			if(variation = '' OR (in_base = 1 AND base_variation != variation), '', variation), if(in_base = 1, least(base_first_ms, first_ms), first_ms)
		FROM (SELECT bucket, context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ` + d + `)
		ANY LEFT JOIN (SELECT context_kind, context_key, variation AS base_variation, first_ms AS base_first_ms, toUInt8(1) AS in_base
			FROM experiment_unit_snapshots WHERE snapshot_id = ` + b + ` AND ` + delta("IN") + `) USING (context_kind, context_key)`
	if err := conn.Exec(ctx, q); err != nil {
		_ = DropUnits(context.WithoutCancel(ctx), conn, next.ID)
		return base, 0, fmt.Errorf("metricsql: advance the units base: %w", err)
	}
	n, err := unitPartitionRows(ctx, conn, next.ID)
	if err != nil {
		_ = DropUnits(context.WithoutCancel(ctx), conn, next.ID)
		return base, 0, err
	}
	return UnitsBase{ID: next.ID, Watermark: watermark, Rows: n}, exposed, nil
}

// BaseUnits returns the experiment's units as of now from a base: counted by variation, their
// context hashes checked for distinctness.
func BaseUnits(ctx context.Context, conn driver.Conn, x Experiment, base UnitsBase, now time.Time) (Units, error) {
	u := Units{ID: base.ID, Now: now}
	x = x.WithUnits(u)
	var a args
	exposure, err := exposureCounts(ctx, conn, `SELECT variation, count() FROM (`+x.snapshotUnitsSQL(false, &a)+`) GROUP BY variation`, a)
	if err != nil {
		return u, err
	}
	u.Exposure = exposure
	// It lets the sums group by the hash (contextGroup). Two contexts with one hash share its
	// bucket, so the hashes are counted per bucket: many small sets instead of one of every unit
	// (5M units on 18.16: 0.37-0.57 s, one set 0.8-0.93 s).
	var distinct uint8
	a = nil
	if err := conn.QueryRow(ctx, `SELECT toUInt8(sum(hashes) = sum(units)) FROM (SELECT uniqExact(h) AS hashes, count() AS units
		FROM (SELECT cityHash64(context_kind, context_key) AS h FROM (`+x.snapshotUnitsSQL(false, &a)+`)) GROUP BY h % `+fmt.Sprint(sliceBuckets)+`)`,
		a...).Scan(&distinct); err != nil {
		return u, fmt.Errorf("metricsql: units snapshot hashes: %w", err)
	}
	u.distinctHashes = distinct == 1
	return u, nil
}

// UnitsMargin is how long before a refresh exposures may have been received and not be in
// ClickHouse yet (Kafka → ClickHouse delivery; the folds assume the settle margin, an hour): a
// base advanced by a refresh takes that refresh's clock less UnitsMargin as its watermark, so the
// next refresh merges the contexts of the exposures received since again.
const UnitsMargin = 6 * time.Hour

// ErrUnitsBaseGone: a units base's partition is not (or no longer) what was recorded.
var ErrUnitsBaseGone = errors.New("metricsql: the units base is gone")

// snapshotInsert starts the INSERT of merged units (mergedUnitsSQL's columns) into partition id.
func snapshotInsert(id int64, a *args) string {
	return `INSERT INTO experiment_unit_snapshots (snapshot_id, bucket, context_kind, context_key, variation, first_ms)
		SELECT toUInt64(` + a.add(uint64(id)) + `), toUInt16(cityHash64(context_kind, context_key) % ` + fmt.Sprint(sliceBuckets) + `),
		context_kind, context_key, if(nvar = 1, variation, ''), first_ms FROM `
}

// unitPartitionRows counts the rows of a units partition.
func unitPartitionRows(ctx context.Context, conn driver.Conn, id int64) (int64, error) {
	return partitionRows(ctx, conn, "experiment_unit_snapshots", "snapshot_id", id)
}

// partitionRows counts the rows of partition id of table, partitioned by its column idColumn
// (names are this package's constants).
func partitionRows(ctx context.Context, conn driver.Conn, table, idColumn string, id int64) (int64, error) {
	var n uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM `+table+` WHERE `+idColumn+` = ?`, uint64(id)).Scan(&n); err != nil {
		return 0, fmt.Errorf("metricsql: partition %d of %s: %w", id, table, err)
	}
	return int64(n), nil
}

// snapshotUnitsSQL selects the units of x's units partition in x's slice (context_kind,
// context_key, variation — ” for a unit exposed to several — and first_ms): first exposed in
// [FirstDay, Now). oneVariation keeps only the units exposed to one variation.
func (x Experiment) snapshotUnitsSQL(oneVariation bool, a *args) string {
	q := `SELECT context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ` + a.add(uint64(x.units)) + x.bucketSlice()
	if oneVariation {
		q += ` AND variation != ''`
	}
	if x.analysedFrom() {
		q += ` AND first_ms >= ` + a.add(uint64(x.FirstDay().UnixMilli()))
	}
	return q + ` AND first_ms < ` + a.add(uint64(x.unitsNow))
}

// DropUnits drops a units partition.
func DropUnits(ctx context.Context, conn driver.Conn, id int64) error {
	return dropPartition(ctx, conn, "experiment_unit_snapshots", id)
}

// dropPartition drops partition id of table (one partitioned by an id this package generated).
func dropPartition(ctx context.Context, conn driver.Conn, table string, id int64) error {
	// A partition is named by a literal; id is a number this package generated.
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, uint64(id))); err != nil {
		return fmt.Errorf("metricsql: drop partition %d of %s: %w", id, table, err)
	}
	return nil
}

// DropStaleUnits drops the units partitions last written more than age ago but those in keep
// (the bases kept between refreshes): those of refreshes that crashed before dropping their
// own, and bases no longer recorded. It returns how many it dropped.
func DropStaleUnits(ctx context.Context, conn driver.Conn, age time.Duration, keep map[int64]bool) (int, error) {
	return dropStale(ctx, conn, "experiment_unit_snapshots", age, keep)
}

// dropStale drops the partitions of table (partitioned by an id) last written more than age
// ago but those in keep, and returns how many it dropped.
func dropStale(ctx context.Context, conn driver.Conn, table string, age time.Duration, keep map[int64]bool) (int, error) {
	partitions, err := column[string](ctx, conn, `SELECT partition FROM system.parts WHERE database = currentDatabase()
		AND table = ? AND active GROUP BY partition HAVING max(modification_time) < now() - ?`, table, int64(age.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("metricsql: list the partitions of %s: %w", table, err)
	}
	var stale []uint64
	for _, p := range partitions {
		var id uint64
		if _, err := fmt.Sscan(p, &id); err == nil && !keep[int64(id)] {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		if err := dropPartition(ctx, conn, table, int64(id)); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}
