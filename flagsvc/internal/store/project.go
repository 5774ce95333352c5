package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
)

const projectColumns = `id, org_id, key, name, description, created_at, updated_at`

func scanProject(row pgx.Row) (domain.Project, error) {
	var p domain.Project
	err := row.Scan(projectDest(&p)...)
	return p, err
}

// projectDest is where projectColumns scan to.
func projectDest(p *domain.Project) []any {
	return []any{&p.ID, &p.OrgID, &p.Key, &p.Name, &p.Description, &p.CreatedAt, &p.UpdatedAt}
}

// InsertProject inserts a project.
func (t *Tx) InsertProject(ctx context.Context, p domain.Project) (domain.Project, error) {
	return scanProject(t.q().QueryRow(ctx, `INSERT INTO projects (org_id, key, name, description) VALUES ($1, $2, $3, $4)
		RETURNING `+projectColumns, p.OrgID, p.Key, p.Name, p.Description))
}

// ProjectByKey returns an organization's project.
func (t *Tx) ProjectByKey(ctx context.Context, orgID, key string) (domain.Project, error) {
	p, err := scanProject(t.q().QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE org_id = $1 AND key = $2`, orgID, key))
	return p, notFound(err, "project %q not found", key)
}

// ListProjects lists an organization's projects by key.
func (t *Tx) ListProjects(ctx context.Context, orgID string) ([]domain.Project, error) {
	rows, err := t.q().Query(ctx, `SELECT `+projectColumns+` FROM projects WHERE org_id = $1 ORDER BY key`, orgID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Project, error) { return scanProject(r) })
}

// UpdateProject saves a project's name and description.
func (t *Tx) UpdateProject(ctx context.Context, p domain.Project) (domain.Project, error) {
	return scanProject(t.q().QueryRow(ctx, `UPDATE projects SET name = $2, description = $3, updated_at = now() WHERE id = $1
		RETURNING `+projectColumns, p.ID, p.Name, p.Description))
}

// DeleteProject deletes a project with everything in it.
func (t *Tx) DeleteProject(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `DELETE FROM projects WHERE id = $1`, id)
	return err
}

const envColumns = `e.id, e.project_id, p.key, p.org_id, e.key, e.name, e.color, e.critical, e.locked, e.lock_reason,
	e.position, coalesce(pr.version, 0), e.created_at, e.updated_at`

// envFrom joins what envColumns reads.
const envFrom = ` FROM environments e JOIN projects p ON p.id = e.project_id
	LEFT JOIN published_rulesets pr ON pr.environment_id = e.id `

func scanEnv(row pgx.Row) (domain.Environment, error) {
	var e domain.Environment
	err := row.Scan(envDest(&e)...)
	return e, err
}

// envDest is where envColumns scan to.
func envDest(e *domain.Environment) []any {
	return []any{&e.ID, &e.ProjectID, &e.ProjectKey, &e.OrgID, &e.Key, &e.Name, &e.Color, &e.Critical, &e.Locked,
		&e.LockReason, &e.Position, &e.RulesetVersion, &e.CreatedAt, &e.UpdatedAt}
}

// InsertEnvironment inserts an environment at the end of the project's list.
func (t *Tx) InsertEnvironment(ctx context.Context, e domain.Environment) (domain.Environment, error) {
	var id string
	err := t.q().QueryRow(ctx, `INSERT INTO environments (project_id, key, name, color, critical, position)
		VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(position) + 1, 0) FROM environments WHERE project_id = $1))
		RETURNING id`, e.ProjectID, e.Key, e.Name, e.Color, e.Critical).Scan(&id)
	if err != nil {
		return domain.Environment{}, err
	}
	return t.EnvironmentByID(ctx, id)
}

// EnvironmentByID returns an environment.
func (t *Tx) EnvironmentByID(ctx context.Context, id string) (domain.Environment, error) {
	e, err := scanEnv(t.q().QueryRow(ctx, environmentByIDSQL, id))
	return e, notFound(err, "environment not found")
}

const environmentByIDSQL = `SELECT ` + envColumns + envFrom + `WHERE e.id = $1`

// RulesetSources is what an environment's ruleset is compiled from.
type RulesetSources struct {
	Env      domain.Environment
	Flags    []domain.Flag
	Configs  []domain.FlagConfig
	Versions []int64
	// FlagJSON are the flags' encoded-JSON slots (FlagJSON), shared by the reads that decoded
	// the same stored JSON.
	FlagJSON []*FlagJSON
	Segments []domain.Segment
	// Members are the segments' member lists by segment id (absent: no members).
	Members map[string]SegmentLists
	SDKKeys []domain.SDKKey // valid ones only
	// PendingOutbox are the environment's unpublished outbox rows this snapshot sees: exactly
	// the changes the ruleset compiled from it carries. Set even when the environment is gone.
	PendingOutbox []int64
	// OldestPendingAt is when the oldest of them was committed (zero: none).
	OldestPendingAt time.Time
	// Version is the ruleset version taken for publishing it (PublishSources; 0 otherwise, and
	// when the environment was gone by then).
	Version int64
}

// RulesetSources reads an environment with its flags, segments (with their members), valid SDK
// keys and pending outbox rows, in one repeatable-read snapshot so that the parts agree, in one
// round trip: the transaction's BEGIN and COMMIT travel in the batch with the reads (Store.Read
// would send each on its own, two more round trips on every publish). errs.KindNotFound when the
// environment does not exist. decodes (nil: none) spares decoding the flags it knows.
func (s *Store) RulesetSources(ctx context.Context, envID string, decodes *FlagDecodes) (RulesetSources, error) {
	return s.rulesetSources(ctx, envID, decodes, false)
}

// PublishSources is RulesetSources for publishing: the same round trip also takes the
// environment's next ruleset version (published_rulesets.version, incremented), just after the
// snapshot, so that a publish waits on one round trip before it encodes, not two. Taken before
// producing, a version that is never produced leaves a gap, never a reused number.
func (s *Store) PublishSources(ctx context.Context, envID string, decodes *FlagDecodes) (RulesetSources, error) {
	return s.rulesetSources(ctx, envID, decodes, true)
}

func (s *Store) rulesetSources(ctx context.Context, envID string, decodes *FlagDecodes, takeVersion bool) (RulesetSources, error) {
	var rs RulesetSources
	var decoded map[string]*flagDecode
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return rs, translate(err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT coalesce(array_agg(id), '{}'), min(created_at) FROM outbox WHERE environment_id = $1 AND published_at IS NULL`, envID).
		QueryRow(func(row pgx.Row) error {
			var oldest *time.Time
			err := row.Scan(&rs.PendingOutbox, &oldest)
			if oldest != nil {
				rs.OldestPendingAt = *oldest
			}
			return err
		})
	b.Queue(environmentByIDSQL, envID).QueryRow(func(row pgx.Row) (err error) {
		rs.Env, err = scanEnv(row)
		return notFound(err, "environment not found")
	})
	b.Queue(environmentFlagsSQL, envID).Query(func(rows pgx.Rows) (err error) {
		rs.Flags, rs.Configs, rs.Versions, rs.FlagJSON, decoded, err = collectDecodedFlags(rows, decodes.of(envID))
		return err
	})
	b.Queue(listSegmentsSQL, envID).Query(func(rows pgx.Rows) (err error) {
		rs.Segments, err = collectSegments(rows)
		return err
	})
	b.Queue(environmentMembersSQL, envID).Query(func(rows pgx.Rows) (err error) {
		rs.Members, err = collectEnvironmentMembers(rows)
		return err
	})
	b.Queue(listSDKKeysSQL, envID, false).Query(func(rows pgx.Rows) (err error) {
		rs.SDKKeys, err = collectSDKKeys(rows)
		return err
	})
	b.Queue(`COMMIT`)
	if takeVersion {
		// Its own transaction, after the snapshot's, and only for an environment that still
		// exists: a deleted one gets a tombstone, and no version row to outlive it.
		b.Queue(`INSERT INTO published_rulesets (environment_id, version) SELECT id, 1 FROM environments WHERE id = $1
			ON CONFLICT (environment_id) DO UPDATE SET version = published_rulesets.version + 1 RETURNING version`, envID).
			QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&rs.Version); !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				return nil
			})
	}
	err = conn.SendBatch(ctx, b).Close()
	if st := conn.Conn().PgConn().TxStatus(); err != nil && st != 'I' && !conn.Conn().IsClosed() {
		// A failed read skipped the COMMIT: end the transaction, so the connection goes back to
		// the pool usable (the pool would close it otherwise).
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
	}
	switch {
	case err == nil:
		decodes.keep(envID, decoded)
	case errs.KindOf(err) == errs.KindNotFound:
		decodes.keep(envID, nil)
	}
	return rs, translate(err)
}

// EnvironmentByKey returns a project's environment.
func (t *Tx) EnvironmentByKey(ctx context.Context, projectID, key string) (domain.Environment, error) {
	e, err := scanEnv(t.q().QueryRow(ctx, `SELECT `+envColumns+envFrom+`WHERE e.project_id = $1 AND e.key = $2`, projectID, key))
	return e, notFound(err, "environment %q not found", key)
}

// ListEnvironments lists a project's environments in display order.
func (t *Tx) ListEnvironments(ctx context.Context, projectID string) ([]domain.Environment, error) {
	rows, err := t.q().Query(ctx, `SELECT `+envColumns+envFrom+`WHERE e.project_id = $1 ORDER BY e.position, e.key`, projectID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Environment, error) { return scanEnv(r) })
}

// AllEnvironmentIDs lists every environment (for republishing at start-up).
func (s *Store) AllEnvironmentIDs(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id FROM environments ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// UpdateEnvironment saves an environment's editable fields.
func (t *Tx) UpdateEnvironment(ctx context.Context, e domain.Environment) (domain.Environment, error) {
	_, err := t.q().Exec(ctx, `UPDATE environments SET name = $2, color = $3, critical = $4, locked = $5, lock_reason = $6,
		position = $7, updated_at = now() WHERE id = $1`, e.ID, e.Name, e.Color, e.Critical, e.Locked, e.LockReason, e.Position)
	if err != nil {
		return domain.Environment{}, err
	}
	return t.EnvironmentByID(ctx, e.ID)
}

// DeleteEnvironment deletes an environment with its configurations, segments and keys.
func (t *Tx) DeleteEnvironment(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `DELETE FROM environments WHERE id = $1`, id)
	return err
}

// LockEnvironmentRow locks the environment's row for an edit of the environment itself and
// returns it.
func (t *Tx) LockEnvironmentRow(ctx context.Context, id string) (domain.Environment, error) {
	if _, err := t.q().Exec(ctx, `SELECT 1 FROM environments WHERE id = $1 FOR UPDATE`, id); err != nil {
		return domain.Environment{}, err
	}
	return t.EnvironmentByID(ctx, id)
}

// ShareEnvironmentRow holds a shared lock on the environment's row until commit and returns
// it: changes inside the environment run in parallel with each other, but not with an edit of
// the environment (such as locking it), so a lock never lets a change slip through.
func (t *Tx) ShareEnvironmentRow(ctx context.Context, id string) (domain.Environment, error) {
	e, err := scanEnv(t.q().QueryRow(ctx, `SELECT `+envColumns+envFrom+`WHERE e.id = $1 FOR SHARE OF e`, id))
	return e, notFound(err, "environment not found")
}

// BumpRuleset records that the environments' rulesets changed: an outbox row each inside the
// caller's transaction, so the publication happens if and only if the change commits; the
// publisher is woken once it has (Store.Bumps). (An environment being deleted gets a tombstone.)
func (t *Tx) BumpRuleset(ctx context.Context, envIDs ...string) error {
	if len(envIDs) == 0 {
		return nil
	}
	_, err := t.q().Exec(ctx, bumpRulesetSQL, envIDs)
	if err == nil {
		t.bumped = append(t.bumped, envIDs...)
	}
	return err
}

const bumpRulesetSQL = `INSERT INTO outbox (environment_id) SELECT unnest($1::uuid[])`

// EnvironmentIDsOfProject lists the ids of a project's environments.
func (t *Tx) EnvironmentIDsOfProject(ctx context.Context, projectID string) ([]string, error) {
	rows, err := t.q().Query(ctx, `SELECT id FROM environments WHERE project_id = $1 ORDER BY id`, projectID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
