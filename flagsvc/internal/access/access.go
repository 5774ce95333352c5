// Package access decides who may do what: the caller (a Principal, from an API token), the
// actions of the API, and the role each needs — including the rule that developers may change
// flags only in non-critical environments. Enforced by the API on every endpoint.
package access

import (
	"slices"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	OrgID string
	Actor domain.Actor
	// UserID is set for personal tokens (the user they act as).
	UserID string
	// TokenID is the database id of the token used.
	TokenID string
	Role    domain.Role
	// ProjectIDs scopes a project_admin membership (empty: all projects).
	ProjectIDs []string
	// ProjectID and EnvironmentID scope a service token (empty: unscoped).
	ProjectID     string
	EnvironmentID string
	// TokenExpiresAt is the expiry of the token used (nil: it does not expire). A token it
	// creates may not outlive it.
	TokenExpiresAt *time.Time
}

// Action is something the API lets a caller do.
type Action int

// Actions, grouped by the role they need.
const (
	// ReadOrg: see the organization, its projects and members.
	ReadOrg Action = iota
	// ReadProject: see a project's flags, environments, segments, history and audit.
	ReadProject
	// ManageOrg: members, service tokens, projects — admins and owners.
	ManageOrg
	// ManageProject: a project's settings, environments (create, clone, lock), SDK keys.
	ManageProject
	// WriteFlag: create and edit flag definitions (all environments see them).
	WriteFlag
	// DeleteFlag: delete flags for good.
	DeleteFlag
	// WriteEnvironment: change flags' configurations and segments in one environment.
	WriteEnvironment
	// ManageOwnTokens: create and revoke one's own personal tokens.
	ManageOwnTokens
)

// describe says what a refused caller tried to do, for the error message: the action applied
// to what it was refused on (resource, a plural noun; empty: flags), so a developer refused
// the deletion of a metric reads "delete metrics", not "delete flags".
func describe(a Action, resource string) string {
	things := resource
	if things == "" {
		things = "flags"
	}
	switch a {
	case ReadOrg:
		return "read the organization"
	case ReadProject:
		return "read this project"
	case ManageOrg:
		if resource == "" {
			return "manage the organization"
		}
		return "manage the organization's " + resource
	case ManageProject:
		if resource == "" {
			return "manage this project"
		}
		return "manage this project's " + resource
	case WriteFlag:
		return "edit " + things
	case DeleteFlag:
		return "delete " + things
	case WriteEnvironment:
		return "change " + things + " in this environment"
	case ManageOwnTokens:
		return "manage personal tokens"
	}
	return "do this"
}

// Target is what an action applies to. Empty ids mean organization level.
type Target struct {
	ProjectID     string
	EnvironmentID string
	// Critical is the environment's critical mark (production-like).
	Critical bool
	// Resource names what the action applies to in a refusal, as a plural noun ("metrics",
	// "segments"); empty: flags (or the project or organization itself, for ManageProject and
	// ManageOrg). Actions are shared
	// by several resources (metrics are written with WriteFlag's role, for instance).
	Resource string
}

// RoleIn is the principal's effective role in a project: a project_admin scoped to other
// projects is a viewer here.
func (p *Principal) RoleIn(projectID string) domain.Role {
	if p.Role == domain.RoleProjectAdmin && len(p.ProjectIDs) > 0 && projectID != "" && !slices.Contains(p.ProjectIDs, projectID) {
		return domain.RoleViewer
	}
	return p.Role
}

// Require returns a PermissionDenied error unless the principal may do the action on the target.
func (p *Principal) Require(a Action, t Target) error {
	if p == nil || !p.Role.Valid() {
		return errs.Unauthenticated("authentication required")
	}
	// Service token scope: nothing outside its project; writes only in its environment.
	if p.ProjectID != "" && t.ProjectID != "" && t.ProjectID != p.ProjectID {
		return errs.PermissionDenied("this token is scoped to another project")
	}
	if p.ProjectID != "" && t.ProjectID == "" && a != ReadOrg {
		return errs.PermissionDenied("this token is scoped to one project")
	}
	if p.EnvironmentID != "" && a != ReadOrg && a != ReadProject {
		if a != WriteEnvironment || t.EnvironmentID != p.EnvironmentID {
			return errs.PermissionDenied("this token may only change its own environment")
		}
	}
	role := p.RoleIn(t.ProjectID)
	var need domain.Role
	switch a {
	case ReadOrg, ReadProject:
		need = domain.RoleViewer
	case ManageOwnTokens:
		if p.UserID == "" {
			return errs.PermissionDenied("service tokens cannot manage personal tokens")
		}
		need = domain.RoleViewer
	case ManageOrg:
		need = domain.RoleAdmin
	case ManageProject, DeleteFlag:
		need = domain.RoleProjectAdmin
	case WriteFlag:
		need = domain.RoleDeveloper
	case WriteEnvironment:
		need = domain.RoleDeveloper
		if t.Critical {
			need = domain.RoleProjectAdmin
		}
	default:
		return errs.PermissionDenied("unknown action")
	}
	if !role.AtLeast(need) {
		msg := "role " + string(role) + " may not " + describe(a, t.Resource) + " (needs " + string(need) + ")"
		if a == WriteEnvironment && t.Critical && role == domain.RoleDeveloper {
			msg += ": the environment is critical (developers have read-only access)"
		}
		return errs.PermissionDenied("%s", msg)
	}
	return nil
}

// CanGrant reports whether the principal may give a member or token the role.
func (p *Principal) CanGrant(r domain.Role) error {
	if r == domain.RoleOwner && p.Role != domain.RoleOwner {
		return errs.PermissionDenied("only owners may grant the owner role")
	}
	if !p.Role.AtLeast(r) {
		return errs.PermissionDenied("cannot grant a role above your own (%s)", p.Role)
	}
	return nil
}
