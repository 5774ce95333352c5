package metricsql

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The units of an experiment are merged from experiment_units' aggregate states (first
// variation, first exposure, how many variations), which costs a read of every state row. A
// refresh needs them in every query — twice per pass of every metric (the units and the
// conversion-window join), and in every fold — so it materializes them once: MaterializeUnits
// writes the refresh's units into a partition of experiment_unit_snapshots (ingest migration
// 00005), every query on x.WithUnits(units) reads that partition, and DropUnits drops it at the end.

// StateRowsPerSlice bounds the aggregate-state rows (about 2 per unit before background merges)
// one MaterializeUnits query merges. Each slice re-reads every state row, so slices are few and
// large (18.16, 10M state rows: a fifth of the units took 3.4 s, all of them in one query 12.5 s).
var StateRowsPerSlice int64 = 8_000_000

// Units is a materialized units snapshot.
type Units struct {
	ID       int64
	Exposure Exposure
	// distinctHashes: no two of the snapshot's contexts share cityHash64(context_kind,
	// context_key) (Experiment.contextGroup).
	distinctHashes bool
}

// MaterializeUnits writes the experiment's units first exposed before now into a new units
// snapshot and returns it with the unit counts; queries read it through x.WithUnits. It merges
// the states in slices of at most StateRowsPerSlice state rows, so memory stays bounded.
func MaterializeUnits(ctx context.Context, conn driver.Conn, x Experiment, now time.Time) (Units, error) {
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
		return Units{}, fmt.Errorf("metricsql: count units: %w", err)
	}
	id := newID()
	slices := min(max(int((int64(rows)+StateRowsPerSlice-1)/StateRowsPerSlice), 1), sliceBuckets)
	for i := 0; i < slices; i++ {
		var a args
		q := `INSERT INTO experiment_unit_snapshots (snapshot_id, bucket, context_kind, context_key, variation, first_ms)
		SELECT toUInt64(` + a.add(uint64(id)) + `), toUInt16(cityHash64(context_kind, context_key) % ` + fmt.Sprint(sliceBuckets) + `),
		context_kind, context_key, if(nvar = 1, variation, ''), first_ms FROM (` + unitsSQL(x.pass(i, slices), &a) + `)
		WHERE first_ms < ` + a.add(uint64(now.UnixMilli()))
		if err := conn.Exec(ctx, q, a...); err != nil {
			_ = DropUnits(context.WithoutCancel(ctx), conn, id)
			return Units{}, fmt.Errorf("metricsql: materialize units: %w", err)
		}
	}
	exposure, err := exposureCounts(ctx, conn, `SELECT variation, count() FROM experiment_unit_snapshots WHERE snapshot_id = ? GROUP BY variation`,
		args{uint64(id)})
	var distinct uint8
	if err == nil {
		// 0.14 s for 1M units on 18.16; it lets the sums group by the hash (contextGroup).
		if err = conn.QueryRow(ctx, `SELECT toUInt8(uniqExact(cityHash64(context_kind, context_key)) = count()) FROM experiment_unit_snapshots
			WHERE snapshot_id = ?`, uint64(id)).Scan(&distinct); err != nil {
			err = fmt.Errorf("metricsql: units snapshot hashes: %w", err)
		}
	}
	if err != nil {
		_ = DropUnits(context.WithoutCancel(ctx), conn, id)
		return Units{}, err
	}
	return Units{ID: id, Exposure: exposure, distinctHashes: distinct == 1}, nil
}

// DropUnits drops a units snapshot.
func DropUnits(ctx context.Context, conn driver.Conn, id int64) error {
	// A partition is named by a literal; id is a number this package generated.
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE experiment_unit_snapshots DROP PARTITION %d", uint64(id))); err != nil {
		return fmt.Errorf("metricsql: drop units snapshot %d: %w", id, err)
	}
	return nil
}

// DropStaleUnits drops the units snapshots last written more than age ago: those of refreshes
// that crashed before dropping their own. It returns how many it dropped.
func DropStaleUnits(ctx context.Context, conn driver.Conn, age time.Duration) (int, error) {
	partitions, err := column[string](ctx, conn, `SELECT partition FROM system.parts WHERE database = currentDatabase()
		AND table = 'experiment_unit_snapshots' AND active GROUP BY partition HAVING max(modification_time) < now() - ?`, int64(age.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("metricsql: list units snapshots: %w", err)
	}
	var stale []uint64
	for _, p := range partitions {
		var id uint64
		if _, err := fmt.Sscan(p, &id); err == nil {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		if err := DropUnits(ctx, conn, int64(id)); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}
