package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/jobs/internal/settings"
)

// ProjectSettings returns a project's settings; a project that set nothing gets the defaults
// (digest on, no channel of its own).
func (s *Store) ProjectSettings(ctx context.Context, project string) (settings.Project, error) {
	p := settings.Project{Project: project, DigestEnabled: true}
	err := s.Pool.QueryRow(ctx, `SELECT slack_channel, stale_no_evaluations_days, stale_single_variation_days, digest_enabled, updated_at, updated_by
		FROM project_settings WHERE project = $1`, project).Scan(&p.SlackChannel, &p.StaleNoEvaluationsDays, &p.StaleSingleVariationDays,
		&p.DigestEnabled, &p.UpdatedAt, &p.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil
	}
	return p, err
}

// PutProjectSettings replaces a project's settings.
func (s *Store) PutProjectSettings(ctx context.Context, p settings.Project) (settings.Project, error) {
	_, err := s.Pool.Exec(ctx, `INSERT INTO project_settings (project, slack_channel, stale_no_evaluations_days, stale_single_variation_days, digest_enabled, updated_at, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (project) DO UPDATE SET slack_channel = EXCLUDED.slack_channel,
			stale_no_evaluations_days = EXCLUDED.stale_no_evaluations_days, stale_single_variation_days = EXCLUDED.stale_single_variation_days,
			digest_enabled = EXCLUDED.digest_enabled, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		p.Project, p.SlackChannel, p.StaleNoEvaluationsDays, p.StaleSingleVariationDays, p.DigestEnabled, s.now(), p.UpdatedBy)
	if err != nil {
		return p, err
	}
	return s.ProjectSettings(ctx, p.Project)
}

// FlagSettings returns a project's per-flag overrides by flag key.
func (s *Store) FlagSettings(ctx context.Context, project string) (map[string]settings.Flag, error) {
	rows, err := s.Pool.Query(ctx, `SELECT flag, no_evaluations_days, single_variation_days, ignore, updated_at, updated_by
		FROM flag_stale_settings WHERE project = $1`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]settings.Flag{}
	for rows.Next() {
		f := settings.Flag{Project: project}
		if err := rows.Scan(&f.Flag, &f.NoEvaluationsDays, &f.SingleVariationDays, &f.Ignore, &f.UpdatedAt, &f.UpdatedBy); err != nil {
			return nil, err
		}
		out[f.Flag] = f
	}
	return out, rows.Err()
}

// PutFlagSettings replaces one flag's overrides.
func (s *Store) PutFlagSettings(ctx context.Context, f settings.Flag) (settings.Flag, error) {
	_, err := s.Pool.Exec(ctx, `INSERT INTO flag_stale_settings (project, flag, no_evaluations_days, single_variation_days, ignore, updated_at, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (project, flag) DO UPDATE SET no_evaluations_days = EXCLUDED.no_evaluations_days,
			single_variation_days = EXCLUDED.single_variation_days, ignore = EXCLUDED.ignore,
			updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		f.Project, f.Flag, f.NoEvaluationsDays, f.SingleVariationDays, f.Ignore, s.now(), f.UpdatedBy)
	if err != nil {
		return f, err
	}
	all, err := s.FlagSettings(ctx, f.Project)
	return all[f.Flag], err
}

// DeleteFlagSettings removes a flag's overrides.
func (s *Store) DeleteFlagSettings(ctx context.Context, project, flag string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM flag_stale_settings WHERE project = $1 AND flag = $2`, project, flag)
	return err
}
