// Package clickhouse is ingest's ClickHouse store: the connection (native protocol only — the
// HTTP protocol of clickhouse-go does not work with ClickHouse 18.16), the embedded schema
// migrations (goose's clickhouse dialect), the writer's columnar batch inserts, and the usage
// and export queries. Every INSERT names its columns (18.16 needs that for native batches).
package clickhouse

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files (for tests and tools).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// Options addresses a ClickHouse database.
type Options struct {
	Addr     string
	Database string
	User     string
	Password string
	// DialTimeout bounds connecting (default 5 s).
	DialTimeout time.Duration
	// MaxOpenConns bounds the pool (default 8).
	MaxOpenConns int
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidDatabaseName reports whether name is usable unquoted in DDL.
func ValidDatabaseName(name string) bool { return identRE.MatchString(name) }

func (o Options) chOptions(database string) *ch.Options {
	dial := o.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	conns := o.MaxOpenConns
	if conns == 0 {
		conns = 8
	}
	return &ch.Options{
		Protocol:     ch.Native,
		Addr:         []string{o.Addr},
		Auth:         ch.Auth{Database: database, Username: o.User, Password: o.Password},
		DialTimeout:  dial,
		ReadTimeout:  60 * time.Second,
		MaxOpenConns: conns,
		MaxIdleConns: conns,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	}
}

// Open connects to the database (creating it when missing) and waits, up to ctx's deadline,
// until ClickHouse answers.
func Open(ctx context.Context, o Options) (driver.Conn, error) {
	if !ValidDatabaseName(o.Database) {
		return nil, fmt.Errorf("clickhouse: invalid database name %q", o.Database)
	}
	if err := ensureDatabase(ctx, o); err != nil {
		return nil, err
	}
	conn, err := ch.Open(o.chOptions(o.Database))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if err := waitPing(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func ensureDatabase(ctx context.Context, o Options) error {
	conn, err := ch.Open(o.chOptions("default"))
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer conn.Close()
	if err := waitPing(ctx, conn); err != nil {
		return err
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+o.Database); err != nil {
		return fmt.Errorf("clickhouse: create database %s: %w", o.Database, err)
	}
	return nil
}

func waitPing(ctx context.Context, conn driver.Conn) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := conn.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse did not answer: %w", errors.Join(err, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// MigrationTimeout bounds applying the migrations once ClickHouse answers: three of them copy a
// table (migrations 6, 7 and 8; tracks took about a minute per 20M events on the test machine).
const MigrationTimeout = 3 * time.Hour

// Migrate applies the embedded migrations that are pending in o.Database and returns the
// version reached. Waiting for ClickHouse is bounded by ctx, applying the migrations by
// MigrationTimeout. Several ingest processes starting at once migrate one after the other
// (migrationLock); the others wait, then find the migrations applied.
func Migrate(ctx context.Context, o Options, log *slog.Logger) (int64, error) {
	return migrateTo(ctx, o, log, 0)
}

// migrateTo applies the migrations up to version (0: all of them).
func migrateTo(ctx context.Context, o Options, log *slog.Logger, version int64) (int64, error) {
	if err := ensureDatabase(ctx, o); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), MigrationTimeout)
	defer cancel()
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	lock := newMigrationLock(lost, log)
	opts := o.chOptions(o.Database)
	opts.ReadTimeout = MigrationTimeout // a copy answers only when it is done
	db := ch.OpenDB(opts)
	// Since 19.x a server refuses an INSERT whose block spans more than
	// max_partitions_per_insert_block (default 100) partitions, as migration 8's copy into a
	// table partitioned by experiment does: the check is off for the migrations where the
	// server has it (18.16 has not, and refuses a setting it does not know).
	if many, err := hasSetting(ctx, db, "max_partitions_per_insert_block"); err != nil {
		db.Close()
		return 0, err
	} else if many {
		db.Close()
		opts.Settings = ch.Settings{"max_partitions_per_insert_block": 0}
		db = ch.OpenDB(opts)
	}
	defer db.Close()
	store, err := newGooseStore()
	if err != nil {
		return 0, fmt.Errorf("clickhouse: migrations: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectCustom, db, Migrations(), goose.WithStore(store), goose.WithLocker(lock), goose.WithGoMigrations(tracksByDay.migration(), rollupsByFold.migration(), rollupsByExperiment.migration()))
	if err != nil {
		return 0, fmt.Errorf("clickhouse: migrations: %w", err)
	}
	var results []*goose.MigrationResult
	if version > 0 {
		results, err = provider.UpTo(ctx, version)
	} else {
		results, err = provider.Up(ctx)
	}
	for _, r := range results {
		if log != nil {
			log.Info("clickhouse migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration.String())
		}
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrMigrationLockLost) {
			err = errors.Join(cause, err)
		}
		return 0, fmt.Errorf("clickhouse: migrate up: %w", err)
	}
	return provider.GetDBVersion(ctx)
}

// DropDatabase drops o.Database (tests).
func DropDatabase(ctx context.Context, o Options) error {
	conn, err := ch.Open(o.chOptions("default"))
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS "+o.Database)
}
