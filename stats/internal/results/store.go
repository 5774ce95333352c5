package results

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
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

// Folded returns the days already folded for a metric part of an experiment, with the id of
// the fold whose rows count.
func (s *Store) Folded(ctx context.Context, experimentID, metric string, version int64, part int) (map[time.Time]int64, error) {
	rows, err := s.Pool.Query(ctx, `SELECT day, fold_id FROM results_folds WHERE experiment_id = $1 AND metric_key = $2 AND metric_version = $3 AND part = $4`,
		experimentID, metric, version, part)
	if err != nil {
		return nil, err
	}
	out := map[time.Time]int64{}
	var day time.Time
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&day, &id}, func() error {
		out[time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)] = id
		return nil
	})
	return out, err
}

// MarkFolded records a folded day and the fold whose rows count, after ClickHouse acknowledged
// the rollup insert. A crash between the two folds the day again under a new id; the first
// fold's rows are then never read. The first record of a day stays.
func (s *Store) MarkFolded(ctx context.Context, experimentID, metric string, version int64, part int, day time.Time, foldID int64) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_folds (experiment_id, metric_key, metric_version, part, day, fold_id) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`, experimentID, metric, version, part, day, foldID)
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
