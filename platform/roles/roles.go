// Package roles is Switchyard's role vocabulary, shared by the flag service (which grants roles)
// and the services that check them against it (jobs): five roles, each including the rights of
// the ones below it.
package roles

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
