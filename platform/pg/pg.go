// Package pg connects services to Postgres (pgx v5) and applies their embedded migrations
// (pressly/goose), so every service owns its schema and upgrades it at start-up or with its
// `migrate` subcommand.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Connect opens a pool and waits (up to the context's deadline) until Postgres answers.
func Connect(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pg: parse DSN: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return pool, nil
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("pg: %s did not answer: %w", cfg.ConnConfig.Host, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Migrate applies every pending migration in dir of fsys (goose SQL files) and returns the
// schema version reached. Concurrent starts are serialized by goose's session lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, log *slog.Logger) (int64, error) {
	return MigrateTable(ctx, pool, fsys, "goose_db_version", log)
}

// MigrateTable is Migrate with its own version table, so several services can keep their
// schemas in one database (each service names its table, e.g. "stats_goose_db_version").
func MigrateTable(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, table string, log *slog.Logger) (int64, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(mustLocker()), goose.WithTableName(table))
	if err != nil {
		return 0, fmt.Errorf("pg: migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration.String())
		}
	}
	if err != nil {
		return 0, fmt.Errorf("pg: migrate up: %w", err)
	}
	return provider.GetDBVersion(ctx)
}

// InTx runs fn in a transaction and commits it when fn returns nil.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// IsUniqueViolation reports whether err is a unique constraint violation, and names the constraint.
func IsUniqueViolation(err error) (constraint string, ok bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName, true
	}
	return "", false
}

// IsSerializationFailure reports whether err is a serialization failure or deadlock, which a
// caller may retry.
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func mustLocker() lock.SessionLocker {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic(err) // only fails on invalid options, which are constant here
	}
	return l
}
