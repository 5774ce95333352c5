package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PendingOutbox lists the environments with unpublished outbox rows, oldest change first.
func (s *Store) PendingOutbox(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT environment_id FROM outbox WHERE published_at IS NULL
		GROUP BY environment_id ORDER BY min(id)`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// MarkPublished records, in one round trip, that the environment's newest ruleset was
// acknowledged (or, for a deleted environment, drops its version row after the tombstone)
// and marks the outbox rows it carried as published: the ids its compile snapshot saw
// (RulesetSources.PendingOutbox). Marking "every row up to the newest id" instead would also
// mark a change that took its id earlier but committed after the snapshot, and lose it.
func (s *Store) MarkPublished(ctx context.Context, envID string, ids []int64, exists bool) error {
	b := &pgx.Batch{}
	if exists {
		b.Queue(`UPDATE published_rulesets SET published_at = now() WHERE environment_id = $1`, envID)
	} else {
		b.Queue(`DELETE FROM published_rulesets WHERE environment_id = $1`, envID)
	}
	if len(ids) > 0 {
		b.Queue(`UPDATE outbox SET published_at = now() WHERE environment_id = $1 AND id = ANY($2) AND published_at IS NULL`, envID, ids)
	}
	return s.Pool.SendBatch(ctx, b).Close()
}

// PruneOutbox deletes rows published before the cutoff.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1`, before)
	return tag.RowsAffected(), err
}
