package access

import (
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
)

func TestRequire(t *testing.T) {
	prod := Target{ProjectID: "p1", EnvironmentID: "prod", Critical: true}
	dev := Target{ProjectID: "p1", EnvironmentID: "dev"}
	tests := []struct {
		name   string
		p      Principal
		action Action
		target Target
		ok     bool
	}{
		{"developer edits development", Principal{Role: domain.RoleDeveloper}, WriteEnvironment, dev, true},
		{"developer reads production", Principal{Role: domain.RoleDeveloper}, ReadProject, prod, true},
		{"developer cannot edit production", Principal{Role: domain.RoleDeveloper}, WriteEnvironment, prod, false},
		{"project admin edits production", Principal{Role: domain.RoleProjectAdmin}, WriteEnvironment, prod, true},
		{"scoped project admin elsewhere is a viewer", Principal{Role: domain.RoleProjectAdmin, ProjectIDs: []string{"p2"}}, WriteFlag, dev, false},
		{"scoped project admin in scope", Principal{Role: domain.RoleProjectAdmin, ProjectIDs: []string{"p1"}}, ManageProject, dev, true},
		{"viewer cannot write", Principal{Role: domain.RoleViewer}, WriteFlag, dev, false},
		{"admin manages the org", Principal{Role: domain.RoleAdmin}, ManageOrg, Target{}, true},
		{"project admin cannot manage the org", Principal{Role: domain.RoleProjectAdmin}, ManageOrg, Target{}, false},
		{"project-scoped token outside", Principal{Role: domain.RoleOwner, ProjectID: "p2"}, ReadProject, dev, false},
		{"env-scoped token in env", Principal{Role: domain.RoleOwner, ProjectID: "p1", EnvironmentID: "prod"}, WriteEnvironment, prod, true},
		{"env-scoped token other env", Principal{Role: domain.RoleOwner, ProjectID: "p1", EnvironmentID: "prod"}, WriteEnvironment, dev, false},
		{"env-scoped token edits flags", Principal{Role: domain.RoleOwner, ProjectID: "p1", EnvironmentID: "prod"}, WriteFlag, dev, false},
		{"service token personal tokens", Principal{Role: domain.RoleOwner}, ManageOwnTokens, Target{}, false},
		{"no role", Principal{}, ReadOrg, Target{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Require(tc.action, tc.target)
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && errs.KindOf(err) != errs.KindPermissionDenied && errs.KindOf(err) != errs.KindUnauthenticated {
				t.Fatalf("wrong kind %v", errs.KindOf(err))
			}
		})
	}
}

func TestCanGrant(t *testing.T) {
	admin := Principal{Role: domain.RoleAdmin}
	if admin.CanGrant(domain.RoleOwner) == nil || admin.CanGrant(domain.RoleAdmin) != nil {
		t.Fatal("admins grant up to admin, never owner")
	}
	owner := Principal{Role: domain.RoleOwner}
	if owner.CanGrant(domain.RoleOwner) != nil {
		t.Fatal("owners grant owner")
	}
}
