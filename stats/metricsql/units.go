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
// units base (UnitsBase), and each refresh advances it in place (AdvanceUnits): the exposures
// received since its watermark are aggregated per context (a delta, from the raw exposures: what
// experiment_units aggregates, without reading its other states), each delta context is merged
// with its current state in the partition, and only what that changes is appended to the
// partition — a new context as a base row, a context whose state changed (a second variation,
// an earlier first exposure) as a revision row (bucket + revisionBucket). argMin, min and "more
// than one variation" merge exactly, and an exposure in both (received just before the
// watermark) changes nothing, so the partition reads as a merge of every state gives
// (TestAdvancedUnitsMatchAFreshMerge), whatever arrived: new units, a second variation, an
// earlier first exposure, an exposure stamped before the analysis' first day. The base's other
// contexts are never copied: at 5M units an advance used to write all 5M rows again (with the
// counts 6.5 s for a day's 727k exposed contexts, 4.5 s for 179k; now 4.0–4.7 s and 2.1–2.4 s).
//
// A context has one base row, and revision rows once its state changed; every revision is its
// state merged with what came since, so the newest is the earliest first exposure and the
// variation '' (several) as soon as any revision has it (and no revision is later, or of another
// variation, than the base row): the readers (partitionUnitsSQL) take a revised context's
// min(variation) and min(first_ms) over its revisions instead of its base row.
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
	// Rows is how many contexts (first rows) the base's partition holds, Revisions how many
	// revision rows: a check that the partition is still what was recorded (dropped, or
	// appended to by an advance that was never recorded, it is built again). A reader that
	// counts every row as a context (a version before revisions) finds a revised base not what
	// was recorded, and builds its own.
	Rows, Revisions int64
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
	// revised: the partition holds revision rows, which its readers merge.
	revised bool
}

// revisionBucket is added to a revision row's bucket, so that a partition's base rows and its
// revisions are two ranges of its sort key. Buckets are below sliceBuckets.
const revisionBucket = 32768

// MaxRevisedShare bounds a base's revision rows, as a share of its rows: past it, AdvanceUnits
// fails with ErrUnitsBaseRevised and the caller builds a new base (every read leaves the
// revised contexts' first rows out with a set of their hashes and groups their revisions, which
// is cheap only while they are few: at 5M contexts, 5k or 50k revisions cost a full read about
// 0.2 s more, the set and the union, not their number).
var MaxRevisedShare = 0.05

// ErrUnitsBaseRevised: a units base holds more revision rows than MaxRevisedShare allows.
var ErrUnitsBaseRevised = errors.New("metricsql: the units base has too many revised contexts")

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

// AdvanceUnits brings a base up to a new watermark, in place: the exposures received since the
// base's watermark are aggregated per context (exposed: how many contexts), each is merged with
// its state in the base, and the contexts that are new or whose state changed are appended to
// the base's partition (returned with its new counts, which the caller records). With no such
// exposures it is the same base under the new watermark. Exposures received late are stamped at
// most lateness before their receipt (ingest clamps older times), which bounds the exposures it
// reads. It fails with ErrUnitsBaseGone when the base's partition does not hold base.Rows
// contexts and base.Revisions revisions (dropped, never finished, or appended to by an advance
// that failed or was not recorded), and
// with ErrUnitsBaseRevised when it holds too many revisions: build a new base then.
func AdvanceUnits(ctx context.Context, conn driver.Conn, x Experiment, base UnitsBase, lateness time.Duration, watermark time.Time) (
	next UnitsBase, exposed int64, err error) {
	if x.rollout() {
		return base, 0, fmt.Errorf("metricsql: a rollout's units (flag %q) have no base", x.Flag)
	}
	if first, revisions, err := partitionCounts(ctx, conn, base.ID); err != nil {
		return base, 0, err
	} else if first != base.Rows || revisions != base.Revisions {
		return base, 0, fmt.Errorf("%w: partition %d holds %d contexts and %d revisions, the base %d and %d", ErrUnitsBaseGone, base.ID,
			first, revisions, base.Rows, base.Revisions)
	}
	if float64(base.Revisions) > MaxRevisedShare*float64(base.Rows) {
		return base, 0, fmt.Errorf("%w: %d revision rows of %d", ErrUnitsBaseRevised, base.Revisions, base.Rows)
	}
	// The delta: the exposures received since the watermark, aggregated per context as
	// experiment_units aggregates them (variation '' when they name several). exposures is
	// sorted by context, not time, so every exposure of the experiment is looked at: the two
	// times are read first (PREWHERE) and the rest only for the rows they keep (10M exposures,
	// a day's 462k contexts: 0.72–0.79 s against 1.07–1.10 s reading every column).
	deltaID := newID()
	defer func() { _ = DropUnits(context.WithoutCancel(ctx), conn, deltaID) }()
	var a args
	q := snapshotInsert(deltaID, &a) + `(SELECT context_kind, context_key, argMin(variation_key, timestamp_ms) AS variation,
		min(timestamp_ms) AS first_ms, uniqExact(variation_key) AS nvar FROM exposures
		PREWHERE received_at >= toDateTime(` + a.add(base.Watermark.Unix()) + `) AND timestamp >= toDateTime(` + a.add(base.Watermark.Add(-lateness).Unix()) + `)
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + `
		GROUP BY context_kind, context_key)`
	if err := conn.Exec(ctx, q, a...); err != nil {
		return base, 0, fmt.Errorf("metricsql: units exposed since the base: %w", err)
	}
	if exposed, err = unitPartitionRows(ctx, conn, deltaID); err != nil || exposed == 0 {
		base.Watermark = watermark
		return base, 0, err
	}
	// Each delta context merged with its state in the base (the earlier first exposure; several
	// variations between the two, or in either, make it a multiple exposure), appended when it
	// is new (a base row) or its state changed (a revision row). Ids are numbers this package
	// generated.
	id, d := fmt.Sprint(uint64(base.ID)), fmt.Sprint(uint64(deltaID))
	// The delta contexts' state in the base: their rows, a revised one's first row and
	// revisions merged (min over both is the newest revision's state). The base's rows are
	// picked by a set of the delta contexts' hashes, which ClickHouse probes faster than a set of
	// their strings (5M units, a day's 727k contexts: the advance 1.4-1.6 s against 1.9-2.2 s);
	// a context that only shares a hash with one of them is picked too, and the join, on the
	// strings, leaves it out.
	rows := ` FROM experiment_unit_snapshots WHERE snapshot_id = ` + id + ` AND ` + unitHash + ` IN (SELECT ` + unitHash + `
		FROM experiment_unit_snapshots WHERE snapshot_id = ` + d + `)`
	current := `SELECT context_kind, context_key, variation AS base_variation, first_ms AS base_first_ms, toUInt8(1) AS in_base` + rows
	if base.Revisions > 0 {
		current = `SELECT context_kind, context_key, min(variation) AS base_variation, min(first_ms) AS base_first_ms, toUInt8(1) AS in_base` + rows +
			` GROUP BY context_kind, context_key`
	}
	q = `INSERT INTO experiment_unit_snapshots (snapshot_id, bucket, context_kind, context_key, variation, first_ms)
		SELECT toUInt64(` + id + `), toUInt16(if(in_base = 1, bucket + ` + fmt.Sprint(revisionBucket) + `, bucket)), context_kind, context_key,
			merged_variation, merged_first_ms
		FROM (SELECT bucket, context_kind, context_key, in_base, base_variation, base_first_ms,
				if(variation = '' OR (in_base = 1 AND base_variation != variation), '', variation) AS merged_variation,
				if(in_base = 1, least(base_first_ms, first_ms), first_ms) AS merged_first_ms
			FROM (SELECT bucket, context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ` + d + `)
			ANY LEFT JOIN (` + current + `) USING (context_kind, context_key))
		WHERE in_base = 0 OR merged_variation != base_variation OR merged_first_ms != base_first_ms`
	if err := conn.Exec(ctx, q); err != nil {
		return base, 0, fmt.Errorf("metricsql: advance the units base: %w", err)
	}
	first, revisions, err := partitionCounts(ctx, conn, base.ID)
	if err != nil {
		return base, 0, err
	}
	return UnitsBase{ID: base.ID, Watermark: watermark, Rows: first, Revisions: revisions}, exposed, nil
}

// partitionUnitsSQL selects every context of units partition id in x's slice (context_kind,
// context_key, variation, first_ms) in its current state: its first row, or, when it was
// revised (revised: the partition may hold revisions), its revisions merged.
//
// The revised contexts' first rows are left out by a set of the revised contexts' 64-bit
// hashes, which ClickHouse probes far faster than a set of the two strings (5M contexts, 50k of
// them revised: 0.32 s against 0.85–1.4 s to read them all; 0.1–0.2 s without revisions).
// That is exact when the partition's contexts have distinct hashes (distinct, which BaseUnits
// checks). Otherwise, or not known, the revised contexts are merged from their first row and
// their revisions, grouped by the strings (0.6–0.8 s): a context whose hash a revised one shares
// is then merged from its own first row alone, which is that row.
func (x Experiment) partitionUnitsSQL(id int64, revised, distinct bool) string {
	from := `FROM experiment_unit_snapshots WHERE snapshot_id = ` + fmt.Sprint(uint64(id))
	q := `SELECT context_kind, context_key, variation, first_ms ` + from + x.bucketSlice()
	if !revised {
		return q
	}
	r := fmt.Sprint(revisionBucket)
	revisions := from + ` AND bucket >= ` + r + x.bucketSliceFrom(revisionBucket)
	merged := revisions
	if !distinct {
		merged = from + ` AND ` + unitHash + ` IN (SELECT ` + unitHash + ` ` + revisions + `)`
		if x.hi != 0 {
			merged += ` AND ((1` + x.bucketSlice() + `) OR (1` + x.bucketSliceFrom(revisionBucket) + `))`
		}
	}
	return q + ` AND bucket < ` + r + ` AND ` + unitHash + ` NOT IN (SELECT ` + unitHash + ` ` + revisions + `)
		UNION ALL
		SELECT context_kind, context_key, min(variation) AS revised_variation, min(first_ms) AS revised_first_ms ` + merged + `
		GROUP BY context_kind, context_key`
}

// unitHash is the context hash the readers tell revised contexts by (a variable so that a test
// can make hashes collide).
var unitHash = "cityHash64(context_kind, context_key)"

// partitionCounts counts the first rows (contexts) and the revision rows of a units partition.
func partitionCounts(ctx context.Context, conn driver.Conn, id int64) (first, revisions int64, err error) {
	var f, r uint64
	if err := conn.QueryRow(ctx, `SELECT countIf(bucket < ?), countIf(bucket >= ?) FROM experiment_unit_snapshots WHERE snapshot_id = ?`,
		uint16(revisionBucket), uint16(revisionBucket), uint64(id)).Scan(&f, &r); err != nil {
		return 0, 0, fmt.Errorf("metricsql: rows of units partition %d: %w", id, err)
	}
	return int64(f), int64(r), nil
}

// BaseUnits returns the experiment's units as of now from a base (as BuildUnitsBase or
// AdvanceUnits returned it: its Revisions are the partition's): counted by variation, their
// context hashes checked for distinctness.
func BaseUnits(ctx context.Context, conn driver.Conn, x Experiment, base UnitsBase, now time.Time) (Units, error) {
	u := Units{ID: base.ID, Now: now, revised: base.Revisions > 0}
	// Distinct hashes let the sums group by the hash (contextGroup) and the readers tell a
	// revised context's first row by its hash (partitionUnitsSQL). Every context of the
	// partition has one first row (its units are some of them), so their hashes are checked;
	// two contexts with one hash share its bucket, so they are counted per bucket: many small
	// sets instead of one of every context (5M units on 18.16: 0.37-0.57 s, one set 0.8-0.93 s).
	var distinct uint8
	if err := conn.QueryRow(ctx, `SELECT toUInt8(sum(hashes) = sum(contexts)) FROM (SELECT uniqExact(h) AS hashes, count() AS contexts
		FROM (SELECT `+unitHash+` AS h FROM experiment_unit_snapshots WHERE snapshot_id = ? AND bucket < ?)
		GROUP BY h % `+fmt.Sprint(sliceBuckets)+`)`, uint64(base.ID), uint16(revisionBucket)).Scan(&distinct); err != nil {
		return u, fmt.Errorf("metricsql: units snapshot hashes: %w", err)
	}
	u.distinctHashes = distinct == 1
	x = x.WithUnits(u)
	var a args
	exposure, err := exposureCounts(ctx, conn, `SELECT variation, count() FROM (`+x.snapshotUnitsSQL(false, &a)+`) GROUP BY variation`, a)
	if err != nil {
		return u, err
	}
	u.Exposure = exposure
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
	q := x.partitionUnitsSQL(x.units, x.revised, x.hashed)
	if x.revised {
		q = `SELECT context_kind, context_key, variation, first_ms FROM (` + q + `) WHERE 1`
	}
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
