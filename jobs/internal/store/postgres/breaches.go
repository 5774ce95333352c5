package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
)

// Breach is a guardrail breach as this service recorded it.
type Breach struct {
	ID          int64           `json:"id"`
	GuardrailID string          `json:"guardrail_id"`
	Project     string          `json:"project"`
	Environment string          `json:"environment"`
	Flag        string          `json:"flag"`
	Experiment  string          `json:"experiment,omitempty"`
	Metric      string          `json:"metric"`
	DetectedAt  time.Time       `json:"detected_at"`
	Decision    json.RawMessage `json:"decision"`
	Status      string          `json:"status"`
	BreachedAt  *time.Time      `json:"breached_at,omitempty"`
	ActionTaken string          `json:"action_taken,omitempty"`
	AlertKey    string          `json:"alert_key,omitempty"`
}

// StartBreach records a detected breach before the flag service is told. started is false
// when a breach of the guardrail is already being reported (by this or another replica).
func (s *Store) StartBreach(ctx context.Context, b Breach) (id int64, started bool, err error) {
	err = s.Pool.QueryRow(ctx, `INSERT INTO breaches (guardrail_id, project, environment, flag, experiment, metric, detected_at, decision)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (guardrail_id) WHERE status = 'reporting' DO NOTHING RETURNING id`,
		b.GuardrailID, b.Project, b.Environment, b.Flag, b.Experiment, b.Metric, s.now(), b.Decision).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: start breach: %w", err)
	}
	return id, true, nil
}

// ReportingBreaches lists breaches whose report to the flag service has not completed.
func (s *Store) ReportingBreaches(ctx context.Context) ([]Breach, error) {
	return s.breaches(ctx, `WHERE status = 'reporting' ORDER BY id`)
}

// Breaches lists recorded breaches, newest first (tests, the API).
func (s *Store) Breaches(ctx context.Context) ([]Breach, error) {
	return s.breaches(ctx, `ORDER BY id DESC LIMIT 500`)
}

func (s *Store) breaches(ctx context.Context, where string) ([]Breach, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, guardrail_id, project, environment, flag, experiment, metric, detected_at, decision, status,
		breached_at, action_taken, alert_key FROM breaches `+where)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Breach
	for rows.Next() {
		var b Breach
		if err := rows.Scan(&b.ID, &b.GuardrailID, &b.Project, &b.Environment, &b.Flag, &b.Experiment, &b.Metric, &b.DetectedAt,
			&b.Decision, &b.Status, &b.BreachedAt, &b.ActionTaken, &b.AlertKey); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// CompleteBreach records the flag service's answer and enqueues the alert in one transaction.
// The alert's key is derived from the flag service's breach record, so two replicas that both
// reached this point for the same breach enqueue one alert — and record one breach: a replica
// that started its report from an out-of-date list of active guardrails, after another had
// completed the same breach, drops its own row instead of listing the breach twice.
func (s *Store) CompleteBreach(ctx context.Context, id int64, breachedAt time.Time, actionTaken string, a alert.Alert) (enqueued bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var e error
		if enqueued, e = s.enqueue(ctx, tx, a); e != nil {
			return e
		}
		tag, e := tx.Exec(ctx, `DELETE FROM breaches WHERE id = $1 AND EXISTS (SELECT 1 FROM breaches WHERE alert_key = $2 AND id <> $1)`, id, a.Key)
		if e != nil || tag.RowsAffected() > 0 {
			return e
		}
		_, e = tx.Exec(ctx, `UPDATE breaches SET status = 'reported', breached_at = $2, action_taken = $3, alert_key = $4, reported_at = $5
			WHERE id = $1`, id, breachedAt, actionTaken, a.Key, s.now())
		return e
	})
	return enqueued, err
}

// AbandonBreach drops a reporting row whose guardrail no longer exists or is no longer active
// without a breach (disabled by a person): there is nothing left to report.
func (s *Store) AbandonBreach(ctx context.Context, id int64) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM breaches WHERE id = $1 AND status = 'reporting'`, id)
	return err
}

// RecordDigest records a project's digest for one scheduled run and enqueues its alert, once:
// ok is false when the run was recorded already (by this or another replica).
func (s *Store) RecordDigest(ctx context.Context, project string, scheduledFor time.Time, staleFlags int, a *alert.Alert) (ok bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		key := ""
		if a != nil {
			key = a.Key
		}
		tag, e := tx.Exec(ctx, `INSERT INTO digest_runs (project, scheduled_for, stale_flags, alert_key) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project, scheduled_for) DO NOTHING`, project, scheduledFor, staleFlags, key)
		if e != nil || tag.RowsAffected() == 0 {
			return e
		}
		ok = true
		if a != nil {
			_, e = s.enqueue(ctx, tx, *a)
		}
		return e
	})
	return ok, err
}
