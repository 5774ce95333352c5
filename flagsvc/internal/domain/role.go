package domain

// Role is what a member or a service token may do. Roles are ordered: each includes the rights
// of the ones below it.
type Role string

// The five roles.
const (
	RoleOwner        Role = "owner"
	RoleAdmin        Role = "admin"
	RoleProjectAdmin Role = "project_admin"
	// RoleDeveloper edits flags in non-critical environments and reads critical ones.
	RoleDeveloper Role = "developer"
	RoleViewer    Role = "viewer"
)

// Roles lists every role from most to least powerful.
var Roles = []Role{RoleOwner, RoleAdmin, RoleProjectAdmin, RoleDeveloper, RoleViewer}

// Rank orders roles: higher is more powerful; 0 means unknown.
func (r Role) Rank() int {
	switch r {
	case RoleOwner:
		return 5
	case RoleAdmin:
		return 4
	case RoleProjectAdmin:
		return 3
	case RoleDeveloper:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the five roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// AtLeast reports whether r includes the rights of min.
func (r Role) AtLeast(min Role) bool { return r.Rank() >= min.Rank() }
