package clickhouse

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
)

// A sorting key cannot change in place, so re-sorting a table copies it: the rows are copied
// into a new table, the two are swapped by one RENAME (an INSERT holding the old table finishes
// first; the next goes to the new table), and the rows the old table received while the copy
// ran — every part holding a block written after the copy started — are copied again. Such a
// part may also hold copied rows (a merge of old parts with new ones): in tracks a row copied
// twice is harmless (every reader deduplicates by event id, and ReplacingMergeTree merges drop
// the copy); the rollups have no deduplication on read, so there only the rows the new table
// lacks are copied (resort.unique). Materialized views on the table are re-created on the new
// one. Each step can be re-run after a crash: resortTable looks at what exists and carries on
// from there. Several ingest processes starting at once run the migrations one after the other
// (migrationLock, migrationlock.go).

// resort describes a re-sorting migration.
type resort struct {
	version int64
	table   string
	// The new table is created like the old one with this engine and partitioning, and this
	// sorting key (SHOW CREATE TABLE naming it says a re-sort is done).
	engine, key string
	// views on the table, re-created on the new one: name and CREATE statement.
	views [][2]string
	// unique, when set, are the columns that identify a row and scope one of them that
	// bounds the set of rows to compare: a row written during the copy is copied again only
	// if the new table lacks it (the table has no deduplication on read). Empty: a row
	// copied twice is harmless.
	unique, scope string
}

func (r resort) newName() string { return r.table + "_resorted" }

// done says whether a table (its SHOW CREATE TABLE) is sorted by r's key and partitioned as
// r's engine says.
func (r resort) done(create string) bool {
	partition := ""
	if i := strings.Index(r.engine, "PARTITION BY "); i >= 0 {
		partition = r.engine[i:]
	}
	return strings.Contains(create, "ORDER BY "+r.key) && strings.Contains(create, partition)
}

// oldName is the old table's name after the swap. It records the last block the copy had
// (copiedUpTo), so a run resumed after a crash copies again only the later blocks. (A bare
// oldPrefix, as an earlier version named it, stands for 0: every row.)
func (r resort) oldName(copiedUpTo int64) string {
	return fmt.Sprintf("%s_%d", r.oldPrefix(), copiedUpTo)
}
func (r resort) oldPrefix() string { return r.table + "_before_resort" }

// findOld looks for the old table a swap left: its name and the copy's last block.
func (r resort) findOld(ctx context.Context, db *sql.DB) (name string, copiedUpTo int64, found bool, err error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM system.tables WHERE database = currentDatabase()
		AND (name = ? OR position(name, ?) = 1)`, r.oldPrefix(), r.oldPrefix()+"_")
	if err != nil {
		return "", 0, false, fmt.Errorf("clickhouse: re-sorting %s, look for the old table: %w", r.table, err)
	}
	defer rows.Close()
	for rows.Next() {
		if found {
			return "", 0, false, fmt.Errorf("clickhouse: re-sorting %s: more than one old table (%s, …)", r.table, name)
		}
		if err := rows.Scan(&name); err != nil {
			return "", 0, false, err
		}
		found = true
		if suffix, ok := strings.CutPrefix(name, r.oldPrefix()+"_"); ok {
			if copiedUpTo, err = strconv.ParseInt(suffix, 10, 64); err != nil {
				return "", 0, false, fmt.Errorf("clickhouse: re-sorting %s: old table %s: %w", r.table, name, err)
			}
		}
	}
	return name, copiedUpTo, found, rows.Err()
}

// migration is r as a goose migration (goose runs it once; it is safe to run again).
func (r resort) migration() *goose.Migration {
	return goose.NewGoMigration(r.version,
		&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return resortTable(ctx, db, r, resortHooks{}) }},
		&goose.GoFunc{RunDB: func(context.Context, *sql.DB) error {
			return fmt.Errorf("clickhouse: migration %d (re-sorting %s) has no way down", r.version, r.table)
		}})
}

// Migration 6 re-sorts tracks by day: ORDER BY (environment_id, event_key, toDate(timestamp),
// context_key, event_id) instead of (environment_id, event_key, context_key, event_id).
//
// Every results refresh reads one day of an experiment's events (a fold) or the few hours since
// the last fold, and tracks is partitioned by month. Sorted by context, each day's rows were
// spread over every granule of the month, so a one-day read scanned the whole month's events
// of its keys once background merges had joined the month's parts: a refresh's cost grew with
// the age of the data in the month (1M units, 20M events over 14 days on 18.16: reading a
// merged day 3.1 s against 1.3 s for a day still in parts of its own). Sorted by day first, a
// day is a contiguous range of the index. ClickHouse 18.16 uses that index only for conditions
// on toDate(timestamp) itself, so the readers add one (metricsql's daysSQL) next to their
// conditions on timestamp.
var tracksByDay = resort{
	version: 6,
	table:   "tracks",
	engine:  "ReplacingMergeTree() PARTITION BY toYYYYMM(timestamp)",
	key:     tracksSortByDay,
	views: [][2]string{{"active_contexts_monthly_tracks_mv", `CREATE MATERIALIZED VIEW IF NOT EXISTS active_contexts_monthly_tracks_mv TO active_contexts_monthly AS
SELECT environment_id, toStartOfMonth(timestamp) AS month, uniqExactState(context_kind, context_key) AS contexts
FROM tracks
GROUP BY environment_id, month`}},
}

const tracksSortByDay = "(environment_id, event_key, toDate(timestamp), context_key, event_id)"

// Migration 7 re-sorts the rollups by (fold_id, cityHash64(context_kind, context_key) % 1024)
// instead of (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
// context_kind, context_key): by the fold, then by the hash bucket the results passes slice the
// contexts by (stats/metricsql's slice, the same expression, which ClickHouse matches with the
// key's).
//
// Every fold writes a day's per-context rows in one INSERT, and ClickHouse sorts them by the
// table's key before writing: by nine columns, five of them strings, that took 4.6–5.0 s for
// one day's 578k rows (1M units, 18.16) against 1.3–1.6 s sorted by the fold and the bucket.
// Reads keep their rows by fold id (fold_id IN (…): the recorded folds), which the new key
// starts with, and a pass's slice of the contexts by bucket, which comes next: a pass of a
// 3-pass refresh reads a third of the rollups instead of all of them and filtering. Rows are
// identified by (fold_id, part, context_kind, context_key): the metric, its version and the
// day are the fold's.
var rollupsByFold = resort{
	version: 7,
	table:   "experiment_metric_rollups",
	engine:  "MergeTree() PARTITION BY toYYYYMM(day)",
	key:     "(fold_id, cityHash64(context_kind, context_key) % 1024)",
	unique:  "fold_id, part, context_kind, context_key",
	scope:   "fold_id",
}

// Migration 8 partitions the rollups by experiment and month, (environment_id, experiment_key,
// toYYYYMM(day)), instead of by month alone, keeping migration 7's sorting key.
//
// The stats workers delete an experiment's rollups once its results are final plus a retention
// period (and rewrite a closed month of an experiment without its replaced folds): with the
// experiment in the partition key that is ALTER TABLE … DROP PARTITION (env, key, month), which
// only unlinks files, instead of a DELETE mutation, which on 18.16 rewrites every part of the
// table. Every fold writes one day of one experiment, so an INSERT still creates one part. The
// partitions are exact, not a hash of the experiment: a hash bucket shared by several
// experiments could only be emptied of one by rewriting it. The cost is the number of
// partitions: about 1–3 per experiment whose rollups are kept (its months), so a few hundred
// to a few thousand while retention drops the concluded ones; readers name the experiment, so
// ClickHouse prunes the others' partitions before reading.
var rollupsByExperiment = resort{
	version: 8,
	table:   "experiment_metric_rollups",
	engine:  "MergeTree() PARTITION BY " + RollupsPartitionKey,
	key:     rollupsByFold.key,
	unique:  rollupsByFold.unique,
	scope:   rollupsByFold.scope,
}

// RollupsPartitionKey is experiment_metric_rollups' partition key since migration 8.
const RollupsPartitionKey = "(environment_id, experiment_key, toYYYYMM(day))"

// resortHooks run inside a re-sort (tests): between the copy and the swap, and after the swap.
type resortHooks struct{ afterCopy, afterSwap func() error }

// resortTable runs r.
func resortTable(ctx context.Context, db *sql.DB, r resort, hooks resortHooks) error {
	exec := func(step, q string, args ...any) error {
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("clickhouse: re-sorting %s, %s: %w", r.table, step, err)
		}
		return nil
	}
	// Blocks written after copiedUpTo were not in the copy (found in the old table's name when
	// an interrupted run got past the swap).
	oldName, copiedUpTo, oldExists, err := r.findOld(ctx, db)
	if err != nil {
		return err
	}
	if oldExists {
		// RENAME renames one table after the other: a crash may have come between the two.
		current, err := tableExists(ctx, db, r.table)
		if err != nil {
			return err
		}
		if !current {
			if err := exec("finish the swap", "RENAME TABLE "+r.newName()+" TO "+r.table); err != nil {
				return err
			}
		}
	} else {
		create, err := showCreate(ctx, db, r.table)
		if err != nil {
			return err
		}
		if r.done(create) {
			return nil // sorted (and partitioned) the new way already
		}
		if err := exec("drop an interrupted copy", "DROP TABLE IF EXISTS "+r.newName()); err != nil {
			return err
		}
		if err := exec("create", "CREATE TABLE "+r.newName()+" AS "+r.table+" ENGINE = "+r.engine+" ORDER BY "+r.key); err != nil {
			return err
		}
		if err := db.QueryRowContext(ctx, `SELECT toInt64(max(max_block_number)) FROM system.parts
			WHERE database = currentDatabase() AND table = ? AND active`, r.table).Scan(&copiedUpTo); err != nil {
			return fmt.Errorf("clickhouse: re-sorting %s, blocks: %w", r.table, err)
		}
		if err := exec("copy", "INSERT INTO "+r.newName()+" SELECT * FROM "+r.table); err != nil {
			return err
		}
		if hooks.afterCopy != nil {
			if err := hooks.afterCopy(); err != nil {
				return err
			}
		}
		// The views re-created below must read the new table.
		for _, v := range r.views {
			if err := exec("drop view "+v[0], "DROP TABLE IF EXISTS "+v[0]); err != nil {
				return err
			}
		}
		oldName = r.oldName(copiedUpTo)
		if err := exec("swap", "RENAME TABLE "+r.table+" TO "+oldName+", "+r.newName()+" TO "+r.table); err != nil {
			return err
		}
		if hooks.afterSwap != nil {
			if err := hooks.afterSwap(); err != nil {
				return err
			}
		}
	}
	for _, v := range r.views {
		if err := exec("re-create view "+v[0], v[1]); err != nil {
			return err
		}
	}
	// The rows written to the old table since the copy started: every part holding a later
	// block (a merge joins old blocks with new ones into one part: those are copied again too).
	late := `_part IN (SELECT name FROM system.parts WHERE database = currentDatabase() AND table = ? AND active
		AND toInt64(max_block_number) > ?)`
	args := []any{oldName, copiedUpTo}
	q := "INSERT INTO " + r.table + " SELECT * FROM " + oldName + " WHERE " + late
	if r.unique != "" {
		// Not the rows the copy has: a late part may be a merge of copied and new ones.
		q += " AND (" + r.unique + ") NOT IN (SELECT " + r.unique + " FROM " + r.table + " WHERE " + r.scope +
			" IN (SELECT " + r.scope + " FROM " + oldName + " WHERE " + late + "))"
		args = append(args, args...)
	}
	if err := exec("copy the rows written during the copy", q, args...); err != nil {
		return err
	}
	return exec("drop the old table", "DROP TABLE "+oldName)
}

// hasSetting says whether the server knows a setting (a query naming one it does not know fails).
func hasSetting(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var n uint64
	if err := db.QueryRowContext(ctx, `SELECT count() FROM system.settings WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("clickhouse: read the server's settings: %w", err)
	}
	return n > 0, nil
}

func tableExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var n uint64
	if err := db.QueryRowContext(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", name).Scan(&n); err != nil {
		return false, fmt.Errorf("clickhouse: does %s exist: %w", name, err)
	}
	return n > 0, nil
}

func showCreate(ctx context.Context, db *sql.DB, table string) (string, error) {
	var create string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+table).Scan(&create); err != nil {
		return "", fmt.Errorf("clickhouse: show create table %s: %w", table, err)
	}
	return create, nil
}
