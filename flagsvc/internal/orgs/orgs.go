// Package orgs manages organizations and their members, and bootstraps the first owner.
package orgs

import (
	"context"
	"net/mail"
	"strings"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Service manages organizations and members.
type Service struct {
	store *store.Store
	// MembershipChanged is called after a role change or removal commits (the token service
	// forgets cached verifications, so the change takes effect on the next request).
	MembershipChanged func()
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st, MembershipChanged: func() {}} }

// Me describes the caller.
type Me struct {
	Organization domain.Organization `json:"organization"`
	Actor        domain.Actor        `json:"actor"`
	Role         domain.Role         `json:"role"`
	ProjectIDs   []string            `json:"project_ids,omitempty"`
	Scope        map[string]string   `json:"scope,omitempty"`
}

// WhoAmI returns the caller's organization, identity and role.
func (s *Service) WhoAmI(ctx context.Context, c audit.Caller) (Me, error) {
	var me Me
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ReadOrg, access.Target{}); err != nil {
			return err
		}
		org, err := tx.OrgByID(ctx, c.P.OrgID)
		me = Me{Organization: org, Actor: c.P.Actor, Role: c.P.Role, ProjectIDs: c.P.ProjectIDs}
		if c.P.ProjectID != "" {
			me.Scope = map[string]string{"project_id": c.P.ProjectID, "environment_id": c.P.EnvironmentID}
		}
		return err
	})
	return me, err
}

// MemberInput adds a member or changes one's role.
type MemberInput struct {
	Email      string      `json:"email"`
	Name       string      `json:"name"`
	Role       domain.Role `json:"role"`
	ProjectIDs []string    `json:"project_ids,omitempty"`
}

func validateMember(in *MemberInput) error {
	if _, err := mail.ParseAddress(in.Email); err != nil || strings.ContainsAny(in.Email, "<> ") {
		return errs.Invalid("email", "must be an email address")
	}
	if !in.Role.Valid() {
		return errs.Invalid("role", "must be one of owner, admin, project_admin, developer, viewer")
	}
	if len(in.ProjectIDs) > 0 && in.Role != domain.RoleProjectAdmin {
		return errs.Invalid("project_ids", "only project admins are scoped to projects")
	}
	return nil
}

// ListMembers lists the organization's members. Tokens scoped to a project may not: the
// directory (every member's email and role) is organization data outside their scope.
func (s *Service) ListMembers(ctx context.Context, c audit.Caller) ([]domain.Member, error) {
	var out []domain.Member
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ReadOrg, access.Target{}); err != nil {
			return err
		}
		if c.P.ProjectID != "" {
			return errs.PermissionDenied("this token is scoped to one project; the member list is organization-wide")
		}
		var err error
		out, err = tx.ListMembers(ctx, c.P.OrgID)
		return err
	})
	return out, err
}

// AddMember adds a user (created if new) to the organization with a role.
func (s *Service) AddMember(ctx context.Context, c audit.Caller, in MemberInput) (domain.Member, error) {
	if err := validateMember(&in); err != nil {
		return domain.Member{}, err
	}
	var m domain.Member
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ManageOrg, access.Target{Resource: "members"}); err != nil {
			return err
		}
		if err := c.P.CanGrant(in.Role); err != nil {
			return err
		}
		u, err := tx.UserByEmail(ctx, in.Email)
		if errs.KindOf(err) == errs.KindNotFound {
			u, err = tx.CreateUser(ctx, in.Email, in.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Membership(ctx, c.P.OrgID, u.ID); err == nil {
			return errs.Conflict("email", "%s is already a member", in.Email)
		}
		if err := tx.PutMembership(ctx, c.P.OrgID, u.ID, in.Role, in.ProjectIDs); err != nil {
			return err
		}
		m = domain.Member{User: u, Role: in.Role, ProjectIDs: in.ProjectIDs}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "member.add", audit.Resource{Type: "member", ID: u.ID, Key: u.Email}, nil, m, ""))
	})
	return m, err
}

// UpdateMember changes a member's role.
func (s *Service) UpdateMember(ctx context.Context, c audit.Caller, userID string, role domain.Role, projectIDs []string) (domain.Member, error) {
	if !tokens.ValidID(userID) {
		return domain.Member{}, errs.NotFound("member not found")
	}
	in := MemberInput{Email: "x@example.com", Role: role, ProjectIDs: projectIDs}
	if err := validateMember(&in); err != nil {
		return domain.Member{}, err
	}
	var m domain.Member
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ManageOrg, access.Target{Resource: "members"}); err != nil {
			return err
		}
		before, err := tx.Membership(ctx, c.P.OrgID, userID)
		if err != nil {
			return err
		}
		if err := c.P.CanGrant(role); err != nil {
			return err
		}
		if err := c.P.CanGrant(before.Role); err != nil {
			return err
		}
		if before.Role == domain.RoleOwner && role != domain.RoleOwner {
			if n, err := tx.CountOwners(ctx, c.P.OrgID); err != nil || n <= 1 {
				return errs.PreconditionFailed("role", "an organization keeps at least one owner")
			}
		}
		if err := tx.PutMembership(ctx, c.P.OrgID, userID, role, projectIDs); err != nil {
			return err
		}
		m = before
		m.Role, m.ProjectIDs = role, projectIDs
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "member.update", audit.Resource{Type: "member", ID: userID, Key: before.Email}, before, m, ""))
	})
	if err == nil {
		s.MembershipChanged()
	}
	return m, err
}

// RemoveMember removes a member (never the last owner).
func (s *Service) RemoveMember(ctx context.Context, c audit.Caller, userID string) error {
	if !tokens.ValidID(userID) {
		return errs.NotFound("member not found")
	}
	defer s.MembershipChanged()
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ManageOrg, access.Target{Resource: "members"}); err != nil {
			return err
		}
		before, err := tx.Membership(ctx, c.P.OrgID, userID)
		if err != nil {
			return err
		}
		if err := c.P.CanGrant(before.Role); err != nil {
			return err
		}
		if before.Role == domain.RoleOwner {
			if n, err := tx.CountOwners(ctx, c.P.OrgID); err != nil || n <= 1 {
				return errs.PreconditionFailed("role", "an organization keeps at least one owner")
			}
		}
		if err := tx.DeleteMembership(ctx, c.P.OrgID, userID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "member.remove", audit.Resource{Type: "member", ID: userID, Key: before.Email}, before, nil, ""))
	})
}

// BootstrapResult is what Bootstrap created.
type BootstrapResult struct {
	Organization domain.Organization
	Owner        domain.User
	// Token is a new owner personal token (empty when one was not asked for).
	Token string
}

// Bootstrap makes sure the organization exists with an owner, and issues the owner a personal
// token when newToken is set. It is safe to run again.
func (s *Service) Bootstrap(ctx context.Context, orgKey, orgName, email string, newToken bool) (BootstrapResult, error) {
	var res BootstrapResult
	if !ruleset.ValidKey(orgKey) {
		return res, errs.Invalid("org", "organization keys are letters, digits, '.', '_' or '-'")
	}
	if _, err := mail.ParseAddress(email); err != nil {
		return res, errs.Invalid("email", "must be an email address")
	}
	secret := tokens.RandomString(40)
	tokenID := tokens.RandomString(12)
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		org, err := tx.OrgByKey(ctx, orgKey)
		if errs.KindOf(err) == errs.KindNotFound {
			org, err = tx.CreateOrg(ctx, orgKey, orgName)
		}
		if err != nil {
			return err
		}
		u, err := tx.UserByEmail(ctx, email)
		if errs.KindOf(err) == errs.KindNotFound {
			u, err = tx.CreateUser(ctx, email, "Owner")
		}
		if err != nil {
			return err
		}
		if m, err := tx.Membership(ctx, org.ID, u.ID); err != nil || m.Role != domain.RoleOwner {
			if err := tx.PutMembership(ctx, org.ID, u.ID, domain.RoleOwner, nil); err != nil {
				return err
			}
		}
		res.Organization, res.Owner = org, u
		if !newToken {
			return nil
		}
		tk, err := tx.InsertAPIToken(ctx, domain.APIToken{OrgID: org.ID, TokenID: tokenID, Kind: "personal", Name: "bootstrap", UserID: u.ID},
			tokens.Hash(secret), u.ID)
		if err != nil {
			return err
		}
		system := audit.Caller{P: &access.Principal{OrgID: org.ID, Actor: domain.Actor{Type: "system", ID: "bootstrap", Name: "flagsvc bootstrap"}}}
		return tx.InsertAudit(ctx, org.ID, audit.Entry(system, "token.create", audit.Resource{Type: "token", ID: tk.ID, Key: tk.Name}, nil, tk, "bootstrap"))
	})
	if err == nil && newToken {
		res.Token = tokens.Format("personal", tokenID, secret)
	}
	return res, err
}
