// Package tokens issues, lists, revokes and authenticates API tokens. A token reads
// "sy_<kind>_<id>_<secret>": the id is public and finds the row; only the SHA-256 of the
// secret is stored, and it is compared in constant time. Secrets are shown once, at creation.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
)

const (
	alphabet     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	idLength     = 12
	secretLength = 40 // ~238 bits
)

// RandomString returns n characters drawn uniformly from letters and digits (crypto/rand).
func RandomString(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // the OS random source failing is not recoverable
		}
		b[i] = alphabet[x.Int64()]
	}
	return string(b)
}

// Hash is the stored form of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ValidID reports whether id has the form of a database id (a UUID). Ids that cannot exist are
// refused before the database sees them: a secret pasted where an id belongs must come back
// as not found, not be echoed in a database error and its log line.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F'):
			return false
		}
	}
	return true
}

// Format assembles a token string.
func Format(kind, id, secret string) string {
	short := "pat"
	if kind == "service" {
		short = "svc"
	}
	return "sy_" + short + "_" + id + "_" + secret
}

// Parse splits a token string into its id and secret.
func Parse(token string) (id, secret string, ok bool) {
	parts := strings.Split(token, "_")
	if len(parts) != 4 || parts[0] != "sy" || (parts[1] != "pat" && parts[1] != "svc") ||
		len(parts[2]) != idLength || len(parts[3]) != secretLength {
		return "", "", false
	}
	return parts[2], parts[3], true
}

// Service manages API tokens.
type Service struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex
	used map[string]time.Time

	// cache remembers verified tokens briefly, so a burst of API calls costs one lookup.
	// Revocations and membership changes made through this instance clear it at once; other
	// replicas notice within CacheTTL.
	cacheMu sync.Mutex
	cache   map[[32]byte]cached
	// gen counts Forget calls: a verification that read the database before a Forget must
	// not cache its (possibly revoked) result after it.
	gen uint64
}

// CacheTTL is how long a verified token is trusted without asking the database again.
const CacheTTL = 2 * time.Second

type cached struct {
	p       *access.Principal
	expires time.Time
}

// Forget drops every cached verification (after a revocation or a membership change).
func (s *Service) Forget() {
	s.cacheMu.Lock()
	s.cache = map[[32]byte]cached{}
	s.gen++
	s.cacheMu.Unlock()
}

// New returns a token service.
func New(st *store.Store, log *slog.Logger) *Service {
	return &Service{store: st, log: log, now: time.Now, used: map[string]time.Time{}, cache: map[[32]byte]cached{}}
}

// CreateInput describes a new token.
type CreateInput struct {
	Kind string `json:"kind"` // personal | service
	Name string `json:"name"`
	// Role, ProjectKey and EnvironmentKey apply to service tokens.
	Role           domain.Role `json:"role,omitempty"`
	ProjectKey     string      `json:"project,omitempty"`
	EnvironmentKey string      `json:"environment,omitempty"`
	// ExpiresIn is a duration like "720h"; empty means no expiry.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// Create issues a token; the returned token's Token field holds the secret, shown once.
func (s *Service) Create(ctx context.Context, c audit.Caller, in CreateInput) (domain.APIToken, error) {
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > domain.MaxNameLength {
		return domain.APIToken{}, errs.Invalid("name", "is required (at most %d characters)", domain.MaxNameLength)
	}
	tk := domain.APIToken{OrgID: c.P.OrgID, Kind: in.Kind, Name: in.Name, TokenID: RandomString(idLength)}
	now := s.now()
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 {
			return tk, errs.Invalid("expires_in", "must be a positive duration such as 720h")
		}
		at := now.Add(d)
		tk.ExpiresAt = &at
	}
	secret := RandomString(secretLength)
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		switch in.Kind {
		case "personal":
			if err := c.P.Require(access.ManageOwnTokens, access.Target{}); err != nil {
				return err
			}
			if in.Role != "" || in.ProjectKey != "" || in.EnvironmentKey != "" {
				return errs.Invalid("role", "personal tokens act as their user; role and scope apply to service tokens")
			}
			tk.UserID = c.P.UserID
		case "service":
			if err := c.P.Require(access.ManageOrg, access.Target{Resource: "API tokens"}); err != nil {
				return err
			}
			if !in.Role.Valid() {
				return errs.Invalid("role", "must be one of owner, admin, project_admin, developer, viewer")
			}
			if err := c.P.CanGrant(in.Role); err != nil {
				return err
			}
			tk.Role = in.Role
			if in.EnvironmentKey != "" && in.ProjectKey == "" {
				return errs.Invalid("environment", "an environment scope needs a project")
			}
			if in.ProjectKey != "" {
				p, err := tx.ProjectByKey(ctx, c.P.OrgID, in.ProjectKey)
				if err != nil {
					return errs.Invalid("project", "project %q not found", in.ProjectKey)
				}
				tk.ProjectID = p.ID
				if in.EnvironmentKey != "" {
					e, err := tx.EnvironmentByKey(ctx, p.ID, in.EnvironmentKey)
					if err != nil {
						return errs.Invalid("environment", "environment %q not found", in.EnvironmentKey)
					}
					tk.EnvironmentID = e.ID
				}
			}
		default:
			return errs.Invalid("kind", "must be personal or service")
		}
		if err := notOutliving(c.P, tk.ExpiresAt, now); err != nil {
			return err
		}
		if tk.CreatedByToken = c.P.TokenID; tk.CreatedByToken != "" {
			// The caller's token was verified before (perhaps from the cache): it must still be
			// live, and stays so until this commits, so that revoking it revokes this one too.
			live, err := tx.LockLiveAPIToken(ctx, c.P.OrgID, tk.CreatedByToken, now)
			if err != nil {
				return err
			}
			if !live {
				return errs.Unauthenticated("invalid or expired API token")
			}
		}
		created, err := tx.InsertAPIToken(ctx, tk, Hash(secret), c.P.UserID)
		if err != nil {
			return err
		}
		tk = created
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "token.create", audit.Resource{Type: "token", ID: tk.ID, Key: tk.Name}, nil, tk, ""))
	})
	if err != nil {
		return domain.APIToken{}, err
	}
	tk.Token = Format(tk.Kind, tk.TokenID, secret)
	return tk, nil
}

// notOutliving refuses a token that would outlive the expiring token creating it: a
// short-lived (or soon revoked) credential must not mint a permanent one. The expiry is not
// clamped silently: the caller learns the longest expires_in it may ask for.
func notOutliving(p *access.Principal, expiresAt *time.Time, now time.Time) error {
	if p == nil || p.TokenExpiresAt == nil {
		return nil
	}
	limit := *p.TokenExpiresAt
	left := limit.Sub(now).Truncate(time.Second)
	if expiresAt == nil {
		return errs.Invalid("expires_in", "is required: the token making this request expires at %s, and a token it creates may not outlive it; ask for at most %s",
			limit.UTC().Format(time.RFC3339), left)
	}
	if expiresAt.After(limit) {
		return errs.Invalid("expires_in", "must be at most %s: the token making this request expires at %s, and a token it creates may not outlive it",
			left, limit.UTC().Format(time.RFC3339))
	}
	return nil
}

// List lists tokens: admins see all of the organization's, others their own personal tokens.
func (s *Service) List(ctx context.Context, c audit.Caller) ([]domain.APIToken, error) {
	var out []domain.APIToken
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		userID := c.P.UserID
		if c.P.Require(access.ManageOrg, access.Target{}) == nil {
			userID = ""
		} else if err := c.P.Require(access.ManageOwnTokens, access.Target{}); err != nil {
			return err
		}
		var err error
		out, err = tx.ListAPITokens(ctx, c.P.OrgID, userID)
		return err
	})
	return out, err
}

// Revoke revokes a token: one's own personal tokens, or any token for admins; with cascade, also
// every token created with it, directly or through others (a leaked token's).
func (s *Service) Revoke(ctx context.Context, c audit.Caller, id string, cascade bool) error {
	if !ValidID(id) {
		return errs.NotFound("token not found")
	}
	// Forget after the commit too: a request verified between the first Forget and the commit
	// still saw the token valid.
	defer s.Forget()
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		tk, err := revocable(ctx, tx, c, id)
		if err != nil {
			return err
		}
		made, err := tx.RevokeAPIToken(ctx, c.P.OrgID, id, cascade)
		if err != nil {
			return err
		}
		// The tokens made with it carry at most its rights; but a member's role may have changed
		// since, and an owner's token is still not a non-owner's to revoke, even this way.
		for _, m := range made {
			if err := ownersOnly(ctx, tx, c, m, fmt.Sprintf(
				"token %s (%q), created with this one, belongs to an owner; only owners may revoke it", m.ID, m.Name)); err != nil {
				return err
			}
		}
		s.Forget()
		if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "token.revoke", audit.Resource{Type: "token", ID: tk.ID, Key: tk.Name}, tk, nil, "")); err != nil {
			return err
		}
		for _, m := range made {
			before := m
			before.RevokedAt = nil // it was live; the row returned is the revoked one
			if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "token.revoke", audit.Resource{Type: "token", ID: m.ID, Key: m.Name}, before, nil,
				fmt.Sprintf("created with token %s, revoked with it", m.CreatedByToken))); err != nil {
				return err
			}
		}
		return nil
	})
}

// Descendants lists the live tokens created with a token, directly or through others: what
// revoking it with cascade would revoke too. Whoever may revoke the token may list them — its
// owner included, who may no longer be allowed to list some of them (service tokens made while
// an admin), but made them, and is asked whether to revoke them.
func (s *Service) Descendants(ctx context.Context, c audit.Caller, id string) ([]domain.APIToken, error) {
	if !ValidID(id) {
		return nil, errs.NotFound("token not found")
	}
	var out []domain.APIToken
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := revocable(ctx, tx, c, id); err != nil {
			return err
		}
		var err error
		out, err = tx.APITokenDescendants(ctx, c.P.OrgID, id)
		return err
	})
	return out, err
}

// revocable returns the token if the caller may revoke it: one's own personal token, or any
// token for admins, an owner's only for owners.
func revocable(ctx context.Context, tx *store.Tx, c audit.Caller, id string) (domain.APIToken, error) {
	tk, err := tx.APIToken(ctx, c.P.OrgID, id)
	if err != nil {
		return tk, err
	}
	if tk.UserID != c.P.UserID || tk.UserID == "" {
		if err := c.P.Require(access.ManageOrg, access.Target{Resource: "API tokens"}); err != nil {
			return tk, err
		}
		if err := ownersOnly(ctx, tx, c, tk, "only owners may revoke an owner's token"); err != nil {
			return tk, err
		}
	}
	return tk, nil
}

// ownersOnly refuses (with message) a caller who is not an owner a token that belongs to an
// owner — an owner's personal token, or an owner-role service token — as with members: only
// owners manage what belongs to owners.
func ownersOnly(ctx context.Context, tx *store.Tx, c audit.Caller, tk domain.APIToken, message string) error {
	role := tk.Role
	if tk.UserID != "" {
		m, err := tx.Membership(ctx, c.P.OrgID, tk.UserID)
		if err != nil && errs.KindOf(err) != errs.KindNotFound {
			return err
		}
		role = m.Role
	}
	if role == domain.RoleOwner && c.P.CanGrant(domain.RoleOwner) != nil {
		return errs.PermissionDenied("%s", message)
	}
	return nil
}

// Authenticate resolves a bearer token to a principal. Every failure is the same
// Unauthenticated error, so responses do not reveal which part was wrong.
func (s *Service) Authenticate(ctx context.Context, token string) (*access.Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	s.cacheMu.Lock()
	c, ok := s.cache[key]
	gen := s.gen
	s.cacheMu.Unlock()
	if ok && now.Before(c.expires) {
		s.markUsed(c.p.TokenID, now)
		return c.p, nil
	}
	p, expiresAt, err := s.verify(ctx, token)
	if err == nil {
		until := now.Add(CacheTTL)
		if expiresAt != nil && expiresAt.Before(until) {
			until = *expiresAt // an expiring token stops working when it expires, not up to CacheTTL later
		}
		s.cacheMu.Lock()
		if len(s.cache) > 10000 {
			s.cache = map[[32]byte]cached{}
		}
		if s.gen == gen {
			s.cache[key] = cached{p: p, expires: until}
		}
		s.cacheMu.Unlock()
	}
	return p, err
}

func (s *Service) markUsed(id string, at time.Time) {
	s.mu.Lock()
	s.used[id] = at
	s.mu.Unlock()
}

// verify checks a token against the database and returns its expiry too.
func (s *Service) verify(ctx context.Context, token string) (*access.Principal, *time.Time, error) {
	deny := errs.Unauthenticated("invalid or expired API token")
	id, secret, ok := Parse(token)
	if !ok {
		return nil, nil, deny
	}
	row, err := s.store.APITokenByTokenID(ctx, id)
	if errs.KindOf(err) == errs.KindNotFound {
		// Compare anyway so a missing id costs the same as a wrong secret.
		subtle.ConstantTimeCompare(Hash(secret), make([]byte, sha256.Size))
		return nil, nil, deny
	}
	if err != nil {
		return nil, nil, errs.Unavailable(err, "cannot verify the token now")
	}
	if subtle.ConstantTimeCompare(Hash(secret), row.SecretHash) != 1 {
		return nil, nil, deny
	}
	now := s.now()
	if row.RevokedAt != nil || (row.ExpiresAt != nil && !row.ExpiresAt.After(now)) {
		return nil, nil, deny
	}
	p := &access.Principal{OrgID: row.OrgID, TokenID: row.ID, ProjectID: row.ProjectID, EnvironmentID: row.EnvironmentID,
		TokenExpiresAt: row.ExpiresAt}
	if row.Kind == "personal" {
		m, err := s.store.MembershipOf(ctx, row.OrgID, row.UserID)
		if err != nil {
			return nil, nil, deny // the user left the organization
		}
		p.UserID, p.Role, p.ProjectIDs = row.UserID, m.Role, m.ProjectIDs
		p.Actor = domain.Actor{Type: "user", ID: m.ID, Name: m.Email}
	} else {
		p.Role = row.Role
		p.Actor = domain.Actor{Type: "token", ID: row.ID, Name: row.Name}
	}
	s.markUsed(row.ID, now)
	return p, row.ExpiresAt, nil
}

// Name implements lifecycle.Component.
func (s *Service) Name() string { return "token last-used recorder" }

// Run records tokens' last-used times every few seconds instead of writing on every request.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush(context.Background())
			return nil
		case <-t.C:
			s.flush(ctx)
		}
	}
}

func (s *Service) flush(ctx context.Context) {
	s.mu.Lock()
	used := s.used
	s.used = map[string]time.Time{}
	s.mu.Unlock()
	if len(used) == 0 {
		return
	}
	if err := s.store.TouchAPITokens(ctx, used); err != nil {
		s.log.Warn("recording token use failed", "err", err)
	}
}
