package metricsql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Deleting rollups. Since ingest's ClickHouse migration 8, experiment_metric_rollups is
// partitioned by (environment_id, experiment_key, toYYYYMM(day)): one experiment's month is a
// partition of its own, dropped (its files unlinked) or replaced by ALTER TABLE … PARTITION
// (env, key, month) — the tuple form, which 18.16 accepts for this key (checked: system.parts
// shows such a partition as ('env','key',202611)) and which a table still partitioned by month
// alone refuses ("Wrong number of fields in the partition expression") instead of dropping a
// whole month of every experiment. A DELETE mutation would rewrite every part of the table on
// 18.16.

// rollupsPartitionKey is the rollups' partition key since migration 8, without spaces or the
// enclosing parentheses (how system.tables spells it varies between versions).
const rollupsPartitionKey = "environment_id,experiment_key,toYYYYMM(day)"

// RollupsByExperiment says whether the rollups are partitioned by experiment (migration 8 has run).
func RollupsByExperiment(ctx context.Context, conn driver.Conn) (bool, error) {
	var key string
	if err := conn.QueryRow(ctx, `SELECT partition_key FROM system.tables WHERE database = currentDatabase()
		AND name = 'experiment_metric_rollups'`).Scan(&key); err != nil {
		return false, fmt.Errorf("metricsql: the rollups' partition key: %w", err)
	}
	key = strings.ReplaceAll(key, " ", "")
	if strings.HasPrefix(key, "(") && strings.HasSuffix(key, ")") {
		key = key[1 : len(key)-1]
	}
	return key == rollupsPartitionKey, nil
}

// RollupMonths are the months (YYYYMM) holding rollup rows of an experiment. ClickHouse reads
// only the experiment's partitions (the partition key prunes the others), and of them only
// the day column.
func RollupMonths(ctx context.Context, conn driver.Conn, environmentID, key string) ([]uint32, error) {
	out, err := column[uint32](ctx, conn, `SELECT DISTINCT toYYYYMM(day) FROM experiment_metric_rollups
		WHERE environment_id = ? AND experiment_key = ? ORDER BY 1`, environmentID, key)
	if err != nil {
		return nil, fmt.Errorf("metricsql: months of rollups of %s: %w", key, err)
	}
	return out, nil
}

// RollupEnvironment finds the environment of an experiment's rollups from one of its recorded
// fold ids (random 64-bit numbers, so one names the experiment's rows alone): for an experiment
// whose environment was never recorded. ClickHouse reads the rollups' primary index (fold_id
// leads it) in the partitions of that experiment key. found is false when no row has the fold.
func RollupEnvironment(ctx context.Context, conn driver.Conn, key string, foldID int64) (environmentID string, found bool, err error) {
	envs, err := column[string](ctx, conn, `SELECT environment_id FROM experiment_metric_rollups
		WHERE experiment_key = ? AND fold_id = toUInt64(?) LIMIT 1`, key, uint64(foldID))
	if err != nil {
		return "", false, fmt.Errorf("metricsql: the environment of the rollups of %s: %w", key, err)
	}
	if len(envs) == 0 {
		return "", false, nil
	}
	return envs[0], true, nil
}

// column runs a query of one column and returns its values.
func column[T any](ctx context.Context, conn driver.Conn, query string, args ...any) ([]T, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// DropRollups drops every rollup partition of an experiment and returns how many months it
// dropped. Dropping a partition that is gone already is a no-op, so it can be re-run.
func DropRollups(ctx context.Context, conn driver.Conn, environmentID, key string) (int, error) {
	months, err := RollupMonths(ctx, conn, environmentID, key)
	if err != nil {
		return 0, err
	}
	for i, m := range months {
		if err := conn.Exec(ctx, `ALTER TABLE experiment_metric_rollups DROP PARTITION (?, ?, toUInt32(?))`, environmentID, key, m); err != nil {
			return i, fmt.Errorf("metricsql: drop the rollups of %s, month %d: %w", key, m, err)
		}
	}
	return len(months), nil
}

// compactPrefix names the staging tables of CompactRollups.
const compactPrefix = "experiment_metric_rollups_compact_"

// CompactRollups rewrites one month of an experiment's rollups keeping only the rows of the
// folds in keep (the recorded ones): the kept rows are copied into a staging table, which
// replaces the partition (ALTER TABLE … REPLACE PARTITION … FROM, on 18.16 too), then dropped.
// It returns the rows before and after; a month without other folds' rows is left as it is
// (after = before). The caller must keep every writer of the experiment's rollups away
// meanwhile (the results workers' experiment lock): a fold written between the copy and the
// replace would be lost.
func CompactRollups(ctx context.Context, conn driver.Conn, environmentID, key string, month uint32, keep []int64) (before, after uint64, err error) {
	// Placeholders are bound in text order: keepSQL's values first here, where's first below.
	var w, k args
	where := `environment_id = ` + w.add(environmentID) + ` AND experiment_key = ` + w.add(key) + ` AND toYYYYMM(day) = toUInt32(` + w.add(month) + `)`
	keepSQL := `0`
	if len(keep) > 0 {
		ids := make([]string, len(keep))
		for i, id := range keep {
			ids[i] = `toUInt64(` + k.add(uint64(id)) + `)`
		}
		keepSQL = `fold_id IN (` + strings.Join(ids, ", ") + `)`
	}
	a := append(append(args{}, k...), w...)
	if err := conn.QueryRow(ctx, `SELECT count(), countIf(`+keepSQL+`) FROM (SELECT fold_id FROM experiment_metric_rollups WHERE `+where+`)`,
		a...).Scan(&before, &after); err != nil {
		return 0, 0, fmt.Errorf("metricsql: count the rollups of %s, month %d: %w", key, month, err)
	}
	if after == before {
		return before, after, nil
	}
	staging := fmt.Sprintf("%s%d", compactPrefix, uint64(newID()))
	defer func() {
		if derr := conn.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+staging); derr != nil && err == nil {
			err = fmt.Errorf("metricsql: drop %s: %w", staging, derr)
		}
	}()
	if err := conn.Exec(ctx, `CREATE TABLE `+staging+` AS experiment_metric_rollups`); err != nil {
		return 0, 0, fmt.Errorf("metricsql: compact the rollups of %s: %w", key, err)
	}
	if err := conn.Exec(ctx, `INSERT INTO `+staging+` SELECT * FROM experiment_metric_rollups WHERE `+where+` AND `+keepSQL,
		append(append(args{}, w...), k...)...); err != nil {
		return 0, 0, fmt.Errorf("metricsql: compact the rollups of %s, month %d, copy: %w", key, month, err)
	}
	if err := conn.Exec(ctx, `ALTER TABLE experiment_metric_rollups REPLACE PARTITION (?, ?, toUInt32(?)) FROM `+staging,
		environmentID, key, month); err != nil {
		return 0, 0, fmt.Errorf("metricsql: compact the rollups of %s, month %d, replace: %w", key, month, err)
	}
	return before, after, nil
}

// DropStaleCompactions drops the staging tables of compactions that crashed (older than age)
// and returns how many.
func DropStaleCompactions(ctx context.Context, conn driver.Conn, age time.Duration) (int, error) {
	stale, err := column[string](ctx, conn, `SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, ?)
		AND metadata_modification_time < now() - ?`, compactPrefix, int64(age.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("metricsql: list compaction tables: %w", err)
	}
	for i, name := range stale {
		if _, err := strconv.ParseUint(strings.TrimPrefix(name, compactPrefix), 10, 64); err != nil {
			continue // not one of ours
		}
		if err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+name); err != nil {
			return i, fmt.Errorf("metricsql: drop %s: %w", name, err)
		}
	}
	return len(stale), nil
}

// RawEventsGone says whether the raw events of day's month were deleted by the raw-event
// retention (the jobs service drops whole months of the raw tables, oldest first): the earliest
// month tracks still holds is later than day's, both in the server's time zone as its partitions
// are. A table without any partition says no (nothing was ever received, so nothing was lost).
// It reads system.parts only.
func RawEventsGone(ctx context.Context, conn driver.Conn, day time.Time) (bool, error) {
	var gone uint8
	if err := conn.QueryRow(ctx, `SELECT toUInt8(count() > 0 AND min(toUInt32OrZero(partition)) > toYYYYMM(toDateTime(?)))
		FROM system.parts WHERE database = currentDatabase() AND table = 'tracks' AND active`, day.Unix()).Scan(&gone); err != nil {
		return false, fmt.Errorf("metricsql: the earliest month of raw events: %w", err)
	}
	return gone == 1, nil
}
