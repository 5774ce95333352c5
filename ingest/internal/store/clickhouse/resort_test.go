package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// migratedDB is a database migrated up to version (0: all), dropped at cleanup.
func migratedDB(t *testing.T, version int64) (Options, *sql.DB) {
	t.Helper()
	o := Options{Addr: testenv.RequireClickHouse(t), Database: "test_resort_" + testenv.Suffix(), User: "default"}
	t.Cleanup(func() { // registered first: a failed migration leaves a database too
		if err := DropDatabase(context.Background(), o); err != nil {
			t.Log(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := migrateTo(ctx, o, nil, version); err != nil {
		t.Fatal(err)
	}
	db := ch.OpenDB(o.chOptions(o.Database))
	t.Cleanup(func() { db.Close() })
	return o, db
}

// dayStart is the first of the three days of test events (UTC midnight; the tests compare
// day bounds computed by the server, whatever its time zone).
var dayStart = time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)

const rowsPerDay = 40_000

// insertTracks writes n events of key "view" spread over the day starting at day, for contexts
// named prefix-0 … (100 events each), with a property on every other one.
func insertTracks(t *testing.T, db *sql.DB, day time.Time, n int, prefix string) {
	t.Helper()
	q := `INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, event_key, value, has_value, properties.key, properties.type, properties.value, sdk_name, sdk_version)
		SELECT 'env', generateUUIDv4(), toDateTime(? + intDiv(number * 86400, ?)), (? + intDiv(number * 86400, ?)) * 1000, 0, now(), 0,
		'user', concat(?, toString(intDiv(number, 100))), 'view', toFloat64(number % 7), 1,
		arrayFilter(x -> number % 2 = 0, ['plan']), arrayFilter(x -> number % 2 = 0, ['string']), arrayFilter(x -> number % 2 = 0, ['pro']), 'go', '1'
		FROM numbers(?)`
	if _, err := db.Exec(q, day.Unix(), n, day.Unix(), n, prefix+"-", n); err != nil {
		t.Fatal(err)
	}
}

// fingerprint counts the rows matching where and sums a hash of every column of each: equal
// before and after a copy that kept every row. FINAL: a row copied twice (harmless, readers
// deduplicate) is collapsed as ReplacingMergeTree's merges will.
func fingerprint(t *testing.T, db *sql.DB, where string) (rows uint64, sum uint64) {
	t.Helper()
	if err := db.QueryRow(`SELECT count(), sum(cityHash64(environment_id, toString(event_id), timestamp, timestamp_ms, context_kind, context_key,
		event_key, value, arrayStringConcat(properties.key, ','), arrayStringConcat(properties.value, ','), sdk_name))
		FROM (SELECT * FROM tracks FINAL) WHERE `+where).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	return rows, sum
}

// oneDay counts the events of the middle day the way metricsql reads a day, with ClickHouse
// told to fail a query that reads more than two days of rows.
func oneDay(db *sql.DB) (uint64, error) {
	from, to := dayStart.Add(24*time.Hour), dayStart.Add(48*time.Hour)
	ctx := ch.Context(context.Background(), ch.WithSettings(ch.Settings{"max_rows_to_read": rowsPerDay * 2}))
	var n uint64
	err := db.QueryRowContext(ctx, `SELECT count() FROM tracks WHERE environment_id = 'env' AND event_key = 'view'
		AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)
		AND toDate(timestamp) >= toDate(toDateTime(?)) AND toDate(timestamp) <= toDate(toDateTime(?))`,
		from.Unix(), to.Unix(), from.Unix(), to.Unix()-1).Scan(&n)
	return n, err
}

func activeContexts(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(`SELECT uniqExactMerge(contexts) FROM active_contexts_monthly WHERE environment_id = 'env'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTracksSortedByDay: migration 6 keeps every row exactly once — including the rows written
// to the old table while it copied — swaps the tables, keeps the active-contexts view working
// on the new one, and makes a one-day read read about a day of rows instead of all of them.
func TestTracksSortedByDay(t *testing.T) {
	_, db := migratedDB(t, 5)
	for d := 0; d < 3; d++ {
		insertTracks(t, db, dayStart.Add(time.Duration(d)*24*time.Hour), rowsPerDay, "u")
	}
	// Merged into one part spanning the three days, as background merges leave a month.
	if _, err := db.Exec("OPTIMIZE TABLE tracks FINAL"); err != nil {
		t.Fatal(err)
	}
	if _, err := oneDay(db); err == nil || !strings.Contains(err.Error(), "Limit for rows") {
		t.Fatalf("before the migration a day's read must read the whole month: %v", err)
	}
	wantRows, wantSum := fingerprint(t, db, "1")
	contexts := activeContexts(t, db)

	// Rows written to the old table between the copy and the swap (a running ingest).
	var during uint64
	err := resortTable(context.Background(), db, tracksByDay, resortHooks{afterCopy: func() error {
		insertTracks(t, db, dayStart.Add(24*time.Hour), 1000, "late")
		during = 1000
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rows, sum := fingerprint(t, db, "NOT startsWith(context_key, 'late')"); rows != wantRows || sum != wantSum {
		t.Fatalf("after the migration %d rows (sum %d), want %d (sum %d)", rows, sum, wantRows, wantSum)
	}
	if rows, _ := fingerprint(t, db, "startsWith(context_key, 'late')"); rows != during {
		t.Fatalf("%d of the %d rows written during the copy are in tracks", rows, during)
	}
	// Merged again, as the month will be.
	if _, err := db.Exec("OPTIMIZE TABLE tracks FINAL"); err != nil {
		t.Fatal(err)
	}
	create, err := showCreate(context.Background(), db, "tracks")
	if err != nil || !strings.Contains(create, tracksSortByDay) {
		t.Fatalf("tracks: %s %v", create, err)
	}
	if ok, err := tableExists(context.Background(), db, tracksByDay.newName()); err != nil || ok {
		t.Fatalf("%s left behind (%v)", tracksByDay.newName(), err)
	}
	if name, _, ok, err := tracksByDay.findOld(context.Background(), db); err != nil || ok {
		t.Fatalf("%s left behind (%v)", name, err)
	}
	if n, err := oneDay(db); err != nil || n != rowsPerDay+during {
		t.Fatalf("one day sorted by day: %d rows, %v (want %d)", n, err, rowsPerDay+during)
	}
	// The view counts contexts written to the new table (the late ones came through the copy).
	if got := activeContexts(t, db); got != contexts+10 {
		t.Fatalf("active contexts %d, want %d + the 10 late ones", got, contexts)
	}
	insertTracks(t, db, dayStart, 100, "new")
	if got := activeContexts(t, db); got != contexts+11 {
		t.Fatalf("active contexts after a new one: %d, want %d", got, contexts+11)
	}

	// Running it again changes nothing.
	before, beforeSum := fingerprint(t, db, "1")
	if err := resortTable(context.Background(), db, tracksByDay, resortHooks{}); err != nil {
		t.Fatal(err)
	}
	if after, afterSum := fingerprint(t, db, "1"); after != before || afterSum != beforeSum {
		t.Fatalf("a second run changed tracks: %d → %d rows", before, after)
	}
}

// TestTracksSortedByDayResumes: a run interrupted after the swap, or half-way through it,
// finishes: the old table's rows are all in tracks and the old table is gone. The old table
// has the bare name an earlier version gave it, which does not say what the copy had: every
// row is copied again.
func TestTracksSortedByDayResumes(t *testing.T) {
	for _, halfRenamed := range []bool{false, true} {
		_, db := migratedDB(t, 0)
		insertTracks(t, db, dayStart, 500, "kept")
		// The old table as an interrupted run left it, with rows the new one lacks.
		if _, err := db.Exec("CREATE TABLE " + tracksByDay.oldPrefix() + " AS tracks ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(timestamp) ORDER BY (environment_id, event_key, context_key, event_id)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + tracksByDay.oldPrefix() + " SELECT * FROM tracks"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("RENAME TABLE tracks TO scratch, " + tracksByDay.oldPrefix() + " TO tracks"); err != nil {
			t.Fatal(err)
		}
		insertTracks(t, db, dayStart, 300, "late") // into the old table only
		if _, err := db.Exec("RENAME TABLE tracks TO " + tracksByDay.oldPrefix() + ", scratch TO tracks"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("DROP TABLE active_contexts_monthly_tracks_mv"); err != nil {
			t.Fatal(err)
		}
		if halfRenamed {
			if _, err := db.Exec("RENAME TABLE tracks TO " + tracksByDay.newName()); err != nil {
				t.Fatal(err)
			}
		}
		if err := resortTable(context.Background(), db, tracksByDay, resortHooks{}); err != nil {
			t.Fatal(err)
		}
		var late, all uint64
		if err := db.QueryRow("SELECT uniqExactIf(event_id, startsWith(context_key, 'late')), uniqExact(event_id) FROM tracks").Scan(&late, &all); err != nil {
			t.Fatal(err)
		}
		if late != 300 || all != 800 {
			t.Fatalf("half-renamed %v: %d late and %d events in all, want 300 and 800", halfRenamed, late, all)
		}
		if ok, err := tableExists(context.Background(), db, tracksByDay.oldPrefix()); err != nil || ok {
			t.Fatalf("half-renamed %v: old table left (%v)", halfRenamed, err)
		}
		if ok, err := tableExists(context.Background(), db, "active_contexts_monthly_tracks_mv"); err != nil || !ok {
			t.Fatalf("half-renamed %v: the view was not re-created (%v)", halfRenamed, err)
		}
	}
}

// insertFold writes a fold's rollup rows: n contexts prefix-0 … of metric "m" (part 0).
func insertFold(t *testing.T, db *sql.DB, fold uint64, n int, prefix string) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT 'env', 'x', 'm', toUInt64(1), toUInt8(0), toDate('2026-11-10'), toUInt64(?), 'user', concat(?, toString(number)), number % 5, toFloat64(number % 11)
		FROM numbers(?)`, fold, prefix+"-", n); err != nil {
		t.Fatal(err)
	}
}

func rollupFingerprint(t *testing.T, db *sql.DB, where string) (rows uint64, sum uint64) {
	t.Helper()
	if err := db.QueryRow(`SELECT count(), sum(cityHash64(environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)) FROM experiment_metric_rollups WHERE `+where).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	return rows, sum
}

// TestRollupsSortedByFold: migration 7 keeps every rollup row exactly once — the rollups have
// no deduplication on read — including a fold written during the copy and merged with copied
// rows into one part, and lets a pass read only its buckets through the index.
func TestRollupsSortedByFold(t *testing.T) {
	_, db := migratedDB(t, 6)
	insertFold(t, db, 1, 30_000, "a")
	insertFold(t, db, 2, 30_000, "b")
	wantRows, wantSum := rollupFingerprint(t, db, "1")
	err := resortTable(context.Background(), db, rollupsByFold, resortHooks{afterCopy: func() error {
		insertFold(t, db, 3, 5_000, "c")
		// One part of copied rows and the late fold's: the part is written after the copy began.
		_, err := db.Exec("OPTIMIZE TABLE experiment_metric_rollups FINAL")
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rows, sum := rollupFingerprint(t, db, "fold_id IN (1, 2)"); rows != wantRows || sum != wantSum {
		t.Fatalf("copied folds: %d rows (sum %d), want %d (sum %d)", rows, sum, wantRows, wantSum)
	}
	if rows, _ := rollupFingerprint(t, db, "fold_id = 3"); rows != 5_000 {
		t.Fatalf("the fold written during the copy has %d rows, want 5000", rows)
	}
	if create, err := showCreate(context.Background(), db, "experiment_metric_rollups"); err != nil || !strings.Contains(create, "ORDER BY "+rollupsByFold.key) {
		t.Fatalf("rollups: %s %v", create, err)
	}
	// A quarter of the buckets of one fold, read through the index: about a quarter of its rows.
	if _, err := db.Exec("OPTIMIZE TABLE experiment_metric_rollups FINAL"); err != nil {
		t.Fatal(err)
	}
	ctx := ch.Context(context.Background(), ch.WithSettings(ch.Settings{"max_rows_to_read": 25_000}))
	var n uint64
	if err := db.QueryRowContext(ctx, "SELECT count() FROM experiment_metric_rollups WHERE fold_id IN (1) AND cityHash64(context_kind, context_key) % 1024 BETWEEN 0 AND 255").Scan(&n); err != nil || n < 6_000 || n > 9_000 {
		t.Fatalf("a quarter of fold 1's buckets: %d rows (%v)", n, err)
	}
}

// TestRollupsResortResumesAfterTheSwap: a run that crashed right after the swap knows from the
// old table's name which blocks its copy had, so the resumed run compares only the rows written
// during the copy with the new table — not every rollup row, which at scale would not fit in
// memory (ClickHouse is told to refuse a comparison set of more rows than those).
func TestRollupsResortResumesAfterTheSwap(t *testing.T) {
	_, db := migratedDB(t, 6)
	insertFold(t, db, 1, 30_000, "a")
	insertFold(t, db, 2, 30_000, "b")
	wantRows, wantSum := rollupFingerprint(t, db, "fold_id IN (1, 2)")
	crash := errors.New("crash")
	err := resortTable(context.Background(), db, rollupsByFold, resortHooks{
		afterCopy: func() error {
			// No background merge may join the late fold's part with copied ones (that part
			// would be late as a whole, and the comparison bigger than the limit below).
			if _, err := db.Exec("SYSTEM STOP MERGES experiment_metric_rollups"); err != nil {
				return err
			}
			insertFold(t, db, 3, 5_000, "c")
			return nil
		},
		afterSwap: func() error { return crash },
	})
	if !errors.Is(err, crash) {
		t.Fatalf("the first run ended with %v", err)
	}
	if rows, _ := rollupFingerprint(t, db, "fold_id = 3"); rows != 0 {
		t.Fatalf("the late fold is already in the new table (%d rows): the crash came too late", rows)
	}
	ctx := ch.Context(context.Background(), ch.WithSettings(ch.Settings{"max_rows_in_set": 10_000}))
	if err := resortTable(ctx, db, rollupsByFold, resortHooks{}); err != nil {
		t.Fatal(err)
	}
	if rows, sum := rollupFingerprint(t, db, "fold_id IN (1, 2)"); rows != wantRows || sum != wantSum {
		t.Fatalf("copied folds: %d rows (sum %d), want %d (sum %d)", rows, sum, wantRows, wantSum)
	}
	if rows, _ := rollupFingerprint(t, db, "fold_id = 3"); rows != 5_000 {
		t.Fatalf("the fold written during the copy has %d rows, want 5000", rows)
	}
	if name, _, ok, err := rollupsByFold.findOld(context.Background(), db); err != nil || ok {
		t.Fatalf("%s left behind (%v)", name, err)
	}
}

// insertExperimentFold writes a fold's rollup rows for an experiment's day: n contexts prefix-0 ….
func insertExperimentFold(t *testing.T, db *sql.DB, experiment, day string, fold uint64, n int, prefix string) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO experiment_metric_rollups (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id,
		context_kind, context_key, events, value_sum)
		SELECT 'env', ?, 'm', toUInt64(1), toUInt8(0), toDate(?), toUInt64(?), 'user', concat(?, toString(number)), number % 5, toFloat64(number % 11)
		FROM numbers(?)`, experiment, day, fold, prefix+"-", n); err != nil {
		t.Fatal(err)
	}
}

// rollupPartitions lists the active partitions of the rollups (as system.parts writes them).
func rollupPartitions(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase()
		AND table = 'experiment_metric_rollups' AND active ORDER BY partition`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestRollupsPartitionedByExperiment: migration 8 keeps every rollup row exactly once (a fold
// written during the copy and merged with copied rows too), partitions the rollups by
// experiment and month, so DROP PARTITION (environment, experiment, month) — the form 18.16
// accepts for this key — removes one experiment's month and nothing else, and running it
// again changes nothing.
func TestRollupsPartitionedByExperiment(t *testing.T) {
	_, db := migratedDB(t, 7)
	insertExperimentFold(t, db, "x", "2026-10-31", 1, 20_000, "a")
	insertExperimentFold(t, db, "x", "2026-11-01", 2, 20_000, "b")
	insertExperimentFold(t, db, "y", "2026-11-01", 3, 10_000, "c")
	wantRows, wantSum := rollupFingerprint(t, db, "1")
	err := resortTable(context.Background(), db, rollupsByExperiment, resortHooks{afterCopy: func() error {
		insertExperimentFold(t, db, "y", "2026-11-02", 4, 5_000, "d")
		_, err := db.Exec("OPTIMIZE TABLE experiment_metric_rollups PARTITION 202611 FINAL")
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rows, sum := rollupFingerprint(t, db, "fold_id IN (1, 2, 3)"); rows != wantRows || sum != wantSum {
		t.Fatalf("copied folds: %d rows (sum %d), want %d (sum %d)", rows, sum, wantRows, wantSum)
	}
	if rows, _ := rollupFingerprint(t, db, "fold_id = 4"); rows != 5_000 {
		t.Fatalf("the fold written during the copy has %d rows, want 5000", rows)
	}
	create, err := showCreate(context.Background(), db, "experiment_metric_rollups")
	if err != nil || !strings.Contains(create, "PARTITION BY "+RollupsPartitionKey) || !strings.Contains(create, "ORDER BY "+rollupsByFold.key) {
		t.Fatalf("rollups: %s %v", create, err)
	}
	want := "('env','x',202610) ('env','x',202611) ('env','y',202611)"
	if got := strings.Join(rollupPartitions(t, db), " "); got != want {
		t.Fatalf("partitions %s, want %s", got, want)
	}
	if _, err := db.Exec("ALTER TABLE experiment_metric_rollups DROP PARTITION ('env', 'x', 202611)"); err != nil {
		t.Fatal(err)
	}
	if rows, _ := rollupFingerprint(t, db, "experiment_key = 'x'"); rows != 20_000 {
		t.Fatalf("x after dropping its November: %d rows, want October's 20000", rows)
	}
	if rows, _ := rollupFingerprint(t, db, "experiment_key = 'y'"); rows != 15_000 {
		t.Fatalf("y after dropping x's November: %d rows, want 15000", rows)
	}

	// Running it again changes nothing.
	before, beforeSum := rollupFingerprint(t, db, "1")
	if err := resortTable(context.Background(), db, rollupsByExperiment, resortHooks{afterCopy: func() error {
		return errors.New("copied again")
	}}); err != nil {
		t.Fatal(err)
	}
	if after, afterSum := rollupFingerprint(t, db, "1"); after != before || afterSum != beforeSum {
		t.Fatalf("a second run changed the rollups: %d → %d rows", before, after)
	}
}
