// Package environments manages projects and their environments: creation with the default
// development/staging/production trio, the critical mark, locks, cloning (every flag
// configuration and segment copied in one transaction) and deletion.
package environments

import (
	"context"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// Service manages projects and environments.
type Service struct {
	store *store.Store
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st} }

// ProjectInput creates or edits a project.
type ProjectInput struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ProjectPatch edits a project: what it leaves out keeps its value.
type ProjectPatch struct {
	Key         string  `json:"key"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// ProjectDetail is a project with its environments.
type ProjectDetail struct {
	domain.Project
	Environments []domain.Environment `json:"environments"`
}

// CreateProject creates a project with the default environments.
func (s *Service) CreateProject(ctx context.Context, c audit.Caller, in ProjectInput) (ProjectDetail, error) {
	p := domain.Project{OrgID: c.P.OrgID, Key: in.Key, Name: in.Name, Description: in.Description}
	if err := domain.ValidateProject(&p); err != nil {
		return ProjectDetail{}, err
	}
	var out ProjectDetail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ManageOrg, access.Target{Resource: "projects"}); err != nil {
			return err
		}
		created, err := tx.InsertProject(ctx, p)
		if err != nil {
			return err
		}
		out.Project = created
		for _, e := range domain.DefaultEnvironments {
			e.ProjectID = created.ID
			env, err := tx.InsertEnvironment(ctx, e)
			if err != nil {
				return err
			}
			if err := tx.BumpRuleset(ctx, env.ID); err != nil {
				return err
			}
			out.Environments = append(out.Environments, env)
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "project.create",
			audit.Resource{Type: "project", ID: created.ID, Key: created.Key, ProjectID: created.ID}, nil, out, ""))
	})
	return out, err
}

// project loads a project by key and checks the caller may perform action on it.
func project(ctx context.Context, tx *store.Tx, c audit.Caller, key string, action access.Action, resource string) (domain.Project, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, key)
	if err != nil {
		return p, err
	}
	return p, c.P.Require(action, access.Target{ProjectID: p.ID, Resource: resource})
}

// ListProjects lists the projects the caller can see.
func (s *Service) ListProjects(ctx context.Context, c audit.Caller) ([]ProjectDetail, error) {
	var out []ProjectDetail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ReadOrg, access.Target{}); err != nil {
			return err
		}
		ps, err := tx.ListProjects(ctx, c.P.OrgID)
		if err != nil {
			return err
		}
		out = []ProjectDetail{}
		for _, p := range ps {
			if c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}) != nil {
				continue
			}
			envs, err := tx.ListEnvironments(ctx, p.ID)
			if err != nil {
				return err
			}
			out = append(out, ProjectDetail{Project: p, Environments: envs})
		}
		return nil
	})
	return out, err
}

// GetProject returns a project with its environments.
func (s *Service) GetProject(ctx context.Context, c audit.Caller, key string) (ProjectDetail, error) {
	var out ProjectDetail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, key, access.ReadProject, "")
		if err != nil {
			return err
		}
		envs, err := tx.ListEnvironments(ctx, p.ID)
		out = ProjectDetail{Project: p, Environments: envs}
		return err
	})
	return out, err
}

// UpdateProject edits a project's name and description.
func (s *Service) UpdateProject(ctx context.Context, c audit.Caller, key string, in ProjectPatch) (domain.Project, error) {
	var out domain.Project
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, key, access.ManageProject, "")
		if err != nil {
			return err
		}
		if in.Key != "" && in.Key != p.Key {
			return errs.Invalid("key", "project keys cannot change")
		}
		next := p
		if in.Name != nil {
			next.Name = *in.Name
		}
		if in.Description != nil {
			next.Description = *in.Description
		}
		if err := domain.ValidateProject(&next); err != nil {
			return err
		}
		if out, err = tx.UpdateProject(ctx, next); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "project.update",
			audit.Resource{Type: "project", ID: p.ID, Key: p.Key, ProjectID: p.ID}, p, out, ""))
	})
	return out, err
}

// DeleteProject deletes a project with everything in it; relays are told to forget its
// environments.
func (s *Service) DeleteProject(ctx context.Context, c audit.Caller, key string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, key, access.ManageOrg, "projects")
		if err != nil {
			return err
		}
		envs, err := tx.ListEnvironments(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, e := range envs {
			if err := tx.BumpRuleset(ctx, e.ID); err != nil {
				return err
			}
		}
		if err := tx.DeleteProject(ctx, p.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "project.delete",
			audit.Resource{Type: "project", ID: p.ID, Key: p.Key}, p, nil, ""))
	})
}

// EnvironmentInput creates, edits or clones an environment. Nil fields are left as they are
// when editing.
type EnvironmentInput struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	Color    string `json:"color"`
	Critical *bool  `json:"critical"`
	Position *int   `json:"position"`
}

// LockInput locks or unlocks an environment.
type LockInput struct {
	Locked bool   `json:"locked"`
	Reason string `json:"reason"`
}

func (in EnvironmentInput) apply(e *domain.Environment) {
	if in.Name != "" {
		e.Name = in.Name
	}
	if in.Color != "" {
		e.Color = in.Color
	}
	if in.Critical != nil {
		e.Critical = *in.Critical
	}
	if in.Position != nil {
		e.Position = *in.Position
	}
}

// ListEnvironments lists a project's environments.
func (s *Service) ListEnvironments(ctx context.Context, c audit.Caller, projectKey string) ([]domain.Environment, error) {
	d, err := s.GetProject(ctx, c, projectKey)
	return d.Environments, err
}

// GetEnvironment returns one environment.
func (s *Service) GetEnvironment(ctx context.Context, c audit.Caller, projectKey, envKey string) (domain.Environment, error) {
	var out domain.Environment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ReadProject, "")
		if err != nil {
			return err
		}
		out, err = tx.EnvironmentByKey(ctx, p.ID, envKey)
		return err
	})
	return out, err
}

// CreateEnvironment adds an environment; every flag of the project gets its default
// configuration there.
func (s *Service) CreateEnvironment(ctx context.Context, c audit.Caller, projectKey string, in EnvironmentInput) (domain.Environment, error) {
	return s.create(ctx, c, projectKey, "", in)
}

// CloneEnvironment creates an environment with a copy of every flag configuration and segment
// of another, in one transaction.
func (s *Service) CloneEnvironment(ctx context.Context, c audit.Caller, projectKey, sourceKey string, in EnvironmentInput) (domain.Environment, error) {
	return s.create(ctx, c, projectKey, sourceKey, in)
}

func (s *Service) create(ctx context.Context, c audit.Caller, projectKey, sourceKey string, in EnvironmentInput) (domain.Environment, error) {
	var out domain.Environment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ManageProject, "environments")
		if err != nil {
			return err
		}
		e := domain.Environment{ProjectID: p.ID, Key: in.Key, Name: in.Name, Color: "#888888"}
		var source domain.Environment
		if sourceKey != "" {
			if source, err = tx.EnvironmentByKey(ctx, p.ID, sourceKey); err != nil {
				return err
			}
			e.Color, e.Critical = source.Color, source.Critical
		}
		in.apply(&e)
		if err := domain.ValidateEnvironment(&e); err != nil {
			return err
		}
		if out, err = tx.InsertEnvironment(ctx, e); err != nil {
			return err
		}
		actor := c.P.Actor
		flags, configs, _, err := func() ([]domain.Flag, []domain.FlagConfig, []int64, error) {
			if sourceKey != "" {
				return tx.EnvironmentFlags(ctx, source.ID)
			}
			return tx.ProjectFlagsWithDefaults(ctx, p.ID)
		}()
		if err != nil {
			return err
		}
		change := "create"
		if sourceKey != "" {
			change = "clone"
			if err := tx.CopySegments(ctx, source.ID, out.ID); err != nil {
				return err
			}
		}
		for i := range flags {
			configs[i].DropExperimentKeys()
			if err := tx.InsertFlagConfig(ctx, flags[i].ID, out.ID, configs[i]); err != nil {
				return err
			}
			if err := tx.InsertConfigVersion(ctx, flags[i].ID, out.ID, domain.ConfigVersion{Version: 1, Config: configs[i],
				Change: change, Comment: "environment " + change, Actor: actor}); err != nil {
				return err
			}
		}
		if err := tx.BumpRuleset(ctx, out.ID); err != nil {
			return err
		}
		if out, err = tx.EnvironmentByID(ctx, out.ID); err != nil {
			return err
		}
		action, comment := "environment.create", ""
		if sourceKey != "" {
			action, comment = "environment.clone", "cloned from "+sourceKey
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, action,
			audit.Resource{Type: "environment", ID: out.ID, Key: out.Key, ProjectID: p.ID, EnvironmentID: out.ID}, nil, out, comment))
	})
	return out, err
}

// UpdateEnvironment edits an environment's name, color, critical mark or position.
func (s *Service) UpdateEnvironment(ctx context.Context, c audit.Caller, projectKey, envKey string, in EnvironmentInput) (domain.Environment, error) {
	return s.edit(ctx, c, projectKey, envKey, "environment.update", func(e *domain.Environment) error {
		if in.Key != "" && in.Key != e.Key {
			return errs.Invalid("key", "environment keys cannot change")
		}
		in.apply(e)
		return domain.ValidateEnvironment(e)
	})
}

// SetLock locks (with a reason) or unlocks an environment.
func (s *Service) SetLock(ctx context.Context, c audit.Caller, projectKey, envKey string, in LockInput) (domain.Environment, error) {
	action := "environment.unlock"
	if in.Locked {
		action = "environment.lock"
	}
	return s.edit(ctx, c, projectKey, envKey, action, func(e *domain.Environment) error {
		e.Locked, e.LockReason = in.Locked, in.Reason
		if !in.Locked {
			e.LockReason = ""
		}
		return nil
	})
}

func (s *Service) edit(ctx context.Context, c audit.Caller, projectKey, envKey, action string, fn func(*domain.Environment) error) (domain.Environment, error) {
	var out domain.Environment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ManageProject, "environments")
		if err != nil {
			return err
		}
		e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
		if err != nil {
			return err
		}
		if e, err = tx.LockEnvironmentRow(ctx, e.ID); err != nil {
			return err
		}
		next := e
		if err := fn(&next); err != nil {
			return err
		}
		if out, err = tx.UpdateEnvironment(ctx, next); err != nil {
			return err
		}
		if next.Name != e.Name {
			if err := tx.BumpRuleset(ctx, e.ID); err != nil {
				return err
			}
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, action,
			audit.Resource{Type: "environment", ID: e.ID, Key: e.Key, ProjectID: p.ID, EnvironmentID: e.ID}, e, out, next.LockReason))
	})
	return out, err
}

// DeleteEnvironment deletes an environment; relays are told to forget it.
func (s *Service) DeleteEnvironment(ctx context.Context, c audit.Caller, projectKey, envKey string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ManageProject, "environments")
		if err != nil {
			return err
		}
		e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
		if err != nil {
			return err
		}
		if e.Locked {
			return errs.PreconditionFailed("environment", "environment %q is locked: %s", e.Key, e.LockReason)
		}
		if err := tx.BumpRuleset(ctx, e.ID); err != nil {
			return err
		}
		if err := tx.DeleteEnvironment(ctx, e.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "environment.delete",
			audit.Resource{Type: "environment", ID: e.ID, Key: e.Key, ProjectID: p.ID}, e, nil, ""))
	})
}
