package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PendingEnvironment is an environment with unpublished changes.
type PendingEnvironment struct {
	EnvironmentID string
	MaxID         int64
	// OldestAt is when the oldest unpublished change committed (for the commit-to-ack metric).
	OldestAt time.Time
}

// PendingOutbox lists environments with unpublished outbox rows, oldest change first.
func (s *Store) PendingOutbox(ctx context.Context) ([]PendingEnvironment, error) {
	rows, err := s.Pool.Query(ctx, `SELECT environment_id, max(id), min(created_at) FROM outbox WHERE published_at IS NULL
		GROUP BY environment_id ORDER BY min(id)`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingEnvironment, error) {
		var p PendingEnvironment
		err := r.Scan(&p.EnvironmentID, &p.MaxID, &p.OldestAt)
		return p, err
	})
}

// MarkPublished records, in one round trip, that the environment's newest ruleset was
// acknowledged (or, for a deleted environment, drops its version row after the tombstone)
// and marks its outbox rows up to maxID as published.
func (s *Store) MarkPublished(ctx context.Context, envID string, maxID int64, exists bool) error {
	b := &pgx.Batch{}
	if exists {
		b.Queue(`UPDATE published_rulesets SET published_at = now() WHERE environment_id = $1`, envID)
	} else {
		b.Queue(`DELETE FROM published_rulesets WHERE environment_id = $1`, envID)
	}
	if maxID > 0 {
		b.Queue(`UPDATE outbox SET published_at = now() WHERE environment_id = $1 AND id <= $2 AND published_at IS NULL`, envID, maxID)
	}
	return s.Pool.SendBatch(ctx, b).Close()
}

// MaxOutboxID returns the newest outbox id of an environment (0 when none).
func (s *Store) MaxOutboxID(ctx context.Context, envID string) (int64, error) {
	var id int64
	err := s.Pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM outbox WHERE environment_id = $1`, envID).Scan(&id)
	return id, err
}

// PruneOutbox deletes rows published before the cutoff.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1`, before)
	return tag.RowsAffected(), err
}

// NextRulesetVersion increments and returns the environment's ruleset version. The publisher
// calls it before producing, so a failed produce leaves a gap, never a reused version.
func (s *Store) NextRulesetVersion(ctx context.Context, envID string) (int64, error) {
	var v int64
	err := s.Pool.QueryRow(ctx, `INSERT INTO published_rulesets (environment_id, version) VALUES ($1, 1)
		ON CONFLICT (environment_id) DO UPDATE SET version = published_rulesets.version + 1 RETURNING version`, envID).Scan(&v)
	return v, err
}
