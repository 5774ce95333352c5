package domain

import "github.com/switchyard-io/switchyard/platform/roles"

// Role is what a member or a service token may do. Roles are ordered: each includes the rights
// of the ones below it.
type Role string

// The five roles.
const (
	RoleOwner        Role = roles.Owner
	RoleAdmin        Role = roles.Admin
	RoleProjectAdmin Role = roles.ProjectAdmin
	// RoleDeveloper edits flags in non-critical environments and reads critical ones.
	RoleDeveloper Role = roles.Developer
	RoleViewer    Role = roles.Viewer
)

// Roles lists every role from most to least powerful.
var Roles = []Role{RoleOwner, RoleAdmin, RoleProjectAdmin, RoleDeveloper, RoleViewer}

// Rank orders roles: higher is more powerful; 0 means unknown.
func (r Role) Rank() int { return roles.Rank(string(r)) }

// Valid reports whether r is one of the five roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// AtLeast reports whether r includes the rights of min.
func (r Role) AtLeast(min Role) bool { return r.Rank() >= min.Rank() }
