package clickhouse

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouse has no lock, so several ingest processes starting at once against one database
// (replicas of a deployment rolled out together) would each run a pending migration — for the
// re-sorting ones, two copies of a table racing each other. migrationLock serializes them with
// tables, the one operation ClickHouse makes atomic:
//
//   - A process wanting the lock creates a table of its own, migration_lock_<random id>, with a
//     heartbeat row, then lists the database's lock tables. If any other lock table is alive it
//     drops its own and tries again after a random pause (growing to up to two heartbeats);
//     else it holds the lock. Two processes can both back off, never both hold: whichever
//     listed first did so before the other's table existed, so the other's listing, made after
//     its own table was created, shows the first one's table.
//   - The holder adds a heartbeat row every heartbeat. A lock table whose newest heartbeat (or,
//     before the first one is written, whose creation) is older than ttl belongs to a process
//     that died: whoever sees it drops it.
//   - A holder that finds its table gone (dropped as stale by another process) or cannot write a
//     heartbeat for half the ttl stops its migrations (lost): it can no longer show it holds
//     the lock. Every migration can be re-run after an interruption.
//   - Unlock drops the holder's table.
//
// The lock tables live in the migrated database; goose takes the lock before it reads which
// migrations are pending, so a process that waited finds them applied.
type migrationLock struct {
	id             string
	heartbeat, ttl time.Duration
	// lost cancels the migrations with the cause ErrMigrationLockLost.
	lost context.CancelCauseFunc
	log  *slog.Logger

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// ErrMigrationLockLost is the cause of a migration cancelled because its process lost the
// migration lock.
var ErrMigrationLockLost = errors.New("clickhouse: lost the migration lock")

const lockTablePrefix = "migration_lock_"

// Heartbeat period and time to live of the migration lock, and the bound on one attempt to
// take it (a few small queries).
const (
	lockHeartbeat  = 5 * time.Second
	lockTTL        = time.Minute
	contendTimeout = 30 * time.Second
)

func newMigrationLock(lost context.CancelCauseFunc, log *slog.Logger) *migrationLock {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &migrationLock{id: hex.EncodeToString(b), heartbeat: lockHeartbeat, ttl: lockTTL, lost: lost, log: log}
}

func (l *migrationLock) table() string { return lockTablePrefix + l.id }

// Lock implements goose's lock.Locker: it returns once this process holds the lock.
func (l *migrationLock) Lock(ctx context.Context, db *sql.DB) error {
	pause := l.heartbeat / 10 // doubled after each try, up to a heartbeat
	var logged time.Time
	for {
		// Not cancelled half-way: a CREATE cancelled on the client may still be carried out by
		// the server after this process's DROP, leaving a table others would wait a ttl for.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), contendTimeout)
		holders, err := l.contend(cctx, db)
		cancel()
		if err == nil && len(holders) == 0 && ctx.Err() == nil {
			l.startHeartbeat(db)
			return nil
		}
		if err == nil {
			err = ctx.Err()
		}
		// Not holding it: withdraw, so others need not wait for the ttl.
		if _, derr := db.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+l.table()); derr != nil && err == nil {
			err = fmt.Errorf("clickhouse: drop migration lock: %w", derr)
		}
		if err != nil {
			return err
		}
		if time.Since(logged) > time.Minute {
			l.log.Info("waiting for another ingest process to finish migrating", "lock", holders)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause + rand.N(pause)):
		}
		pause = min(2*pause, l.heartbeat)
	}
}

// contend creates this process's lock table with its first heartbeat, then returns the other
// live lock tables.
func (l *migrationLock) contend(ctx context.Context, db *sql.DB) ([]string, error) {
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+l.table()+" (at DateTime) ENGINE = Log"); err != nil {
		return nil, fmt.Errorf("clickhouse: create migration lock: %w", err)
	}
	if err := l.beat(ctx, db); err != nil {
		return nil, fmt.Errorf("clickhouse: migration lock heartbeat: %w", err)
	}
	return l.holders(ctx, db)
}

// holders lists the other live lock tables, dropping those whose process died.
func (l *migrationLock) holders(ctx context.Context, db *sql.DB) ([]string, error) {
	tables, err := l.others(ctx, db)
	if isGone(err) || isMetadataGone(err) {
		// Reading a table's metadata_modification_time fails while another process drops it:
		// this process cannot tell whether it is alone, and tries again later.
		return []string{"a lock table being dropped"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list migration locks: %w", err)
	}
	var live []string
	for _, t := range tables {
		// Seconds since the newest heartbeat (a huge number when there is none yet).
		var beat int64
		err := db.QueryRowContext(ctx, "SELECT toInt64(now()) - toInt64(max(at)) FROM "+t.name).Scan(&beat)
		if err != nil {
			if isGone(err) {
				continue // released meanwhile
			}
			return nil, fmt.Errorf("clickhouse: read migration lock %s: %w", t.name, err)
		}
		if time.Duration(min(t.age, beat))*time.Second < l.ttl {
			live = append(live, t.name)
			continue
		}
		l.log.Warn("dropping the migration lock of an ingest process that stopped without releasing it", "lock", t.name,
			"last_heartbeat_seconds_ago", beat)
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t.name); err != nil {
			return nil, fmt.Errorf("clickhouse: drop stale migration lock %s: %w", t.name, err)
		}
	}
	return live, nil
}

// lockTable is another process's lock table and its age in seconds.
type lockTable struct {
	name string
	age  int64
}

// others lists the lock tables other than this process's.
func (l *migrationLock) others(ctx context.Context, db *sql.DB) ([]lockTable, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, toInt64(now()) - toInt64(metadata_modification_time) FROM system.tables
		WHERE database = currentDatabase() AND position(name, ?) = 1`, lockTablePrefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tables []lockTable
	for rows.Next() {
		var t lockTable
		if err := rows.Scan(&t.name, &t.age); err != nil {
			return nil, err
		}
		if t.name != l.table() {
			tables = append(tables, t)
		}
	}
	return tables, rows.Err()
}

func (l *migrationLock) beat(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "INSERT INTO "+l.table()+" SELECT now()")
	return err
}

// startHeartbeat keeps the lock alive until Unlock; it calls lost when it cannot.
func (l *migrationLock) startHeartbeat(db *sql.DB) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func(stop <-chan struct{}, done chan<- struct{}) {
		defer close(done)
		t := time.NewTicker(l.heartbeat)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.heartbeat)
			err := l.beat(ctx, db)
			cancel()
			switch {
			case err == nil:
				last = time.Now()
				continue
			case isGone(err):
				l.log.Error("another ingest process took the migration lock as stale; stopping the migrations", "lock", l.table())
			case time.Since(last) > l.ttl/2:
				l.log.Error("cannot renew the migration lock; stopping the migrations", "lock", l.table(), "err", err)
			default:
				continue
			}
			l.lost(ErrMigrationLockLost)
			return
		}
	}(l.stop, l.done)
}

// Unlock implements goose's lock.Locker.
func (l *migrationLock) Unlock(ctx context.Context, db *sql.DB) error {
	l.mu.Lock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	l.mu.Unlock()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+l.table()); err != nil {
		return fmt.Errorf("clickhouse: release migration lock: %w", err)
	}
	return nil
}

// isGone reports ClickHouse's errors for a table that does not exist or is being dropped
// (UNKNOWN_TABLE, TABLE_IS_DROPPED).
func isGone(err error) bool {
	var ex *ch.Exception
	return errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 218)
}

// isMetadataGone reports the error 18.16 gives when a table's metadata file vanishes while
// system.tables reads it (a POCO exception, code 1000: "File not found: …/metadata/….sql").
func isMetadataGone(err error) bool {
	var ex *ch.Exception
	return errors.As(err, &ex) && ex.Code == 1000 && strings.Contains(ex.Message, "File not found") &&
		strings.Contains(ex.Message, lockTablePrefix)
}
