// Package authz authenticates the jobs API's callers with their flag service API token and
// checks their rights the way the flag service does: the token is verified by GET /api/v1/me
// (cached briefly), and the right to change an environment follows the flag service's roles —
// developers may change non-critical environments, project admins critical ones, service
// tokens only inside their scope.
package authz

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/roles"
)

// Roles, most powerful first (the flag service's).
const (
	RoleOwner        = roles.Owner
	RoleAdmin        = roles.Admin
	RoleProjectAdmin = roles.ProjectAdmin
	RoleDeveloper    = roles.Developer
	RoleViewer       = roles.Viewer
)

// Caller is an authenticated caller of the jobs API.
type Caller struct {
	// Token is the caller's flag service token (used to act as them, never logged).
	Token string
	Me    flagsvc.Me
}

// Label names the caller in records: their name, else their actor id.
func (c Caller) Label() string {
	if c.Me.Actor.Name != "" {
		return c.Me.Actor.Name
	}
	return c.Me.Actor.Type + " " + c.Me.Actor.ID
}

// grant is what the caller's rights depend on.
func (c Caller) grant() roles.Grant {
	return roles.Grant{Role: c.Me.Role, ProjectIDs: c.Me.ProjectIDs, Scope: c.Me.Scope}
}

// RoleIn is the caller's effective role in a project: a project admin scoped to other
// projects is a viewer there.
func (c Caller) RoleIn(projectID string) string { return c.grant().RoleIn(projectID) }

// Authorizer verifies tokens and rights against the flag service.
type Authorizer struct {
	FlagService *flagsvc.Client
	// TTL is how long a verified token is trusted without asking again (default TokenTTL).
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	me  flagsvc.Me
	exp time.Time
}

// TokenTTL is how long a verified token is trusted: the flag service's own verification cache
// (2 s), so a revoked token stops working here within about twice that (it was 10 s).
const TokenTTL = 2 * time.Second

// maxCached bounds the verified tokens kept; past it the expired ones go, and if none has
// expired, all of them (they are verified again when used).
const maxCached = 10000

// New returns an authorizer asking fs.
func New(fs *flagsvc.Client) *Authorizer {
	return &Authorizer{FlagService: fs, TTL: TokenTTL, Now: time.Now, cache: map[[32]byte]cached{}}
}

// Authenticate resolves a bearer token into a caller (GET /me with it, cached by the token's
// hash for TTL). An invalid token is errs.KindUnauthenticated.
func (a *Authorizer) Authenticate(ctx context.Context, token string) (Caller, error) {
	if token == "" {
		return Caller{}, errs.Unauthenticated("send your Switchyard API token as Authorization: Bearer <token>")
	}
	key := sha256.Sum256([]byte(token))
	now := a.Now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.exp) {
		a.mu.Unlock()
		return Caller{Token: token, Me: c.me}, nil
	}
	a.mu.Unlock()
	me, err := a.FlagService.WithToken(token).Me(ctx)
	if err != nil {
		switch errs.KindOf(err) {
		case errs.KindUnauthenticated:
			return Caller{}, errs.Unauthenticated("the API token was not accepted by the flag service")
		case errs.KindPermissionDenied:
			return Caller{}, err
		}
		return Caller{}, errs.Unavailable(err, "cannot verify the API token: the flag service is unavailable")
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		for k, c := range a.cache {
			if now.After(c.exp) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
	}
	a.cache[key] = cached{me: me, exp: now.Add(a.TTL)}
	a.mu.Unlock()
	return Caller{Token: token, Me: me}, nil
}

// ReadProject checks the caller may read the project (the flag service answers for it with
// the caller's token) and returns it.
func (a *Authorizer) ReadProject(ctx context.Context, c Caller, project string) (flagsvc.Project, error) {
	p, err := a.FlagService.WithToken(c.Token).Project(ctx, project)
	return p, mapLookup(err)
}

// Need is the role an action needs.
type Need int

// Actions of the jobs API beyond reading.
const (
	// WriteFlag: per-flag settings, archiving a flag — developers and up.
	WriteFlag Need = iota
	// ManageProject: a project's Slack channel and thresholds — project admins and up.
	ManageProject
)

// RequireProject checks the caller may do a project-level action and returns the project.
func (a *Authorizer) RequireProject(ctx context.Context, c Caller, project string, need Need) (flagsvc.Project, error) {
	p, err := a.ReadProject(ctx, c, project)
	if err != nil {
		return p, err
	}
	if sp := c.Me.Scope["project_id"]; sp != "" && sp != p.ID {
		return p, errs.PermissionDenied("this token is scoped to another project")
	}
	if c.Me.Scope["environment_id"] != "" {
		return p, errs.PermissionDenied("this token may only change its own environment")
	}
	role := c.RoleIn(p.ID)
	want, what := RoleDeveloper, "edit flags"
	if need == ManageProject {
		want, what = RoleProjectAdmin, "manage this project"
	}
	if roles.Rank(role) < roles.Rank(want) {
		return p, errs.PermissionDenied("role %s may not %s", role, what)
	}
	return p, nil
}

// RequireEnvironment checks the caller may change flags in the environment — developers in
// non-critical environments, project admins and up in critical ones, service tokens inside
// their scope — and returns the environment.
func (a *Authorizer) RequireEnvironment(ctx context.Context, c Caller, project, env string) (flagsvc.Environment, error) {
	e, err := a.FlagService.WithToken(c.Token).Environment(ctx, project, env)
	if err != nil {
		return e, mapLookup(err)
	}
	if why := c.grant().ChangeEnvironment(e.ProjectID, e.ID, e.Critical); why != "" {
		return e, errs.PermissionDenied("%s", why)
	}
	return e, nil
}

// mapLookup keeps the caller-facing kinds of a lookup made with the caller's token.
func mapLookup(err error) error {
	if err == nil {
		return nil
	}
	switch errs.KindOf(err) {
	case errs.KindNotFound, errs.KindPermissionDenied, errs.KindUnauthenticated, errs.KindUnavailable, errs.KindRateLimited:
		return err
	}
	return errs.Unavailable(err, "the flag service gave an unexpected answer")
}
