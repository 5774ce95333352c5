package results

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/platform/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps snapshots and the folding bookkeeping in Postgres.
type Store struct {
	Pool *pgxpool.Pool
}

// Migrate applies the stats service's migrations (own version table in the shared database).
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	_, err = pg.MigrateTable(ctx, s.Pool, sub, "stats_goose_db_version", log)
	return err
}

// SaveSnapshot stores a snapshot.
func (s *Store) SaveSnapshot(ctx context.Context, experimentID string, snap *Snapshot) error {
	body, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	_, err = s.Pool.Exec(ctx, `INSERT INTO results_snapshots (experiment_id, project_key, experiment_key, computed_at, body)
		VALUES ($1, $2, $3, $4, $5)`, experimentID, snap.Project, snap.Experiment, snap.ComputedAt, body)
	return err
}

// maxFailureMessage bounds a recorded refresh error (ClickHouse errors can quote whole queries).
const maxFailureMessage = 1000

// RecordFailure records that a refresh of the experiment failed at at, replacing an earlier one.
func (s *Store) RecordFailure(ctx context.Context, experimentID string, at time.Time, err error) error {
	msg := err.Error()
	if len(msg) > maxFailureMessage {
		msg = strings.ToValidUTF8(msg[:maxFailureMessage], "") + "…"
	}
	_, e := s.Pool.Exec(ctx, `INSERT INTO results_refresh_failures (experiment_id, failed_at, message) VALUES ($1, $2, $3)
		ON CONFLICT (experiment_id) DO UPDATE SET failed_at = excluded.failed_at, message = excluded.message`, experimentID, at, msg)
	return e
}

// ClearFailure forgets the experiment's failed refresh (a refresh succeeded).
func (s *Store) ClearFailure(ctx context.Context, experimentID string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM results_refresh_failures WHERE experiment_id = $1`, experimentID)
	return err
}

// LastFailure is the experiment's failed refresh since its last successful one, or nil.
func (s *Store) LastFailure(ctx context.Context, experimentID string) (*RefreshError, error) {
	var f RefreshError
	err := s.Pool.QueryRow(ctx, `SELECT failed_at, message FROM results_refresh_failures WHERE experiment_id = $1`, experimentID).Scan(&f.At, &f.Message)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.At = f.At.UTC()
	return &f, nil
}

// Snapshots returns an experiment's snapshots, newest first.
func (s *Store) Snapshots(ctx context.Context, experimentID string, limit int) ([]Snapshot, error) {
	rows, err := s.Pool.Query(ctx, `SELECT body FROM results_snapshots WHERE experiment_id = $1 ORDER BY computed_at DESC, id DESC LIMIT $2`,
		experimentID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Snapshot, error) {
		var raw []byte
		var snap Snapshot
		if err := r.Scan(&raw); err != nil {
			return snap, err
		}
		return snap, json.Unmarshal(raw, &snap)
	})
}

// Fold is the recorded fold of one day of a metric part.
type Fold struct {
	// ID is the fold whose rows count.
	ID int64
	// CheckedAt is the worker's time when the fold's read started, or when a later check found
	// no event of the day received since: the fold holds every event received before
	// CheckedAt minus the settle margin.
	CheckedAt time.Time
}

// Folded returns the days already folded for a metric part of an experiment, with their folds.
func (s *Store) Folded(ctx context.Context, experimentID, metric string, version int64, part int) (map[time.Time]Fold, error) {
	rows, err := s.Pool.Query(ctx, `SELECT day, fold_id, checked_at FROM results_folds
		WHERE experiment_id = $1 AND metric_key = $2 AND metric_version = $3 AND part = $4`, experimentID, metric, version, part)
	if err != nil {
		return nil, err
	}
	out := map[time.Time]Fold{}
	var day time.Time
	var f Fold
	_, err = pgx.ForEachRow(rows, []any{&day, &f.ID, &f.CheckedAt}, func() error {
		out[time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)] = f
		return nil
	})
	return out, err
}

// MarkFolded records a folded day and the fold whose rows count, after ClickHouse acknowledged
// the rollup insert. A crash between the two folds the day again under a new id; the first
// fold's rows are then never read. The first record of a day stays.
func (s *Store) MarkFolded(ctx context.Context, experimentID, metric string, version int64, part int, day time.Time, f Fold) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_folds (experiment_id, metric_key, metric_version, part, day, fold_id, checked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, experimentID, metric, version, part, day, f.ID, f.CheckedAt)
	return err
}

// Refolded swaps a folded day's recorded fold for a new fold of the day (late events), in one
// update: reads take either fold's rows, never both. It is a no-op unless old is still the
// recorded fold.
func (s *Store) Refolded(ctx context.Context, experimentID, metric string, version int64, part int, day time.Time, old int64, f Fold) error {
	_, err := s.Pool.Exec(ctx, `UPDATE results_folds SET fold_id = $7, checked_at = $8, folded_at = now()
		WHERE experiment_id = $1 AND metric_key = $2 AND metric_version = $3 AND part = $4 AND day = $5 AND fold_id = $6`,
		experimentID, metric, version, part, day, old, f.ID, f.CheckedAt)
	return err
}

// MarkChecked records that no event of the days' folds was received since their checks
// before checkedAt (only ever moves checked_at forward).
func (s *Store) MarkChecked(ctx context.Context, experimentID, metric string, version int64, part int, days []time.Time, checkedAt time.Time) error {
	if len(days) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE results_folds SET checked_at = $6
		WHERE experiment_id = $1 AND metric_key = $2 AND metric_version = $3 AND part = $4 AND day = ANY($5::date[]) AND checked_at < $6`,
		experimentID, metric, version, part, days, checkedAt)
	return err
}

// TryLock takes a session advisory lock on key for the connection's life; release with the
// returned function. ok is false when another replica holds it.
func (s *Store) TryLock(ctx context.Context, key string) (release func(), ok bool, err error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, err
	}
	return func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
		conn.Release()
	}, true, nil
}
