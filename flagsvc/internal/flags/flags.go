// Package flags manages flags and their configuration per environment: definitions,
// targeting, toggles, the kill switch, versions with diffs, rollback, bulk operations. Every
// change validates with the SDKs' own rules (sdks/go/ruleset), checks references and cycles
// within the environment, writes an immutable version and an audit entry, and bumps the
// environment's ruleset — in one transaction.
package flags

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/wI2L/jsondiff"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Service manages flags.
type Service struct {
	store *store.Store
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st} }

// CreateInput creates a flag.
type CreateInput struct {
	Key         string              `json:"key"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Tags        []string            `json:"tags"`
	OwnerID     string              `json:"owner_id"`
	Kind        ruleset.FlagKind    `json:"kind"`
	Variations  []ruleset.Variation `json:"variations"`
	Temporary   *bool               `json:"temporary"`
	RemovalDate string              `json:"removal_date"`
	ClientSide  bool                `json:"client_side"`
	// Defaults pick the variations served in every environment when on (fallthrough) and off.
	Defaults *struct {
		OnVariation  string `json:"on_variation"`
		OffVariation string `json:"off_variation"`
	} `json:"defaults"`
}

// Detail is a flag with its configuration in every environment.
type Detail struct {
	domain.Flag
	Configs map[string]domain.FlagEnvironment `json:"configs"`
}

func loadProject(ctx context.Context, tx *store.Tx, c audit.Caller, key string, action access.Action) (domain.Project, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, key)
	if err != nil {
		return p, err
	}
	return p, c.P.Require(action, access.Target{ProjectID: p.ID})
}

func flagResource(f *domain.Flag) audit.Resource {
	return audit.Resource{Type: "flag", ID: f.ID, Key: f.Key, ProjectID: f.ProjectID}
}

// Create creates a flag and its default configuration in every environment of the project.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey string, in CreateInput) (Detail, error) {
	f := domain.Flag{Key: in.Key, Name: in.Name, Description: in.Description, Tags: in.Tags, OwnerID: in.OwnerID,
		Kind: in.Kind, Variations: in.Variations, Temporary: true, RemovalDate: in.RemovalDate,
		Lifecycle: domain.LifecycleActive, ClientSide: in.ClientSide}
	if f.Tags == nil {
		f.Tags = []string{}
	}
	if in.Temporary != nil {
		f.Temporary = *in.Temporary
	}
	if f.Name == "" {
		f.Name = f.Key
	}
	if err := domain.ValidateFlag(&f); err != nil {
		return Detail{}, err
	}
	cfg := domain.DefaultConfig(&f)
	if d := in.Defaults; d != nil {
		if d.OnVariation != "" {
			if f.Variation(d.OnVariation) == nil {
				return Detail{}, errs.Invalid("defaults.on_variation", "unknown variation %q", d.OnVariation)
			}
			cfg.Fallthrough = ruleset.Serve{Variation: d.OnVariation}
		}
		if d.OffVariation != "" {
			if f.Variation(d.OffVariation) == nil {
				return Detail{}, errs.Invalid("defaults.off_variation", "unknown variation %q", d.OffVariation)
			}
			cfg.OffVariation = d.OffVariation
		}
	}
	var out Detail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.WriteFlag)
		if err != nil {
			return err
		}
		if f.OwnerID != "" {
			if _, err := tx.Membership(ctx, c.P.OrgID, f.OwnerID); err != nil {
				return errs.Invalid("owner_id", "owner must be a member of the organization")
			}
		}
		f.ProjectID = p.ID
		created, err := tx.InsertFlag(ctx, f)
		if err != nil {
			return err
		}
		envs, err := tx.ListEnvironments(ctx, p.ID)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(envs))
		for _, e := range envs {
			if err := tx.InsertFlagConfig(ctx, created.ID, e.ID, cfg); err != nil {
				return err
			}
			if err := tx.InsertConfigVersion(ctx, created.ID, e.ID, domain.ConfigVersion{Version: 1, Config: cfg, Change: "create",
				Actor: c.P.Actor}); err != nil {
				return err
			}
			ids = append(ids, e.ID)
		}
		if err := tx.BumpRuleset(ctx, ids...); err != nil {
			return err
		}
		if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "flag.create", flagResource(&created), nil, created, "")); err != nil {
			return err
		}
		out, err = detail(ctx, tx, created)
		return err
	})
	return out, err
}

func detail(ctx context.Context, tx *store.Tx, f domain.Flag) (Detail, error) {
	configs, err := tx.FlagConfigs(ctx, f.ID)
	for k, fe := range configs {
		fe.FlagKey = f.Key
		configs[k] = fe
	}
	return Detail{Flag: f, Configs: configs}, err
}

// Get returns a flag with its configuration in every environment.
func (s *Service) Get(ctx context.Context, c audit.Caller, projectKey, flagKey string) (Detail, error) {
	var out Detail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		f, err := tx.FlagByKey(ctx, p.ID, flagKey, "")
		if err != nil {
			return err
		}
		out, err = detail(ctx, tx, f)
		return err
	})
	return out, err
}

// ListInput filters a flag list; EnvironmentKey with On filters by state there.
type ListInput struct {
	store.FlagFilter
	EnvironmentKey string
}

// List returns a page of a project's flags.
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey string, in ListInput) (store.FlagPage, error) {
	var out store.FlagPage
	err := s.store.Read(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		in.ProjectID = p.ID
		if in.EnvironmentKey != "" {
			e, err := tx.EnvironmentByKey(ctx, p.ID, in.EnvironmentKey)
			if err != nil {
				return errs.Invalid("environment", "environment %q not found", in.EnvironmentKey)
			}
			in.EnvironmentID = e.ID
		} else if in.On != nil {
			return errs.Invalid("on", "filtering by on/off needs an environment")
		}
		out, err = tx.ListFlags(ctx, in.FlagFilter)
		return err
	})
	return out, err
}

// UpdateInput edits a flag definition; nil fields are unchanged. Key and kind are immutable.
type UpdateInput struct {
	Name        *string              `json:"name"`
	Description *string              `json:"description"`
	Tags        *[]string            `json:"tags"`
	OwnerID     *string              `json:"owner_id"`
	Variations  *[]ruleset.Variation `json:"variations"`
	Temporary   *bool                `json:"temporary"`
	RemovalDate *string              `json:"removal_date"`
	Lifecycle   *domain.Lifecycle    `json:"lifecycle"`
	ClientSide  *bool                `json:"client_side"`
	// Version is the flag version the edit is based on; a newer one is a 409.
	Version *int64 `json:"version"`
	Comment string `json:"comment"`
}

// Update edits a flag definition. Variations in use by any environment's configuration, or by
// other flags' prerequisites, cannot be removed; a flag other flags depend on cannot be archived.
func (s *Service) Update(ctx context.Context, c audit.Caller, projectKey, flagKey string, in UpdateInput) (Detail, error) {
	var out Detail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.WriteFlag)
		if err != nil {
			return err
		}
		before, err := tx.FlagByKey(ctx, p.ID, flagKey, "update")
		if err != nil {
			return err
		}
		if in.Version != nil && *in.Version != before.Version {
			return errs.Conflict("version", "flag %q was changed since version %d (now %d); reload and retry", flagKey, *in.Version, before.Version)
		}
		f := before
		apply(&f, in)
		if err := domain.ValidateFlag(&f); err != nil {
			return err
		}
		if f.OwnerID != "" && f.OwnerID != before.OwnerID {
			if _, err := tx.Membership(ctx, c.P.OrgID, f.OwnerID); err != nil {
				return errs.Invalid("owner_id", "owner must be a member of the organization")
			}
		}
		if err := s.checkDependents(ctx, tx, p.ID, &before, &f, nil); err != nil {
			return err
		}
		updated, err := tx.UpdateFlag(ctx, f)
		if err != nil {
			return err
		}
		if affectsRulesets(&before, &updated) {
			ids, err := tx.EnvironmentIDsOfProject(ctx, p.ID)
			if err != nil {
				return err
			}
			if err := tx.BumpRuleset(ctx, ids...); err != nil {
				return err
			}
		}
		action := "flag.update"
		if before.Lifecycle != updated.Lifecycle && updated.Lifecycle == domain.LifecycleArchived {
			action = "flag.archive"
			if err := endArchivedGuardrails(ctx, tx, c, &updated, action); err != nil {
				return err
			}
		}
		if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, action, flagResource(&updated), before, updated, in.Comment)); err != nil {
			return err
		}
		out, err = detail(ctx, tx, updated)
		return err
	})
	return out, err
}

func apply(f *domain.Flag, in UpdateInput) {
	if in.Name != nil {
		f.Name = *in.Name
	}
	if in.Description != nil {
		f.Description = *in.Description
	}
	if in.Tags != nil {
		f.Tags = *in.Tags
	}
	if in.OwnerID != nil {
		f.OwnerID = *in.OwnerID
	}
	if in.Variations != nil {
		f.Variations = *in.Variations
	}
	if in.Temporary != nil {
		f.Temporary = *in.Temporary
		if !f.Temporary && in.RemovalDate == nil {
			f.RemovalDate = ""
		}
	}
	if in.RemovalDate != nil {
		f.RemovalDate = *in.RemovalDate
	}
	if in.Lifecycle != nil {
		f.Lifecycle = *in.Lifecycle
	}
	if in.ClientSide != nil {
		f.ClientSide = *in.ClientSide
	}
}

func affectsRulesets(a, b *domain.Flag) bool {
	va, _ := json.Marshal(a.Variations)
	vb, _ := json.Marshal(b.Variations)
	wasLive, isLive := a.Lifecycle != domain.LifecycleArchived, b.Lifecycle != domain.LifecycleArchived
	return string(va) != string(vb) || wasLive != isLive || a.ClientSide != b.ClientSide
}

// checkDependents refuses edits that would break configurations: removed variations still
// served or required somewhere, or archiving a flag that live flags require. Flags in leaving
// (by key) are archived or deleted by the same call, so their requirements do not count.
func (s *Service) checkDependents(ctx context.Context, tx *store.Tx, projectID string, before, after *domain.Flag, leaving map[string]bool) error {
	removed := map[string]bool{}
	for _, v := range before.Variations {
		if after.Variation(v.Key) == nil {
			removed[v.Key] = true
		}
	}
	archiving := before.Lifecycle != domain.LifecycleArchived && after.Lifecycle == domain.LifecycleArchived
	if len(removed) == 0 && !archiving {
		return nil
	}
	if archiving {
		if err := checkExperiments(ctx, tx, projectID, after.ID); err != nil {
			return err
		}
	}
	envs, err := tx.ListEnvironments(ctx, projectID)
	if err != nil {
		return err
	}
	for _, e := range envs {
		flags, configs, _, err := tx.EnvironmentFlags(ctx, e.ID)
		if err != nil {
			return err
		}
		for i := range flags {
			if flags[i].ID == after.ID {
				if len(removed) > 0 {
					if err := domain.ValidateConfig(after, &configs[i]); err != nil {
						var fe *errs.Error
						msg := err.Error()
						if errAs(err, &fe) {
							msg = fe.Field + ": " + fe.Message
						}
						return errs.Invalid("variations", "a removed variation is still used in %s (%s)", e.Key, msg)
					}
				}
				continue
			}
			if flags[i].Lifecycle == domain.LifecycleArchived || leaving[flags[i].Key] {
				continue
			}
			for _, pr := range configs[i].Prerequisites {
				if pr.Flag != after.Key {
					continue
				}
				if archiving {
					return errs.Conflict("lifecycle", "flag %q requires this flag in %s; remove the prerequisite first", flags[i].Key, e.Key)
				}
				if removed[pr.Variation] {
					return errs.Invalid("variations", "flag %q requires variation %q of this flag in %s", flags[i].Key, pr.Variation, e.Key)
				}
			}
		}
	}
	return nil
}

// checkExperiments refuses to archive or delete a flag while one of its experiments is running
// or stopped: the flag serves the experiment's split until the experiment is concluded (which
// ships a variation or rolls back through the flag), and deleting the flag would delete the
// experiment and its guardrails with it.
func checkExperiments(ctx context.Context, tx *store.Tx, projectID, flagID string) error {
	xs, err := tx.ListExperiments(ctx, store.ExperimentFilter{ProjectID: projectID, FlagID: flagID})
	if err != nil {
		return err
	}
	for _, x := range xs {
		switch x.Status {
		case domain.ExperimentRunning:
			return errs.Conflict("lifecycle", "experiment %q is running on this flag in %s; stop and conclude it first", x.Key, x.Environment)
		case domain.ExperimentStopped:
			return errs.Conflict("lifecycle", "experiment %q on this flag in %s is stopped but not concluded; conclude it first", x.Key, x.Environment)
		}
	}
	return nil
}

// Delete deletes a flag for good (project admins); flags other flags require cannot be deleted.
// version (If-Match) is the flag version the deletion is based on; a newer one is a 409, nil
// skips the check.
func (s *Service) Delete(ctx context.Context, c audit.Caller, projectKey, flagKey string, version *int64) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.DeleteFlag)
		if err != nil {
			return err
		}
		return s.deleteOne(ctx, tx, c, p.ID, flagKey, version, nil)
	})
}

func (s *Service) deleteOne(ctx context.Context, tx *store.Tx, c audit.Caller, projectID, flagKey string, version *int64, leaving map[string]bool) error {
	f, err := tx.FlagByKey(ctx, projectID, flagKey, "update")
	if err != nil {
		return err
	}
	if version != nil && *version != f.Version {
		return errs.Conflict("version", "flag %q was changed since version %d (now %d); reload and retry", flagKey, *version, f.Version)
	}
	archived := f
	archived.Lifecycle = domain.LifecycleArchived
	if f.Lifecycle != domain.LifecycleArchived {
		if err := s.checkDependents(ctx, tx, projectID, &f, &archived, leaving); err != nil {
			return err
		}
	} else if err := checkExperiments(ctx, tx, projectID, f.ID); err != nil {
		return err
	}
	ids, err := tx.EnvironmentIDsOfProject(ctx, projectID)
	if err != nil {
		return err
	}
	if err := tx.DeleteFlag(ctx, f.ID); err != nil {
		return err
	}
	if err := tx.BumpRuleset(ctx, ids...); err != nil {
		return err
	}
	return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "flag.delete", flagResource(&f), f, nil, ""))
}

// BulkInput applies one operation to many flags in one transaction: all or nothing.
type BulkInput struct {
	Action string   `json:"action"` // archive | unarchive | tag | untag | delete
	Keys   []string `json:"keys"`
	Tags   []string `json:"tags"`
}

// BulkResult reports what a bulk operation changed.
type BulkResult struct {
	Action  string   `json:"action"`
	Updated []string `json:"updated"`
}

// MaxBulk is the most flags one bulk call may touch.
const MaxBulk = 1000

// Bulk archives, unarchives, tags, untags or deletes many flags atomically.
func (s *Service) Bulk(ctx context.Context, c audit.Caller, projectKey string, in BulkInput) (BulkResult, error) {
	res := BulkResult{Action: in.Action, Updated: []string{}}
	if len(in.Keys) == 0 {
		return res, errs.Invalid("keys", "at least one flag key is required")
	}
	if len(in.Keys) > MaxBulk {
		return res, errs.Invalid("keys", "at most %d flags per call", MaxBulk)
	}
	switch in.Action {
	case "archive", "unarchive", "delete":
		if len(in.Tags) > 0 {
			return res, errs.Invalid("tags", "tags apply only to tag and untag")
		}
	case "tag", "untag":
		if len(in.Tags) == 0 {
			return res, errs.Invalid("tags", "at least one tag is required")
		}
	default:
		return res, errs.Invalid("action", "must be archive, unarchive, tag, untag or delete")
	}
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		action := access.WriteFlag
		if in.Action == "delete" {
			action = access.DeleteFlag
		}
		p, err := loadProject(ctx, tx, c, projectKey, action)
		if err != nil {
			return err
		}
		// Flags archived or deleted together may require each other, in any order of keys.
		var leaving map[string]bool
		if in.Action == "archive" || in.Action == "delete" {
			leaving = make(map[string]bool, len(in.Keys))
			for _, key := range in.Keys {
				leaving[key] = true
			}
		}
		seen := map[string]bool{}
		for i, key := range in.Keys {
			if seen[key] {
				return errs.Invalid(fmt.Sprintf("keys[%d]", i), "duplicate key %q", key)
			}
			seen[key] = true
			if in.Action == "delete" {
				if err := s.deleteOne(ctx, tx, c, p.ID, key, nil, leaving); err != nil {
					return bulkErr(i, key, err)
				}
				res.Updated = append(res.Updated, key)
				continue
			}
			before, err := tx.FlagByKey(ctx, p.ID, key, "update")
			if err != nil {
				return bulkErr(i, key, err)
			}
			f := before
			switch in.Action {
			case "archive":
				f.Lifecycle = domain.LifecycleArchived
			case "unarchive":
				f.Lifecycle = domain.LifecycleActive
			case "tag":
				for _, t := range in.Tags {
					if !slices.Contains(f.Tags, t) {
						f.Tags = append(f.Tags, t)
					}
				}
			case "untag":
				f.Tags = slices.DeleteFunc(slices.Clone(f.Tags), func(t string) bool { return slices.Contains(in.Tags, t) })
			}
			if err := domain.ValidateFlag(&f); err != nil {
				return bulkErr(i, key, err)
			}
			if err := s.checkDependents(ctx, tx, p.ID, &before, &f, leaving); err != nil {
				return bulkErr(i, key, err)
			}
			updated, err := tx.UpdateFlag(ctx, f)
			if err != nil {
				return err
			}
			if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "flag.bulk_"+in.Action, flagResource(&updated), before, updated, "")); err != nil {
				return err
			}
			if in.Action == "archive" {
				if err := endArchivedGuardrails(ctx, tx, c, &updated, "flag.bulk_archive"); err != nil {
					return err
				}
			}
			res.Updated = append(res.Updated, key)
		}
		if in.Action == "archive" || in.Action == "unarchive" {
			ids, err := tx.EnvironmentIDsOfProject(ctx, p.ID)
			if err != nil {
				return err
			}
			return tx.BumpRuleset(ctx, ids...)
		}
		return nil
	})
	return res, err
}

func bulkErr(i int, key string, err error) error {
	var e *errs.Error
	if errAs(err, &e) {
		field := fmt.Sprintf("keys[%d]", i)
		return &errs.Error{Kind: e.Kind, Field: field, Message: fmt.Sprintf("flag %q: %s", key, strings.TrimPrefix(e.Message, ""))}
	}
	return err
}

// diff is the RFC 6902 patch from one configuration to the next.
func diff(before, after *domain.FlagConfig) json.RawMessage {
	patch, err := jsondiff.CompareJSON(domain.ConfigJSON(before), domain.ConfigJSON(after))
	if err != nil {
		return json.RawMessage("[]")
	}
	b, err := json.Marshal(patch)
	if err != nil || string(b) == "null" {
		return json.RawMessage("[]")
	}
	return b
}
