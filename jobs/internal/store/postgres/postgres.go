// Package postgres is the jobs service's Postgres store: its schema ("jobs", beside the flag
// service's tables in the same database), the embedded goose migrations, and the queries of the
// alert outbox, guardrail breaches, scheduled changes, project settings and digest runs. Every
// exactly-once guarantee of the service rests on a unique key or a row lease here.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/platform/pg"
)

// Schema holds the service's tables.
const Schema = "jobs"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// Store is the service's Postgres store.
type Store struct {
	Pool *pgxpool.Pool
	// DefaultChannel is the Slack channel of projects that did not set their own.
	DefaultChannel string
	now            func() time.Time
}

// WithSchema returns dsn with search_path set to the service's schema, so unqualified table
// names (and goose's version table) resolve there.
func WithSchema(dsn string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pg: parse DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", Schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + Schema, nil
}

// Open connects (waiting up to ctx's deadline for Postgres), creates the schema when missing
// and, when migrate is set, applies pending migrations.
func Open(ctx context.Context, dsn string, maxConns int32, migrate bool, log *slog.Logger) (*Store, error) {
	withSchema, err := WithSchema(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pg.Connect(ctx, withSchema, maxConns)
	if err != nil {
		return nil, err
	}
	s := &Store{Pool: pool, now: time.Now}
	if migrate {
		if err := s.Migrate(ctx, log); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Migrate creates the schema and applies pending migrations.
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) error {
	if _, err := s.Pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+Schema); err != nil {
		// Concurrent first starts may race on the schema: the loser sees a unique violation.
		if _, dup := pg.IsUniqueViolation(err); !dup {
			return fmt.Errorf("pg: create schema %s: %w", Schema, err)
		}
	}
	if _, err := pg.Migrate(ctx, s.Pool, Migrations(), log); err != nil {
		return err
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping checks Postgres (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pg.InTx(ctx, s.Pool, fn)
}
