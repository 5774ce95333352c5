package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// CreateOrg inserts an organization.
func (t *Tx) CreateOrg(ctx context.Context, key, name string) (domain.Organization, error) {
	var o domain.Organization
	err := t.q().QueryRow(ctx, `INSERT INTO organizations (key, name) VALUES ($1, $2) RETURNING id, key, name, created_at`,
		key, name).Scan(&o.ID, &o.Key, &o.Name, &o.CreatedAt)
	return o, err
}

// OrgByKey returns the organization with the key.
func (t *Tx) OrgByKey(ctx context.Context, key string) (domain.Organization, error) {
	var o domain.Organization
	err := t.q().QueryRow(ctx, `SELECT id, key, name, created_at FROM organizations WHERE key = $1`, key).
		Scan(&o.ID, &o.Key, &o.Name, &o.CreatedAt)
	return o, notFound(err, "organization %q not found", key)
}

// OrgByID returns the organization with the id.
func (t *Tx) OrgByID(ctx context.Context, id string) (domain.Organization, error) {
	var o domain.Organization
	err := t.q().QueryRow(ctx, `SELECT id, key, name, created_at FROM organizations WHERE id = $1`, id).
		Scan(&o.ID, &o.Key, &o.Name, &o.CreatedAt)
	return o, notFound(err, "organization not found")
}

// UserByEmail returns the user with the email (case-insensitive).
func (t *Tx) UserByEmail(ctx context.Context, email string) (domain.User, error) {
	var u domain.User
	err := t.q().QueryRow(ctx, `SELECT id, email, name, created_at FROM users WHERE lower(email) = lower($1)`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt)
	return u, notFound(err, "user %q not found", email)
}

// UserByID returns the user with the id.
func (t *Tx) UserByID(ctx context.Context, id string) (domain.User, error) {
	var u domain.User
	err := t.q().QueryRow(ctx, `SELECT id, email, name, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt)
	return u, notFound(err, "user not found")
}

// CreateUser inserts a user.
func (t *Tx) CreateUser(ctx context.Context, email, name string) (domain.User, error) {
	var u domain.User
	err := t.q().QueryRow(ctx, `INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id, email, name, created_at`,
		email, name).Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt)
	return u, err
}

// PutMembership creates or updates a membership.
func (t *Tx) PutMembership(ctx context.Context, orgID, userID string, role domain.Role, projectIDs []string) error {
	_, err := t.q().Exec(ctx, `INSERT INTO memberships (org_id, user_id, role, project_ids) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role, project_ids = EXCLUDED.project_ids`,
		orgID, userID, string(role), projectIDsOrNil(projectIDs))
	return err
}

func projectIDsOrNil(ids []string) any {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// DeleteMembership removes a user from an organization.
func (t *Tx) DeleteMembership(ctx context.Context, orgID, userID string) error {
	tag, err := t.q().Exec(ctx, `DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID)
	if err == nil && tag.RowsAffected() == 0 {
		return notFound(pgx.ErrNoRows, "member not found")
	}
	return err
}

// Membership returns a user's membership.
func (t *Tx) Membership(ctx context.Context, orgID, userID string) (domain.Member, error) {
	var m domain.Member
	var role string
	err := t.q().QueryRow(ctx, `SELECT u.id, u.email, u.name, u.created_at, m.role, coalesce(m.project_ids::text[], '{}')
		FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID).
		Scan(&m.ID, &m.Email, &m.Name, &m.CreatedAt, &role, &m.ProjectIDs)
	m.Role = domain.Role(role)
	return m, notFound(err, "member not found")
}

// CountOwners counts an organization's owners, locking their memberships until the transaction
// ends: two owners demoting (or removing) each other at once are counted one after the other,
// so the organization keeps one.
func (t *Tx) CountOwners(ctx context.Context, orgID string) (int, error) {
	var n int
	err := t.q().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE) o`, orgID).Scan(&n)
	return n, err
}

// ListMembers lists an organization's members by email.
func (t *Tx) ListMembers(ctx context.Context, orgID string) ([]domain.Member, error) {
	rows, err := t.q().Query(ctx, `SELECT u.id, u.email, u.name, u.created_at, m.role, coalesce(m.project_ids::text[], '{}')
		FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY lower(u.email)`, orgID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Member, error) {
		var m domain.Member
		var role string
		err := r.Scan(&m.ID, &m.Email, &m.Name, &m.CreatedAt, &role, &m.ProjectIDs)
		m.Role = domain.Role(role)
		return m, err
	})
}

// APITokenSecret is a token row with its secret hash, for authentication.
type APITokenSecret struct {
	domain.APIToken
	SecretHash []byte
}

const tokenColumns = `id, org_id, token_id, kind, name, coalesce(user_id::text, ''), coalesce(role, ''),
	coalesce(project_id::text, ''), coalesce(environment_id::text, ''), expires_at, last_used_at, revoked_at, created_at,
	coalesce(created_by_token::text, '')`

func scanToken(row pgx.Row, extra ...any) (domain.APIToken, error) {
	var tk domain.APIToken
	var role string
	dest := append([]any{&tk.ID, &tk.OrgID, &tk.TokenID, &tk.Kind, &tk.Name, &tk.UserID, &role, &tk.ProjectID,
		&tk.EnvironmentID, &tk.ExpiresAt, &tk.LastUsedAt, &tk.RevokedAt, &tk.CreatedAt, &tk.CreatedByToken}, extra...)
	err := row.Scan(dest...)
	tk.Role = domain.Role(role)
	return tk, err
}

// collectTokens reads rows of tokenColumns.
func collectTokens(rows pgx.Rows) ([]domain.APIToken, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.APIToken, error) { return scanToken(r) })
}

// InsertAPIToken stores a token by the hash of its secret; tk.CreatedByToken is the token it is
// created with (empty: none, as the bootstrap owner's).
func (t *Tx) InsertAPIToken(ctx context.Context, tk domain.APIToken, secretHash []byte, createdBy string) (domain.APIToken, error) {
	row := t.q().QueryRow(ctx, `INSERT INTO api_tokens (org_id, token_id, secret_hash, kind, name, user_id, role, project_id,
		environment_id, expires_at, created_by, created_by_token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING `+tokenColumns,
		tk.OrgID, tk.TokenID, secretHash, tk.Kind, tk.Name, nullable(tk.UserID), nullable(string(tk.Role)),
		nullable(tk.ProjectID), nullable(tk.EnvironmentID), tk.ExpiresAt, nullable(createdBy), nullable(tk.CreatedByToken))
	return scanToken(row)
}

// LockLiveAPIToken locks a token against revocation until the transaction ends (FOR SHARE:
// RevokeAPIToken's update waits for it) and reports whether it is still live, neither revoked
// nor expired at now. Creating a token with a token takes it first, so that a revocation either
// sees the new token among those made with the revoked one or makes the creation refused.
func (t *Tx) LockLiveAPIToken(ctx context.Context, orgID, id string, now time.Time) (bool, error) {
	var live bool
	err := t.q().QueryRow(ctx, `SELECT revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3) FROM api_tokens
		WHERE org_id = $1 AND id = $2 FOR SHARE`, orgID, id, now).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return live, err
}

// ListAPITokens lists an organization's tokens; userID filters to one user's personal tokens.
func (t *Tx) ListAPITokens(ctx context.Context, orgID, userID string) ([]domain.APIToken, error) {
	rows, err := t.q().Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE org_id = $1
		AND ($2::uuid IS NULL OR user_id = $2) ORDER BY created_at, id`, orgID, nullable(userID))
	if err != nil {
		return nil, err
	}
	return collectTokens(rows)
}

// APIToken returns one token of the organization.
func (t *Tx) APIToken(ctx context.Context, orgID, id string) (domain.APIToken, error) {
	tk, err := scanToken(t.q().QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE org_id = $1 AND id = $2`, orgID, id))
	return tk, notFound(err, "token not found")
}

// RevokeAPIToken revokes a token (idempotent) and, with cascade, every live token created with
// it, directly or through others (through revoked ones too: a token revoked without cascade
// left what it made live), and returns those it revoked besides the token itself. It goes one
// generation at a time, each update a statement of its own: a token being created with one of
// the generation (LockLiveAPIToken) makes the update wait for its commit, and the next
// generation's statements see it.
func (t *Tx) RevokeAPIToken(ctx context.Context, orgID, id string, cascade bool) ([]domain.APIToken, error) {
	if _, err := t.q().Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE org_id = $1 AND id = $2`, orgID, id); err != nil {
		return nil, err
	}
	var revoked []domain.APIToken
	for makers := []string{id}; cascade && len(makers) > 0; {
		rows, err := t.q().Query(ctx, `UPDATE api_tokens SET revoked_at = now()
			WHERE org_id = $1 AND created_by_token = ANY($2::uuid[]) AND revoked_at IS NULL RETURNING `+tokenColumns, orgID, makers)
		if err != nil {
			return nil, err
		}
		made, err := collectTokens(rows)
		if err != nil {
			return nil, err
		}
		revoked = append(revoked, made...)
		// Tokens are made only with existing ones, so the line has no cycle and this ends.
		rows, err = t.q().Query(ctx, `SELECT id::text FROM api_tokens WHERE org_id = $1 AND created_by_token = ANY($2::uuid[])`, orgID, makers)
		if err != nil {
			return nil, err
		}
		if makers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
	}
	return revoked, nil
}

// APITokenDescendants lists the live tokens created with token id, directly or through others
// (revoked ones included): what RevokeAPIToken with cascade would revoke now, oldest first.
func (t *Tx) APITokenDescendants(ctx context.Context, orgID, id string) ([]domain.APIToken, error) {
	rows, err := t.q().Query(ctx, `WITH RECURSIVE line AS (
			SELECT id FROM api_tokens WHERE org_id = $1 AND created_by_token = $2
			UNION SELECT t.id FROM api_tokens t JOIN line ON t.created_by_token = line.id WHERE t.org_id = $1)
		SELECT `+tokenColumns+` FROM api_tokens WHERE id IN (SELECT id FROM line) AND revoked_at IS NULL ORDER BY created_at, id`, orgID, id)
	if err != nil {
		return nil, err
	}
	return collectTokens(rows)
}

// APITokenByTokenID finds a token by its public id, with its secret hash (outside a transaction).
func (s *Store) APITokenByTokenID(ctx context.Context, tokenID string) (APITokenSecret, error) {
	var out APITokenSecret
	tk, err := scanToken(s.Pool.QueryRow(ctx, `SELECT `+tokenColumns+`, secret_hash FROM api_tokens WHERE token_id = $1`, tokenID), &out.SecretHash)
	out.APIToken = tk
	return out, notFound(err, "token not found")
}

// MembershipOf returns a user's role and project scope in an organization (outside a transaction).
func (s *Store) MembershipOf(ctx context.Context, orgID, userID string) (domain.Member, error) {
	var m domain.Member
	var role string
	err := s.Pool.QueryRow(ctx, `SELECT u.id, u.email, u.name, m.role, coalesce(m.project_ids::text[], '{}') FROM memberships m
		JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID).
		Scan(&m.ID, &m.Email, &m.Name, &role, &m.ProjectIDs)
	m.Role = domain.Role(role)
	return m, notFound(err, "member not found")
}

// TouchAPITokens records last-used times (batched by the caller).
func (s *Store) TouchAPITokens(ctx context.Context, used map[string]time.Time) error {
	b := &pgx.Batch{}
	for id, at := range used {
		b.Queue(`UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, at)
	}
	return s.Pool.SendBatch(ctx, b).Close()
}
