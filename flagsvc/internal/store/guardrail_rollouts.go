package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

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
