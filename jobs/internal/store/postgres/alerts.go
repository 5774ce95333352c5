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

// Enqueue adds an alert to the outbox unless one with its key exists; it reports whether it
// was added. An alert without a channel gets its project's channel, else the default one.
func (s *Store) Enqueue(ctx context.Context, a alert.Alert) (bool, error) {
	return s.enqueue(ctx, s.Pool, a)
}

func (s *Store) enqueue(ctx context.Context, q querier, a alert.Alert) (bool, error) {
	if a.Key == "" {
		return false, errors.New("postgres: alert without a key")
	}
	if a.At.IsZero() {
		a.At = s.now()
	}
	if a.Channel == "" {
		err := q.QueryRow(ctx, `SELECT slack_channel FROM project_settings WHERE project = $1`, a.Project).Scan(&a.Channel)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, fmt.Errorf("postgres: project channel: %w", err)
		}
		if a.Channel == "" {
			a.Channel = s.DefaultChannel
		}
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	now := s.now()
	tag, err := q.Exec(ctx, `INSERT INTO alerts (key, kind, project, channel, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (key) DO NOTHING`, a.Key, string(a.Kind), a.Project, a.Channel, payload, now)
	if err != nil {
		return false, fmt.Errorf("postgres: enqueue alert: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Claim implements alert.Store: it leases the oldest due alert — pending and due, or sending
// with an expired lease (its sender died) — with FOR UPDATE SKIP LOCKED, so concurrent
// dispatchers never take the same one.
func (s *Store) Claim(ctx context.Context, owner string, lease time.Duration) (alert.Delivery, bool, error) {
	var (
		d       alert.Delivery
		payload []byte
		status  string
		first   *time.Time
	)
	now := s.now()
	err := s.Pool.QueryRow(ctx, `
WITH due AS (
    SELECT id, status AS was FROM alerts
    WHERE (status = 'pending' AND next_attempt_at <= $1) OR (status = 'sending' AND lease_until < $1)
    ORDER BY next_attempt_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE alerts a SET status = 'sending', lease_until = $1 + $2::interval, claimed_by = $3,
       attempts = a.attempts + 1, first_claimed_at = COALESCE(a.first_claimed_at, $1)
FROM due WHERE a.id = due.id
RETURNING a.id, a.payload, a.attempts, due.was, a.first_claimed_at`,
		now, lease.String(), owner).Scan(&d.ID, &payload, &d.Attempts, &status, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("postgres: claim alert: %w", err)
	}
	if err := json.Unmarshal(payload, &d.Alert); err != nil {
		return d, false, fmt.Errorf("postgres: alert %d: %w", d.ID, err)
	}
	d.Recovering = status == "sending"
	if first != nil {
		d.FirstClaimedAt = *first
	}
	return d, true, nil
}

// Sent implements alert.Store.
func (s *Store) Sent(ctx context.Context, id int64, ref string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE alerts SET status = 'sent', ref = $2, done_at = $3, lease_until = NULL, last_error = '' WHERE id = $1`,
		id, ref, s.now())
	return err
}

// Retry implements alert.Store.
func (s *Store) Retry(ctx context.Context, id int64, next time.Time, reason string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE alerts SET status = 'pending', next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`,
		id, next, reason)
	return err
}

// Fail implements alert.Store.
func (s *Store) Fail(ctx context.Context, id int64, status, reason string) error {
	if status != "failed" && status != "skipped" {
		return fmt.Errorf("postgres: alert status %q", status)
	}
	_, err := s.Pool.Exec(ctx, `UPDATE alerts SET status = $2, last_error = $3, done_at = $4, lease_until = NULL WHERE id = $1`,
		id, status, reason, s.now())
	return err
}

// AlertRecord is an outbox row, for the API and tests.
type AlertRecord struct {
	ID        int64       `json:"id"`
	Key       string      `json:"key"`
	Kind      string      `json:"kind"`
	Project   string      `json:"project"`
	Channel   string      `json:"channel"`
	Status    string      `json:"status"`
	Attempts  int         `json:"attempts"`
	Ref       string      `json:"ref,omitempty"`
	LastError string      `json:"last_error,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	DoneAt    *time.Time  `json:"done_at,omitempty"`
	Alert     alert.Alert `json:"alert"`
}

// Alerts lists a project's alerts ("" for all), newest first.
func (s *Store) Alerts(ctx context.Context, project string, limit int) ([]AlertRecord, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT id, key, kind, project, channel, status, attempts, ref, last_error, created_at, done_at, payload
		FROM alerts WHERE ($1 = '' OR project = $1) ORDER BY id DESC LIMIT $2`, project, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AlertRecord{}
	for rows.Next() {
		var r AlertRecord
		var payload []byte
		if err := rows.Scan(&r.ID, &r.Key, &r.Kind, &r.Project, &r.Channel, &r.Status, &r.Attempts, &r.Ref, &r.LastError, &r.CreatedAt, &r.DoneAt, &payload); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(payload, &r.Alert); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
