package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// CreateChange stores a change and its steps; it returns the change with its id.
func (s *Store) CreateChange(ctx context.Context, c schedule.Change) (schedule.Change, error) {
	by, _ := json.Marshal(c.CreatedBy)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO scheduled_changes (project, environment, environment_id, flag, kind, comment, base_version, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			c.Project, c.Environment, c.EnvironmentID, c.Flag, c.Kind, c.Comment, c.BaseVersion, by, c.CreatedAt).Scan(&c.ID)
		if err != nil {
			return err
		}
		for _, st := range c.Steps {
			action, _ := json.Marshal(st.Action)
			if _, err := tx.Exec(ctx, `INSERT INTO scheduled_steps (change_id, position, execute_at, action) VALUES ($1, $2, $3, $4)`,
				c.ID, st.Position, st.ExecuteAt, action); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("postgres: create scheduled change: %w", err)
	}
	return s.change(ctx, s.Pool, c.Project, c.ID)
}

// ChangeFilter selects scheduled changes of a project.
type ChangeFilter struct {
	Project     string
	Environment string
	Flag        string
	Status      string
	Limit       int
}

// Changes lists a project's scheduled changes, newest first.
func (s *Store) Changes(ctx context.Context, f ChangeFilter) ([]schedule.Change, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT id FROM scheduled_changes
		WHERE project = $1 AND ($2 = '' OR environment = $2) AND ($3 = '' OR flag = $3) AND ($4 = '' OR status = $4)
		ORDER BY id DESC LIMIT $5`, f.Project, f.Environment, f.Flag, f.Status, f.Limit)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	out := make([]schedule.Change, 0, len(ids))
	for _, id := range ids {
		c, err := s.change(ctx, s.Pool, f.Project, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Change returns one change of a project (errs.NotFound otherwise).
func (s *Store) Change(ctx context.Context, project string, id int64) (schedule.Change, error) {
	return s.change(ctx, s.Pool, project, id)
}

func (s *Store) change(ctx context.Context, q querier, project string, id int64) (schedule.Change, error) {
	var (
		c        schedule.Change
		by, canc []byte
	)
	err := q.QueryRow(ctx, `SELECT id, project, environment, environment_id, flag, kind, comment, base_version, created_by, created_at,
			status, failure, cancelled_by, finished_at
		FROM scheduled_changes WHERE id = $1 AND ($2 = '' OR project = $2)`, id, project).Scan(
		&c.ID, &c.Project, &c.Environment, &c.EnvironmentID, &c.Flag, &c.Kind, &c.Comment, &c.BaseVersion, &by, &c.CreatedAt,
		&c.Status, &c.Failure, &canc, &c.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errs.NotFound("scheduled change %d not found", id)
	}
	if err != nil {
		return c, err
	}
	_ = json.Unmarshal(by, &c.CreatedBy)
	if len(canc) > 0 {
		c.CancelledBy = &schedule.Actor{}
		_ = json.Unmarshal(canc, c.CancelledBy)
	}
	rows, err := q.Query(ctx, `SELECT position, execute_at, action, status, attempts, expected_version, result_version, executed_at, error
		FROM scheduled_steps WHERE change_id = $1 ORDER BY position`, id)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var st schedule.Step
		var action []byte
		if err := rows.Scan(&st.Position, &st.ExecuteAt, &action, &st.Status, &st.Attempts, &st.ExpectedVersion, &st.ResultVersion, &st.ExecutedAt, &st.Error); err != nil {
			return c, err
		}
		if err := json.Unmarshal(action, &st.Action); err != nil {
			return c, err
		}
		st.ExecuteAt = st.ExecuteAt.UTC()
		c.Steps = append(c.Steps, st)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, rows.Err()
}

// CancelChange cancels a change whose steps have not all run. A step being applied right now
// makes it a conflict (try again in a moment); a finished change cannot be cancelled.
func (s *Store) CancelChange(ctx context.Context, project string, id int64, by schedule.Actor) (schedule.Change, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM scheduled_changes WHERE id = $1 AND project = $2 FOR UPDATE`, id, project).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.NotFound("scheduled change %d not found", id)
		}
		if err != nil {
			return err
		}
		if status != schedule.StatusPending && status != schedule.StatusRunning {
			return errs.PreconditionFailed("status", "the change is %s; only pending changes can be cancelled", status)
		}
		// Lock the steps: a concurrent claim holds them while it marks one running.
		rows, err := tx.Query(ctx, `SELECT status FROM scheduled_steps WHERE change_id = $1 ORDER BY position FOR UPDATE`, id)
		if err != nil {
			return err
		}
		statuses, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, st := range statuses {
			if st == schedule.StatusRunning {
				return errs.Conflict("status", "a step of this change is being applied right now; look again in a moment")
			}
		}
		byJSON, _ := json.Marshal(by)
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE scheduled_steps SET status = 'cancelled' WHERE change_id = $1 AND status = 'pending'`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE scheduled_changes SET status = 'cancelled', cancelled_by = $2, finished_at = $3 WHERE id = $1`, id, byJSON, now)
		return err
	})
	if err != nil {
		return schedule.Change{}, err
	}
	return s.change(ctx, s.Pool, project, id)
}

// ClaimDueSteps leases up to limit steps that are due — pending, or running with an expired
// lease (the executor died mid-way) — whose earlier steps are all done, to this executor
// (FOR UPDATE SKIP LOCKED: each step goes to one replica). Each claim carries its change and
// the version its write must be based on.
func (s *Store) ClaimDueSteps(ctx context.Context, lease time.Duration, limit int) ([]schedule.Claim, error) {
	now := s.now()
	type key struct {
		id  int64
		pos int
	}
	var keys []key
	var recovering []bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
WITH due AS (
    SELECT s.change_id, s.position, s.status AS was FROM scheduled_steps s
    JOIN scheduled_changes c ON c.id = s.change_id
    WHERE c.status IN ('pending', 'running') AND s.execute_at <= $1
      AND ((s.status = 'pending' AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1))
           OR (s.status = 'running' AND s.lease_until < $1))
      AND NOT EXISTS (SELECT 1 FROM scheduled_steps p WHERE p.change_id = s.change_id AND p.position < s.position AND p.status <> 'done')
    ORDER BY s.execute_at, s.change_id, s.position
    LIMIT $2
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE scheduled_steps s SET status = 'running', lease_until = $1 + $3::interval, attempts = s.attempts + 1
FROM due WHERE s.change_id = due.change_id AND s.position = due.position
RETURNING s.change_id, s.position, due.was`, now, limit, lease.String())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			var was string
			if err := rows.Scan(&k.id, &k.pos, &was); err != nil {
				return err
			}
			keys = append(keys, k)
			recovering = append(recovering, was == schedule.StatusRunning)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// The version each write is based on: the change's base for its first step, else
		// what the previous step left.
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `UPDATE scheduled_steps SET expected_version = COALESCE(
					(SELECT p.result_version FROM scheduled_steps p WHERE p.change_id = $1 AND p.position = $2 - 1),
					(SELECT base_version FROM scheduled_changes WHERE id = $1))
				WHERE change_id = $1 AND position = $2`, k.id, k.pos); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim scheduled steps: %w", err)
	}
	out := make([]schedule.Claim, 0, len(keys))
	for i, k := range keys {
		c, err := s.change(ctx, s.Pool, "", k.id)
		if err != nil {
			return nil, err
		}
		st := c.Steps[k.pos-1]
		out = append(out, schedule.Claim{Change: c, Step: st, Expected: *st.ExpectedVersion, Recovering: recovering[i]})
	}
	return out, nil
}

// CompleteStep records a step's write (the configuration version it produced); the change is
// running until its last step is done.
func (s *Store) CompleteStep(ctx context.Context, changeID int64, position int, version int64) error {
	now := s.now()
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE scheduled_steps SET status = 'done', result_version = $3, executed_at = $4, lease_until = NULL, error = ''
			WHERE change_id = $1 AND position = $2`, changeID, position, version, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE scheduled_changes SET
				status = CASE WHEN NOT EXISTS (SELECT 1 FROM scheduled_steps WHERE change_id = $1 AND status <> 'done') THEN 'done' ELSE 'running' END,
				finished_at = CASE WHEN NOT EXISTS (SELECT 1 FROM scheduled_steps WHERE change_id = $1 AND status <> 'done') THEN $2::timestamptz END
			WHERE id = $1 AND status IN ('pending', 'running')`, changeID, now)
		return err
	})
}

// RetryStep returns a claimed step to pending after a transient failure; it is not claimed
// again before retryAt.
func (s *Store) RetryStep(ctx context.Context, changeID int64, position int, reason string, retryAt time.Time) error {
	_, err := s.Pool.Exec(ctx, `UPDATE scheduled_steps SET status = 'pending', lease_until = NULL, error = $3, next_attempt_at = $4
		WHERE change_id = $1 AND position = $2 AND status = 'running'`, changeID, position, reason, retryAt)
	return err
}

// FailStep fails a step and its change, cancels the later steps and enqueues the alert, in
// one transaction (so the alert exists exactly when the failure does).
func (s *Store) FailStep(ctx context.Context, changeID int64, position int, reason string, a alert.Alert) error {
	now := s.now()
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE scheduled_steps SET status = 'failed', error = $3, executed_at = $4, lease_until = NULL
			WHERE change_id = $1 AND position = $2`, changeID, position, reason, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE scheduled_steps SET status = 'cancelled' WHERE change_id = $1 AND position > $2 AND status = 'pending'`,
			changeID, position); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE scheduled_changes SET status = 'failed', failure = $2, finished_at = $3 WHERE id = $1`,
			changeID, reason, now); err != nil {
			return err
		}
		_, err := s.enqueue(ctx, tx, a)
		return err
	})
}
