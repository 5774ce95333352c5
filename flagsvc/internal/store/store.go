// Package store persists the flag service's data in Postgres (pgx v5). Every mutation runs in
// a transaction (Store.InTx) through the typed methods of Tx, so a change, its history version,
// its audit entry and its outbox row commit together or not at all. Migrations are embedded
// and applied at start-up.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// NotifyChannel is the LISTEN/NOTIFY channel on which replicas wake the publishing leader.
const NotifyChannel = "switchyard_outbox"

// Store is the Postgres store.
type Store struct {
	Pool  *pgxpool.Pool
	bumps chan struct{}
	// bumpedMu guards bumped: the environments whose outbox rows this replica committed since
	// the last TakeBumped.
	bumpedMu sync.Mutex
	bumped   map[string]struct{}
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{Pool: pool, bumps: make(chan struct{}, 1), bumped: map[string]struct{}{}}
}

// Bumps signals after a transaction that wrote outbox rows commits; one pending signal stands
// for any number of commits. The publisher wakes on it (or, when another replica leads,
// passes it on with NOTIFY). A NOTIFY inside the transactions themselves would serialize
// every commit, WAL flush included, on Postgres' notification queue lock.
func (s *Store) Bumps() <-chan struct{} { return s.bumps }

// TakeBumped returns, and forgets, the environments whose outbox rows this replica committed
// since the last call: the leading publisher compiles them without first asking the outbox
// which environments changed. It is a shortcut, not a record: the outbox rows stay pending
// until published, whatever becomes of this list.
func (s *Store) TakeBumped() []string {
	s.bumpedMu.Lock()
	defer s.bumpedMu.Unlock()
	if len(s.bumped) == 0 {
		return nil
	}
	ids := slices.Collect(maps.Keys(s.bumped))
	clear(s.bumped)
	return ids
}

// Migrate applies the embedded migrations.
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) (int64, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	return pg.Migrate(ctx, s.Pool, sub, log)
}

// Tx is a transaction with the store's typed queries.
type Tx struct {
	tx pgx.Tx
	// bumped are the environments the transaction wrote outbox rows for (BumpRuleset,
	// SaveConfigChange).
	bumped []string
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (t *Tx) q() querier { return t.tx }

// PgxTx exposes the underlying transaction for bulk operations (COPY).
func (t *Tx) PgxTx() pgx.Tx { return t.tx }

// InTx runs fn in a read-committed transaction and commits when it returns nil. Serialization
// failures and deadlocks are retried a few times.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	var bumped []string
	for attempt := 0; attempt < 3; attempt++ {
		err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			t := &Tx{tx: tx}
			err := fn(t)
			bumped = t.bumped
			return err
		})
		if !pg.IsSerializationFailure(err) {
			break
		}
	}
	if err == nil && len(bumped) > 0 {
		s.bumpedMu.Lock()
		for _, id := range bumped {
			s.bumped[id] = struct{}{}
		}
		s.bumpedMu.Unlock()
		select {
		case s.bumps <- struct{}{}:
		default:
		}
	}
	return translate(err)
}

// Read runs fn in a read-only repeatable-read transaction (a consistent snapshot).
func (s *Store) Read(ctx context.Context, fn func(tx *Tx) error) error {
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(&Tx{tx: tx}) })
	return translate(err)
}

// constraintFields maps unique constraints to the API field they concern.
var constraintFields = map[string][2]string{
	"organizations_key_key":    {"key", "an organization with this key already exists"},
	"users_email_key":          {"email", "a user with this email already exists"},
	"projects_org_key":         {"key", "a project with this key already exists"},
	"environments_project_key": {"key", "an environment with this key already exists in the project"},
	"flags_project_key":        {"key", "a flag with this key already exists in the project"},
	"segments_environment_key": {"key", "a segment with this key already exists in the environment"},
	"memberships_pkey":         {"email", "this user is already a member"},
	"metrics_project_key":      {"key", "a metric with this key already exists in the project"},
	"experiments_project_key":  {"key", "an experiment with this key already exists in the project"},
	"experiments_one_running":  {"flag", "another experiment is already running on this flag in this environment"},
}

// translate turns database errors into the service's error vocabulary.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if c, ok := pg.IsUniqueViolation(err); ok {
		if f, found := constraintFields[c]; found {
			return errs.Conflict(f[0], "%s", f[1])
		}
		return errs.Conflict("", "already exists (%s)", c)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return errs.Internal(err, "database error")
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return errs.Unavailable(err, "database unavailable")
	}
	return fmt.Errorf("store: %w", err)
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.NotFound(format, args...)
	}
	return err
}

// nullable returns nil for an empty string, so optional uuid columns get NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
