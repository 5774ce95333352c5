package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// PlainActiveGuardrails lists the active guardrails declared on a flag's plain percentage
// rollout (not an experiment's) in an environment, oldest first, unlocked.
func (t *Tx) PlainActiveGuardrails(ctx context.Context, flagID, envID string) ([]domain.Guardrail, error) {
	rows, err := t.q().Query(ctx, `SELECT `+guardrailColumns+guardrailFrom+`WHERE g.flag_id = $1 AND g.environment_id = $2
		AND g.experiment_id IS NULL AND g.status = 'active' ORDER BY g.created_at, g.id`, flagID, envID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Guardrail, error) { return scanGuardrail(r) })
}

// DisableActiveGuardrail disables a guardrail if it is still active and returns it as it is
// now; ok is false (and nothing changes) when it was breached or disabled meanwhile.
func (t *Tx) DisableActiveGuardrail(ctx context.Context, id string) (g domain.Guardrail, ok bool, err error) {
	var updated string
	err = t.q().QueryRow(ctx, `UPDATE guardrails SET status = 'disabled', updated_at = now()
		WHERE id = $1 AND status = 'active' RETURNING id`, id).Scan(&updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, false, nil
	}
	if err != nil {
		return g, false, err
	}
	g, err = t.GuardrailByID(ctx, id, false)
	return g, err == nil, err
}

// PlainActiveGuardrailsOfFlag lists the active guardrails declared on a flag's plain percentage
// rollouts (not an experiment's) in every environment, by environment then oldest first,
// unlocked.
func (t *Tx) PlainActiveGuardrailsOfFlag(ctx context.Context, flagID string) ([]domain.Guardrail, error) {
	rows, err := t.q().Query(ctx, `SELECT `+guardrailColumns+guardrailFrom+`WHERE g.flag_id = $1
		AND g.experiment_id IS NULL AND g.status = 'active' ORDER BY e.key, g.created_at, g.id`, flagID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Guardrail, error) { return scanGuardrail(r) })
}
