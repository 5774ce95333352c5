package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// InsertAudit appends an entry to the audit log in the caller's transaction.
func (t *Tx) InsertAudit(ctx context.Context, orgID string, e domain.AuditEntry) error {
	_, err := t.q().Exec(ctx, insertAuditSQL, auditArgs(orgID, e)...)
	return err
}

const insertAuditSQL = `INSERT INTO audit_log (org_id, actor_type, actor_id, actor_name, action, resource_type,
	resource_id, resource_key, project_id, environment_id, before, after, comment, ip, user_agent)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

func auditArgs(orgID string, e domain.AuditEntry) []any {
	return []any{orgID, e.Actor.Type, e.Actor.ID, e.Actor.Name, e.Action, e.ResourceType, e.ResourceID, e.ResourceKey,
		nullable(e.ProjectID), nullable(e.EnvironmentID), jsonOrNil(e.Before), jsonOrNil(e.After), e.Comment, e.IP, e.UserAgent}
}

func jsonOrNil(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// AuditFilter selects audit entries; the zero value selects all of an organization's.
type AuditFilter struct {
	OrgID        string
	Actor        string // actor id
	Action       string // exact action, or a prefix ending in '.' (e.g. "flag_config.")
	ResourceType string
	Resource     string // resource id or key
	ProjectID    string
	From, To     time.Time
	// BeforeID pages backwards: entries older than this id.
	BeforeID int64
	Limit    int
}

func (f AuditFilter) where() (string, []any) {
	args := []any{f.OrgID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	w := []string{"org_id = $1"}
	if f.Actor != "" {
		w = append(w, "actor_id = "+arg(f.Actor))
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			w = append(w, "starts_with(action, "+arg(f.Action)+")")
		} else {
			w = append(w, "action = "+arg(f.Action))
		}
	}
	if f.ResourceType != "" {
		w = append(w, "resource_type = "+arg(f.ResourceType))
	}
	if f.Resource != "" {
		a := arg(f.Resource)
		w = append(w, "(resource_id = "+a+" OR resource_key = "+a+")")
	}
	if f.ProjectID != "" {
		w = append(w, "project_id = "+arg(f.ProjectID)+"::uuid")
	}
	if !f.From.IsZero() {
		w = append(w, "at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		w = append(w, "at < "+arg(f.To))
	}
	if f.BeforeID > 0 {
		w = append(w, "id < "+arg(f.BeforeID))
	}
	return strings.Join(w, " AND "), args
}

const auditColumns = `id, at, actor_type, actor_id, actor_name, action, resource_type, resource_id, resource_key,
	coalesce(project_id::text, ''), coalesce(environment_id::text, ''), before, after, comment, ip, user_agent`

func scanAudit(r pgx.Row) (domain.AuditEntry, error) {
	var e domain.AuditEntry
	var before, after []byte
	err := r.Scan(&e.ID, &e.At, &e.Actor.Type, &e.Actor.ID, &e.Actor.Name, &e.Action, &e.ResourceType, &e.ResourceID,
		&e.ResourceKey, &e.ProjectID, &e.EnvironmentID, &before, &after, &e.Comment, &e.IP, &e.UserAgent)
	e.Before, e.After = before, after
	return e, err
}

// QueryAudit returns entries newest first.
func (t *Tx) QueryAudit(ctx context.Context, f AuditFilter) ([]domain.AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		return nil, errs.Invalid("limit", "at most 1000")
	}
	where, args := f.where()
	rows, err := t.q().Query(ctx, fmt.Sprintf(`SELECT %s FROM audit_log WHERE %s ORDER BY id DESC LIMIT %d`, auditColumns, where, f.Limit), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.AuditEntry, error) { return scanAudit(r) })
}

// StreamAudit calls fn for every matching entry, newest first, without holding them in memory.
func (s *Store) StreamAudit(ctx context.Context, f AuditFilter, fn func(domain.AuditEntry) error) error {
	where, args := f.where()
	rows, err := s.Pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE `+where+` ORDER BY id DESC`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
