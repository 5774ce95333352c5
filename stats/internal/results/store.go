package results

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/stats/metricsql"
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
		ON CONFLICT (experiment_id) DO UPDATE SET failed_at = excluded.failed_at, message = excluded.message,
		attempts = results_refresh_failures.attempts + 1`, experimentID, at, msg)
	return e
}

// RefreshState is what the sweep needs to know whether an experiment is due a refresh.
type RefreshState struct {
	// LastComputed is the latest snapshot's time (zero: none).
	LastComputed time.Time
	// FailedAt and Failures: the last failed refresh and how many failed in a row since the
	// last successful one (0: none).
	FailedAt time.Time
	Failures int
}

// RefreshStates reads the refresh state of experiments (by id) in one query; the latest
// snapshot's time comes from the (experiment_id, computed_at) index, not from its body.
func (s *Store) RefreshStates(ctx context.Context, experimentIDs []string) (map[string]RefreshState, error) {
	rows, err := s.Pool.Query(ctx, `SELECT e.id::text,
			(SELECT max(computed_at) FROM results_snapshots r WHERE r.experiment_id = e.id),
			f.failed_at, coalesce(f.attempts, 0)
		FROM unnest($1::uuid[]) AS e(id) LEFT JOIN results_refresh_failures f ON f.experiment_id = e.id`, experimentIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]RefreshState{}
	var id string
	var last, failed *time.Time
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &last, &failed, &n}, func() error {
		var st RefreshState
		if last != nil {
			st.LastComputed = last.UTC()
		}
		if failed != nil {
			st.FailedAt, st.Failures = failed.UTC(), n
		}
		out[id] = st
		return nil
	})
	return out, err
}

// Retention says which snapshots Thin keeps: every one computed in the last KeepAll, then the
// latest of each UTC hour up to KeepHourly ago, the latest of each UTC day before that —
// and always an experiment's first snapshot and the snapshots around a change of its status
// (the last while running, the first after the stop), so its latest (final) one too.
type Retention struct {
	KeepAll, KeepHourly time.Duration
}

// Thin deletes the snapshots the retention does not keep, as of now, and returns how many.
// Both cut-offs are UTC midnights, so no hour or day bucket straddles one. Thinning again
// deletes nothing more until the cut-offs move: the kept snapshots of a bucket stay its latest.
//
// It thins one experiment at a time, each in its own statement (so its own transaction): the
// first run over a backlog of millions of snapshots would otherwise be one transaction holding
// row locks and writing WAL for minutes, and lose everything if interrupted. When ctx is
// cancelled it stops before the next experiment (or cancels the current statement) and returns
// the deletions committed so far with the context's error.
func (s *Store) Thin(ctx context.Context, r Retention, now time.Time) (int64, error) {
	keepAll := midnight(now.Add(-r.KeepAll))
	hourly := midnight(now.Add(-max(r.KeepHourly, r.KeepAll)))
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT experiment_id::text FROM results_snapshots WHERE computed_at < $1 ORDER BY 1`, keepAll)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	var total int64
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := s.Pool.Exec(ctx, thinExperiment, keepAll, hourly, id)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("thin snapshots of experiment %s: %w", id, err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

// thinExperiment deletes one experiment's ($3) snapshots older than $1 that are neither the
// latest of their bucket (UTC hour from $2, UTC day before), its first, nor next to a status
// change. The window covers only the snapshots older than $1, so the last of them is kept too.
const thinExperiment = `WITH old AS (
		SELECT id, body->>'status' AS status,
			row_number() OVER (PARTITION BY date_trunc(CASE WHEN computed_at >= $2 THEN 'hour' ELSE 'day' END,
				computed_at AT TIME ZONE 'UTC') ORDER BY computed_at DESC, id DESC) AS rank_in_bucket,
			row_number() OVER w AS pos, lag(body->>'status') OVER w AS prev_status, lead(body->>'status') OVER w AS next_status
		FROM results_snapshots WHERE experiment_id = $3 AND computed_at < $1
		WINDOW w AS (ORDER BY computed_at, id))
	DELETE FROM results_snapshots r USING old
	WHERE r.id = old.id AND old.rank_in_bucket > 1 AND old.pos > 1
		AND old.status IS NOT DISTINCT FROM old.prev_status AND old.status IS NOT DISTINCT FROM old.next_status`

func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
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
	return unlocker(conn, key), true, nil
}

// Lock takes the session advisory lock on key that TryLock takes, waiting for its holder to
// release it until ctx ends. A wait that ends closes its connection rather than returning it to
// the pool: the lock may have been granted as the wait was cancelled, and only the session's end
// is sure to release it.
func (s *Store) Lock(ctx context.Context, key string) (release func(), err error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		return nil, err
	}
	return unlocker(conn, key), nil
}

// unlocker releases the advisory lock on key that conn's session holds, and conn.
func unlocker(conn *pgxpool.Conn, key string) func() {
	return func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
		conn.Release()
	}
}

// RollupsDropped returns the experiments of ids whose rollups are being or were dropped
// (their results are final), each with whether the drop is done.
func (s *Store) RollupsDropped(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := s.Pool.Query(ctx, `SELECT experiment_id::text, done FROM results_rollups_dropped WHERE experiment_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	var id string
	var done bool
	_, err = pgx.ForEachRow(rows, []any{&id, &done}, func() error {
		out[id] = done
		return nil
	})
	return out, err
}

// ForgetFolds forgets every recorded fold of the experiment (before its rollups are dropped:
// a refresh then folds every day again, and never reads a fold whose rows are gone) and its
// compactions.
func (s *Store) ForgetFolds(ctx context.Context, experimentID string) error {
	_, err := s.Pool.Exec(ctx, `WITH c AS (DELETE FROM results_rollup_compactions WHERE experiment_id = $1)
		DELETE FROM results_folds WHERE experiment_id = $1`, experimentID)
	return err
}

// MarkRollupsDropping records that the experiment's rollups are about to be dropped (before
// its folds are forgotten): its results are final from then on.
func (s *Store) MarkRollupsDropping(ctx context.Context, experimentID string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_rollups_dropped (experiment_id, dropped_at, done) VALUES ($1, now(), false)
		ON CONFLICT (experiment_id) DO NOTHING`, experimentID)
	return err
}

// MarkRollupsDropped records that the experiment's rollups were dropped.
func (s *Store) MarkRollupsDropped(ctx context.Context, experimentID string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_rollups_dropped (experiment_id, dropped_at, done) VALUES ($1, now(), true)
		ON CONFLICT (experiment_id) DO UPDATE SET dropped_at = excluded.dropped_at, done = true`, experimentID)
	return err
}

// MonthToCompact is a month of an experiment's rollups to rewrite without its replaced folds.
type MonthToCompact struct {
	ExperimentID string
	Month        time.Time // its first day
}

// MonthsToCompact returns the months before `before` (a month's first day) that have recorded
// folds and were not compacted since their latest fold was recorded.
func (s *Store) MonthsToCompact(ctx context.Context, before time.Time) ([]MonthToCompact, error) {
	rows, err := s.Pool.Query(ctx, `SELECT f.experiment_id::text, f.month FROM (
			SELECT experiment_id, date_trunc('month', day)::date AS month, max(folded_at) AS folded_at
			FROM results_folds WHERE day < $1 GROUP BY 1, 2) f
		LEFT JOIN results_rollup_compactions c ON c.experiment_id = f.experiment_id AND c.month = f.month
		WHERE c.compacted_at IS NULL OR c.compacted_at < f.folded_at
		ORDER BY 1, 2`, before)
	if err != nil {
		return nil, err
	}
	var out []MonthToCompact
	var m MonthToCompact
	_, err = pgx.ForEachRow(rows, []any{&m.ExperimentID, &m.Month}, func() error {
		m.Month = time.Date(m.Month.Year(), m.Month.Month(), 1, 0, 0, 0, 0, time.UTC)
		out = append(out, m)
		return nil
	})
	return out, err
}

// MonthFolds returns the recorded fold ids of an experiment's days in a month (every metric part)
// and of the next month's first day: a fold's rows are stamped with its UTC day's date in the
// ClickHouse server's time zone (toDate(toDateTime(…)) in metricsql), the day before on a
// server west of UTC, so the fold of the 1st lies in this month's partition there.
func (s *Store) MonthFolds(ctx context.Context, experimentID string, month time.Time) ([]int64, error) {
	rows, err := s.Pool.Query(ctx, `SELECT fold_id FROM results_folds WHERE experiment_id = $1
		AND day >= $2 AND day <= ($2::date + interval '1 month')::date`, experimentID, month)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// SomeFold returns one recorded fold id of an experiment (ok false: none).
func (s *Store) SomeFold(ctx context.Context, experimentID string) (id int64, ok bool, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT fold_id FROM results_folds WHERE experiment_id = $1 LIMIT 1`, experimentID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// MarkCompacted records that a month of an experiment's rollups holds only its recorded folds.
func (s *Store) MarkCompacted(ctx context.Context, experimentID string, month time.Time) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_rollup_compactions (experiment_id, month, compacted_at) VALUES ($1, $2, now())
		ON CONFLICT (experiment_id, month) DO UPDATE SET compacted_at = excluded.compacted_at`, experimentID, month)
	return err
}

// ExperimentsWithRollups returns the experiments whose rollups may still exist: those with
// recorded folds, those whose drop was started and not finished, and those recorded before
// their days were folded (results_experiments) whose rollups were not dropped — a fold that
// crashed before it was recorded left rows no recorded fold names.
func (s *Store) ExperimentsWithRollups(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT experiment_id::text FROM results_folds
		UNION SELECT experiment_id::text FROM results_rollups_dropped WHERE NOT done
		UNION SELECT e.experiment_id::text FROM results_experiments e
			WHERE NOT EXISTS (SELECT 1 FROM results_rollups_dropped d WHERE d.experiment_id = e.experiment_id AND d.done)
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ExperimentRef names an experiment in the flag service.
type ExperimentRef struct {
	Project, Key string
}

// ExperimentRefs returns the project and key of experiments (by id) as their latest snapshots
// name them; an experiment without a snapshot is missing.
func (s *Store) ExperimentRefs(ctx context.Context, ids []string) (map[string]ExperimentRef, error) {
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT ON (experiment_id) experiment_id::text, project_key, experiment_key
		FROM results_snapshots WHERE experiment_id = ANY($1::uuid[]) ORDER BY experiment_id, computed_at DESC`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]ExperimentRef{}
	var id string
	var r ExperimentRef
	_, err = pgx.ForEachRow(rows, []any{&id, &r.Project, &r.Key}, func() error {
		out[id] = r
		return nil
	})
	return out, err
}

// ExperimentRecord is what the store knows of an experiment with rollups (results_experiments):
// its rollups' partition key, its project, and since when the flag service no longer has it.
type ExperimentRecord struct {
	// EnvironmentID is empty when unknown (gone before it was recorded).
	EnvironmentID, Project, Key string
	// GoneSince is when the maintenance first found it gone (zero: it is not).
	GoneSince time.Time
}

// RememberExperiment records an experiment's environment, project and key (a refresh folding
// its days, the maintenance seeing it listed), leaving its gone mark as it is; it writes only
// when they changed.
func (s *Store) RememberExperiment(ctx context.Context, experimentID, environmentID, project, key string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_experiments (experiment_id, environment_id, project_key, experiment_key)
		VALUES ($1, $2, $3, $4) ON CONFLICT (experiment_id) DO UPDATE
		SET environment_id = excluded.environment_id, project_key = excluded.project_key, experiment_key = excluded.experiment_key
		WHERE (results_experiments.environment_id, results_experiments.project_key, results_experiments.experiment_key)
			IS DISTINCT FROM (excluded.environment_id, excluded.project_key, excluded.experiment_key)`,
		experimentID, environmentID, project, key)
	return err
}

// ExperimentRecords returns the records of experiments (by id); one never recorded is missing.
func (s *Store) ExperimentRecords(ctx context.Context, ids []string) (map[string]ExperimentRecord, error) {
	rows, err := s.Pool.Query(ctx, `SELECT experiment_id::text, coalesce(environment_id, ''), project_key, experiment_key, gone_since
		FROM results_experiments WHERE experiment_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]ExperimentRecord{}
	var id string
	var r ExperimentRecord
	var gone *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &r.EnvironmentID, &r.Project, &r.Key, &gone}, func() error {
		r.GoneSince = time.Time{}
		if gone != nil {
			r.GoneSince = gone.UTC()
		}
		out[id] = r
		return nil
	})
	return out, err
}

// MarkGone records that the flag service no longer has the experiment, since at (an earlier
// mark stays); project and key name it when it was never recorded (its environment unknown).
func (s *Store) MarkGone(ctx context.Context, experimentID, project, key string, at time.Time) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO results_experiments (experiment_id, project_key, experiment_key, gone_since)
		VALUES ($1, $2, $3, $4) ON CONFLICT (experiment_id) DO UPDATE SET gone_since = excluded.gone_since
		WHERE results_experiments.gone_since IS NULL`, experimentID, project, key, at)
	return err
}

// ClearGone forgets the experiment's gone mark (the flag service has it again).
func (s *Store) ClearGone(ctx context.Context, experimentID string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE results_experiments SET gone_since = NULL WHERE experiment_id = $1 AND gone_since IS NOT NULL`, experimentID)
	return err
}

// UnitsBase returns the units base recorded for an experiment and when it was last built from
// every state (ok false: none).
func (s *Store) UnitsBase(ctx context.Context, experimentID string) (b metricsql.UnitsBase, built time.Time, ok bool, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT snapshot_id, watermark, units, revisions, built_at FROM results_unit_bases WHERE experiment_id = $1`, experimentID).
		Scan(&b.ID, &b.Watermark, &b.Rows, &b.Revisions, &built)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, built, false, nil
	}
	b.Watermark = b.Watermark.UTC()
	return b, built, err == nil, err
}

// SetUnitsBase records an experiment's units base, read at `at`; full says it was built from
// every state (its build time is kept until the next such build). It returns the partition of
// the base it replaced (0: none), which the caller drops unless it is b's own.
func (s *Store) SetUnitsBase(ctx context.Context, experimentID string, b metricsql.UnitsBase, full bool, at time.Time) (replaced int64, err error) {
	err = s.Pool.QueryRow(ctx, `WITH old AS (SELECT snapshot_id FROM results_unit_bases WHERE experiment_id = $1 FOR UPDATE),
		new AS (INSERT INTO results_unit_bases (experiment_id, snapshot_id, watermark, units, revisions, built_at, used_at)
			VALUES ($1, $2, $3, $4, $7, $5, $5)
			ON CONFLICT (experiment_id) DO UPDATE SET snapshot_id = excluded.snapshot_id, watermark = excluded.watermark,
			units = excluded.units, revisions = excluded.revisions, used_at = excluded.used_at,
			built_at = CASE WHEN $6 THEN excluded.built_at ELSE results_unit_bases.built_at END)
		SELECT coalesce((SELECT snapshot_id FROM old), 0)`, experimentID, b.ID, b.Watermark, b.Rows, at, full, b.Revisions).Scan(&replaced)
	return replaced, err
}

// Kept is a kind of partition an experiment keeps between its refreshes, recorded in a table of
// its own: its units base, its totals.
type Kept struct{ table, column string }

// The kinds of kept partitions.
var (
	KeptUnits  = Kept{"results_unit_bases", "snapshot_id"}
	KeptTotals = Kept{"results_metric_totals", "totals_id"}
)

// IdlePartition is a kept partition no refresh read since before a time.
type IdlePartition struct {
	ExperimentID string
	ID           int64
}

// KeptPartitions returns every recorded partition of a kind, and those last read before idle.
func (s *Store) KeptPartitions(ctx context.Context, k Kept, idle time.Time) (all map[int64]bool, idleOnes []IdlePartition, err error) {
	// Table and column names are this package's constants.
	rows, err := s.Pool.Query(ctx, `SELECT experiment_id::text, `+k.column+`, used_at < $1 FROM `+k.table, idle)
	if err != nil {
		return nil, nil, err
	}
	all = map[int64]bool{}
	var b IdlePartition
	var isIdle bool
	_, err = pgx.ForEachRow(rows, []any{&b.ExperimentID, &b.ID, &isIdle}, func() error {
		all[b.ID] = true
		if isIdle {
			idleOnes = append(idleOnes, b)
		}
		return nil
	})
	return all, idleOnes, err
}

// Forget forgets an experiment's kept partition of a kind if it is still partition id; it says
// whether it did (the caller then drops the partition).
func (s *Store) Forget(ctx context.Context, k Kept, experimentID string, id int64) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM `+k.table+` WHERE experiment_id = $1 AND `+k.column+` = $2`, experimentID, id)
	return tag.RowsAffected() == 1, err
}

// totalsPart is one part of recorded totals (results_metric_totals.parts).
type totalsPart struct {
	Metric  string  `json:"metric"`
	Version int64   `json:"version"`
	Part    int     `json:"part"`
	Folds   []int64 `json:"folds"`
}

// Totals returns the totals recorded for an experiment (ok false: none).
func (s *Store) Totals(ctx context.Context, experimentID string) (t metricsql.Totals, ok bool, err error) {
	var parts []totalsPart
	err = s.Pool.QueryRow(ctx, `SELECT totals_id, parts, contexts FROM results_metric_totals WHERE experiment_id = $1`, experimentID).
		Scan(&t.ID, &parts, &t.Rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, err
	}
	t.Folds = metricsql.Folds{}
	for _, p := range parts {
		k := metricsql.FoldKey{Metric: p.Metric, Version: p.Version, Part: p.Part}
		t.Parts, t.Folds[k] = append(t.Parts, k), p.Folds
	}
	return t, true, nil
}

// SetTotals records an experiment's totals, written at `at`. It returns the partition of the
// totals it replaced (0: none), which the caller drops.
func (s *Store) SetTotals(ctx context.Context, experimentID string, t metricsql.Totals, at time.Time) (replaced int64, err error) {
	parts := make([]totalsPart, len(t.Parts))
	for i, k := range t.Parts {
		parts[i] = totalsPart{Metric: k.Metric, Version: k.Version, Part: k.Part, Folds: t.Folds[k]}
	}
	err = s.Pool.QueryRow(ctx, `WITH old AS (SELECT totals_id FROM results_metric_totals WHERE experiment_id = $1 FOR UPDATE),
		new AS (INSERT INTO results_metric_totals (experiment_id, totals_id, parts, contexts, updated_at, used_at) VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (experiment_id) DO UPDATE SET totals_id = excluded.totals_id, parts = excluded.parts, contexts = excluded.contexts,
			updated_at = excluded.updated_at, used_at = excluded.used_at)
		SELECT coalesce((SELECT totals_id FROM old), 0)`, experimentID, t.ID, parts, t.Rows, at).Scan(&replaced)
	return replaced, err
}

// UseTotals records that a refresh read an experiment's totals (partition id) at `at`.
func (s *Store) UseTotals(ctx context.Context, experimentID string, id int64, at time.Time) error {
	_, err := s.Pool.Exec(ctx, `UPDATE results_metric_totals SET used_at = $3 WHERE experiment_id = $1 AND totals_id = $2`, experimentID, id, at)
	return err
}
