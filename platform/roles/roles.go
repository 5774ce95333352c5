// Package roles is Switchyard's role vocabulary, shared by the flag service (which grants roles)
// and the services that check them against it (jobs): five roles, each including the rights of
// the ones below it.
package roles

import "slices"

// The five roles, most powerful first.
const (
	Owner        = "owner"
	Admin        = "admin"
	ProjectAdmin = "project_admin"
	Developer    = "developer"
	Viewer       = "viewer"
)

// Rank orders roles: higher is more powerful; 0 means unknown.
func Rank(role string) int {
	switch role {
	case Owner:
		return 5
	case Admin:
		return 4
	case ProjectAdmin:
		return 3
	case Developer:
		return 2
	case Viewer:
		return 1
	}
	return 0
}

// Grant is what the flag service says of a caller (GET /api/v1/me) that its rights depend on.
type Grant struct {
	Role string
	// ProjectIDs scopes a project admin to some projects (empty: all).
	ProjectIDs []string
	// Scope scopes a service token: project_id and environment_id.
	Scope map[string]string
}

// RoleIn is the caller's effective role in a project: a project admin scoped to other projects
// is a viewer there.
func (g Grant) RoleIn(projectID string) string {
	if g.Role == ProjectAdmin && len(g.ProjectIDs) > 0 && !slices.Contains(g.ProjectIDs, projectID) {
		return Viewer
	}
	return g.Role
}

// ChangeEnvironment says why the caller may not change an environment — the flag service's
// rule for its flags and experiments: developers in non-critical environments, project admins
// and up in critical ones, scoped tokens only inside their scope — or "" when it may. Services
// other than the flag service check it against the caller's grant and the environment, both
// read from the flag service with the caller's token.
func (g Grant) ChangeEnvironment(projectID, environmentID string, critical bool) string {
	if sp := g.Scope["project_id"]; sp != "" && sp != projectID {
		return "this token is scoped to another project"
	}
	if se := g.Scope["environment_id"]; se != "" && se != environmentID {
		return "this token may only change its own environment"
	}
	role := g.RoleIn(projectID)
	want := Developer
	if critical {
		want = ProjectAdmin
	}
	if Rank(role) >= Rank(want) {
		return ""
	}
	msg := "role " + role + " may not make changes in this environment (needs " + want + ")"
	if critical && role == Developer {
		msg += ": the environment is critical (developers have read-only access)"
	}
	return msg
}
