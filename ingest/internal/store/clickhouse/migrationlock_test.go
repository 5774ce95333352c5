package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// testLock is a migration lock with a short heartbeat, so waiting for it is quick.
func testLock(lost context.CancelCauseFunc) *migrationLock {
	l := newMigrationLock(lost, nil)
	l.heartbeat = 100 * time.Millisecond
	return l
}

func lockTables(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(`SELECT count() FROM system.tables WHERE database = currentDatabase() AND position(name, ?) = 1`,
		lockTablePrefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Processes taking the lock at once hold it one at a time, each gets it, and none is left.
func TestMigrationLockExcludes(t *testing.T) {
	_, db := migratedDB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inside, most, held atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				l := testLock(func(error) {})
				if err := l.Lock(ctx, db); err != nil {
					errc <- err
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				// Work while holding the lock: a few round trips to the server.
				for q := 0; q < 3; q++ {
					var one uint8
					if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
						errc <- err
					}
				}
				inside.Add(-1)
				held.Add(1)
				if err := l.Unlock(ctx, db); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if most.Load() != 1 || held.Load() != 12 {
		t.Fatalf("at most %d holders at once (want 1), %d of 12 acquisitions", most.Load(), held.Load())
	}
	if n := lockTables(t, db); n != 0 {
		t.Fatalf("%d lock tables left after every process released the lock", n)
	}
}

// A lock left by a process that died (no heartbeat for the ttl) is dropped and taken; a live one
// is waited for.
func TestMigrationLockStale(t *testing.T) {
	_, db := migratedDB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holder := testLock(func(error) {})
	if err := holder.Lock(ctx, db); err != nil {
		t.Fatal(err)
	}
	// A live holder: a second process keeps waiting while the holder beats five more times,
	// and gives up with an error when its context ends.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	waiter := testLock(func(error) {})
	waited := make(chan error, 1)
	go func() { waited <- waiter.Lock(wctx, db) }()
	testenv.Eventually(t, 30*time.Second, "five more heartbeats of the holder", func() bool {
		var n uint64
		return db.QueryRow("SELECT count() FROM "+holder.table()).Scan(&n) == nil && n >= 6
	})
	select {
	case err := <-waited:
		t.Fatalf("the waiter stopped waiting while the holder lives: %v", err)
	default:
	}
	wcancel()
	if err := <-waited; err == nil {
		t.Fatal("the waiter took the lock of a live holder")
	}
	if n := lockTables(t, db); n != 1 {
		t.Fatalf("%d lock tables after the waiter gave up, want the holder's alone", n)
	}
	// The holder dies: its heartbeats stop, its table stays.
	close(holder.stop)
	<-holder.done
	holder.stop = nil
	taker := testLock(func(error) {})
	taker.ttl = time.Second
	if err := taker.Lock(ctx, db); err != nil {
		t.Fatal(err)
	}
	defer taker.Unlock(ctx, db)
	var n uint64
	if err := db.QueryRow(`SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?`, holder.table()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the dead holder's lock table was not dropped")
	}
}

// A holder whose lock was taken as stale stops its migrations.
func TestMigrationLockLost(t *testing.T) {
	_, db := migratedDB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	l := testLock(lost)
	l.ttl = time.Hour // so only finding its table gone, not failing to renew it, stops it in time
	if err := l.Lock(ctx, db); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx, db)
	if _, err := db.Exec("DROP TABLE " + l.table()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mctx.Done():
		if !errors.Is(context.Cause(mctx), ErrMigrationLockLost) {
			t.Fatalf("migrations stopped for %v", context.Cause(mctx))
		}
	case <-ctx.Done():
		t.Fatal("the holder never noticed that it lost the lock")
	}
}

// Two ingest processes starting at once across a re-sorting migration: both succeed, one after
// the other, and every event is in the re-sorted table exactly once.
func TestConcurrentMigrations(t *testing.T) {
	o, db := migratedDB(t, 5)
	for d := 0; d < 3; d++ {
		insertTracks(t, db, dayStart.Add(time.Duration(d)*24*time.Hour), rowsPerDay, "u")
	}
	before, sum := fingerprint(t, db, "1")
	var rowsBefore uint64
	if err := db.QueryRow("SELECT count() FROM tracks").Scan(&rowsBefore); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	versions := make([]int64, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			versions[i], errs[i] = migrateTo(ctx, o, nil, 0)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	if versions[0] != versions[1] || versions[0] < rollupsByFold.version {
		t.Fatalf("versions reached: %v", versions)
	}
	create, err := showCreate(ctx, db, "tracks")
	if err != nil {
		t.Fatal(err)
	}
	if after, afterSum := fingerprint(t, db, "1"); after != before || afterSum != sum {
		t.Fatalf("tracks after the migrations: %d rows (fingerprint %d), want %d (%d)", after, afterSum, before, sum)
	}
	var rows uint64
	if err := db.QueryRow("SELECT count() FROM tracks").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != rowsBefore || !strings.Contains(create, "ORDER BY "+tracksSortByDay) {
		t.Fatalf("tracks holds %d rows (had %d), sorted as in %s", rows, rowsBefore, create)
	}
	if n := lockTables(t, db); n != 0 {
		t.Fatalf("%d lock tables left", n)
	}
}
