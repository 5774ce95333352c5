package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func errAs(err error, target any) bool { return errors.As(err, target) }

// Changes recorded in history (and, prefixed with "flag_config.", as audit actions).
const (
	ChangeUpdate    = "update"
	ChangeToggle    = "toggle"
	ChangeKill      = "kill"
	ChangeRollback  = "rollback"
	ChangeScheduled = "scheduled"
	// ChangeAutoRollback is a guardrail's automatic rollback.
	ChangeAutoRollback = "auto_rollback"
	// ChangeExperiment is an experiment starting or concluding.
	ChangeExperiment = "experiment"
)

// ConfigChange is one change of a flag's configuration in an environment.
type ConfigChange struct {
	// Version is the configuration version the change is based on (If-Match); nil skips the check.
	Version *int64
	Comment string
	// Change names the kind of change for history and the audit log.
	Change string
	// Edit turns the current configuration into the new one (tx reads history if needed).
	Edit func(ctx context.Context, tx *store.Tx, cfg *domain.FlagConfig, f *domain.Flag, envID string) error
}

// GetConfig returns a flag's configuration in one environment.
func (s *Service) GetConfig(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string) (domain.FlagEnvironment, error) {
	var out domain.FlagEnvironment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		f, err := tx.FlagByKey(ctx, p.ID, flagKey, "")
		if err != nil {
			return err
		}
		e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
		if err != nil {
			return err
		}
		cfg, v, at, err := tx.FlagConfig(ctx, f.ID, e.ID, false)
		out = domain.FlagEnvironment{FlagKey: f.Key, EnvironmentKey: e.Key, Version: v, UpdatedAt: at, FlagConfig: cfg}
		return err
	})
	return out, err
}

// ChangeConfig applies a change to a flag's configuration in an environment: permission
// (critical environments need project admins), the environment lock, optimistic concurrency,
// validation, a new immutable version with its diff, the audit entry, and the ruleset bump —
// and it disables the plain guardrails whose rollout the change removed (endOrphanedGuardrails).
// A change that alters nothing creates no version.
func (s *Service) ChangeConfig(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string, ch ConfigChange) (domain.FlagEnvironment, error) {
	if c.Origin == "scheduled" && ch.Change != ChangeKill {
		ch.Change = ChangeScheduled
	}
	var out domain.FlagEnvironment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = ChangeConfigTx(ctx, tx, c, projectKey, flagKey, envKey, ch)
		return err
	})
	return out, err
}

// ChangeConfigTx is ChangeConfig inside the caller's transaction (experiments and guardrails
// change a flag together with their own rows).
func ChangeConfigTx(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, flagKey, envKey string, ch ConfigChange) (domain.FlagEnvironment, error) {
	t, err := lockTarget(ctx, tx, c, projectKey, flagKey, envKey)
	if err != nil {
		return domain.FlagEnvironment{}, err
	}
	p, f, e, before, version := t.Project, t.Flag, t.Env, t.Config, t.Version
	if e.Locked {
		return domain.FlagEnvironment{}, errs.PreconditionFailed("environment", "environment %q is locked: %s", e.Key, e.LockReason)
	}
	if f.Lifecycle == domain.LifecycleArchived && ch.Change != ChangeKill {
		return domain.FlagEnvironment{}, errs.PreconditionFailed("lifecycle", "flag %q is archived; unarchive it to change its configuration", f.Key)
	}
	if ch.Version != nil && *ch.Version != version {
		return domain.FlagEnvironment{}, errs.Conflict("version", "the configuration of %q in %s was changed since version %d (now %d); reload and retry",
			f.Key, e.Key, *ch.Version, version)
	}
	next := clone(before)
	if err := ch.Edit(ctx, tx, &next, &f, e.ID); err != nil {
		return domain.FlagEnvironment{}, err
	}
	if guardsExperimentRollouts(ch.Change) {
		// Before Normalize gives id-less rules new ids.
		if err := matchExperimentRules(&before, &next); err != nil {
			return domain.FlagEnvironment{}, err
		}
	}
	next.Normalize()
	if err := domain.ValidateConfig(&f, &next); err != nil {
		return domain.FlagEnvironment{}, err
	}
	if guardsExperimentRollouts(ch.Change) {
		if err := checkExperimentRollouts(ctx, tx, p.ID, e.ID, f.ID, &before, &next); err != nil {
			return domain.FlagEnvironment{}, err
		}
	}
	if addsReferences(&before, &next) {
		// The checks below read other flags and segments: two changes each adding an edge
		// (a -> b, b -> a), or one adding a reference to a segment another deletes, would both
		// pass on the state before the other. Such changes take the environment exclusively
		// (the row this transaction shares: two upgrading at once deadlock, and InTx retries).
		if _, err := tx.LockEnvironmentRow(ctx, e.ID); err != nil {
			return domain.FlagEnvironment{}, err
		}
	}
	if err := checkReferences(ctx, tx, p.ID, e.ID, &f, &before, &next); err != nil {
		return domain.FlagEnvironment{}, err
	}
	out := domain.FlagEnvironment{FlagKey: f.Key, EnvironmentKey: e.Key, Version: version, UpdatedAt: t.UpdatedAt, FlagConfig: before}
	if reflect.DeepEqual(domain.ConfigJSON(&before), domain.ConfigJSON(&next)) {
		return out, nil
	}
	res := audit.Resource{Type: "flag_config", ID: f.ID, Key: f.Key, ProjectID: p.ID, EnvironmentID: e.ID}
	at, err := tx.SaveConfigChange(ctx, c.P.OrgID, f.ID, e.ID, version,
		domain.ConfigVersion{Version: version + 1, Config: next, Change: ch.Change, Comment: ch.Comment, Diff: diff(&before, &next), Actor: c.P.Actor},
		audit.Entry(c, "flag_config."+ch.Change, res, before, next, ch.Comment))
	if err != nil {
		return domain.FlagEnvironment{}, err
	}
	if err := endOrphanedGuardrails(ctx, tx, c, p, &f, e, ch.Change, version+1, &next); err != nil {
		return domain.FlagEnvironment{}, err
	}
	out.Version, out.FlagConfig, out.UpdatedAt = version+1, next, at
	return out, nil
}

// lockTarget reads and locks what a configuration change works on (one round trip when all of
// it exists) and checks the caller may change it: reading the project, then writing the
// environment (critical environments need project admins).
func lockTarget(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, flagKey, envKey string) (store.ConfigTarget, error) {
	t, found, err := tx.LockConfigTarget(ctx, c.P.OrgID, projectKey, flagKey, envKey)
	if err != nil {
		return t, err
	}
	if !found {
		// Something is missing: look it up step by step so the error names what, and only
		// after the caller was shown to be allowed to know.
		if t.Project, err = tx.ProjectByKey(ctx, c.P.OrgID, projectKey); err != nil {
			return t, err
		}
		if err := c.P.Require(access.ReadProject, access.Target{ProjectID: t.Project.ID}); err != nil {
			return t, err
		}
		if t.Flag, err = tx.FlagByKey(ctx, t.Project.ID, flagKey, ""); err != nil {
			return t, err
		}
		if t.Env, err = tx.EnvironmentByKey(ctx, t.Project.ID, envKey); err != nil {
			return t, err
		}
		_, _, _, err = tx.FlagConfig(ctx, t.Flag.ID, t.Env.ID, false)
		if err == nil {
			// Created between the two reads: the caller retries.
			err = errs.Conflict("", "the flag or environment changed concurrently; retry")
		}
		return t, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: t.Project.ID}); err != nil {
		return t, err
	}
	return t, c.P.Require(access.WriteEnvironment, access.Target{ProjectID: t.Project.ID, EnvironmentID: t.Env.ID, Critical: t.Env.Critical})
}

func clone(c domain.FlagConfig) domain.FlagConfig {
	var out domain.FlagConfig
	// A JSON round trip is the simplest deep copy of the nested rule structures.
	if err := jsonRoundTrip(domain.ConfigJSON(&c), &out); err != nil {
		panic(err)
	}
	return out
}

// checkReferences validates a configuration against its environment: prerequisites name live
// flags and existing variations without forming a cycle; segment_match names existing segments.
// A prerequisite the current configuration (before) already has is not judged again: its flag
// may have been archived or deleted since (possible while this flag was archived), which SDKs
// treat as a prerequisite not met, and refusing it would block every other change — the kill
// switch included.
func checkReferences(ctx context.Context, tx *store.Tx, projectID, envID string, f *domain.Flag, before, cfg *domain.FlagConfig) error {
	var segmentRefs []string
	var segmentPaths []string
	for i, r := range cfg.Rules {
		for j, cl := range r.Clauses {
			if cl.Op != ruleset.OpSegmentMatch {
				continue
			}
			for k, v := range cl.Values {
				if s, ok := v.(string); ok {
					segmentRefs = append(segmentRefs, s)
					segmentPaths = append(segmentPaths, fmt.Sprintf("rules[%d].clauses[%d].values[%d]", i, j, k))
				}
			}
		}
	}
	if len(segmentRefs) > 0 {
		segs, err := tx.ListSegments(ctx, envID)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, s := range segs {
			have[s.Key] = true
		}
		for i, ref := range segmentRefs {
			if !have[ref] {
				return errs.Invalid(segmentPaths[i], "unknown segment %q in this environment", ref)
			}
		}
	}
	if len(cfg.Prerequisites) == 0 {
		return nil
	}
	// The flags newly required are read locked (FOR SHARE): archiving or deleting one locks it
	// for update, so either that waits for this change to commit and then sees the new
	// prerequisite, or this change waits for it and sees the flag archived or gone. Read without
	// a lock, both could pass their checks and leave this flag requiring a flag that is not live.
	var added []string
	for _, pr := range cfg.Prerequisites {
		if !slices.Contains(before.Prerequisites, pr) {
			added = append(added, pr.Flag)
		}
	}
	required, err := tx.ShareFlags(ctx, projectID, added)
	if err != nil {
		return err
	}
	flags, configs, _, err := tx.EnvironmentFlags(ctx, envID)
	if err != nil {
		return err
	}
	edges := map[string][]string{}
	for i := range flags {
		if flags[i].ID == f.ID || flags[i].Lifecycle == domain.LifecycleArchived {
			continue
		}
		for _, pr := range configs[i].Prerequisites {
			edges[flags[i].Key] = append(edges[flags[i].Key], pr.Flag)
		}
	}
	for i, pr := range cfg.Prerequisites {
		edges[f.Key] = append(edges[f.Key], pr.Flag)
		if slices.Contains(before.Prerequisites, pr) {
			continue
		}
		path := fmt.Sprintf("prerequisites[%d]", i)
		req, ok := required[pr.Flag]
		if !ok {
			return errs.Invalid(path+".flag", "unknown flag %q", pr.Flag)
		}
		if req.Lifecycle == domain.LifecycleArchived {
			return errs.Invalid(path+".flag", "flag %q is archived", pr.Flag)
		}
		if req.Variation(pr.Variation) == nil {
			return errs.Invalid(path+".variation", "flag %q has no variation %q", pr.Flag, pr.Variation)
		}
	}
	if cycle := ruleset.FindCycle(edges); cycle != nil {
		return errs.Invalid("prerequisites", "prerequisites would form a cycle: %v", cycle)
	}
	return nil
}

// addsReferences reports whether next has a prerequisite or a segment_match reference that
// before does not.
func addsReferences(before, next *domain.FlagConfig) bool {
	for _, pr := range next.Prerequisites {
		if !slices.Contains(before.Prerequisites, pr) {
			return true
		}
	}
	have := map[string]bool{}
	for _, r := range before.Rules {
		for _, cl := range r.Clauses {
			if cl.Op == ruleset.OpSegmentMatch {
				for _, v := range cl.Values {
					if k, ok := v.(string); ok {
						have[k] = true
					}
				}
			}
		}
	}
	for _, r := range next.Rules {
		for _, cl := range r.Clauses {
			if cl.Op == ruleset.OpSegmentMatch {
				for _, v := range cl.Values {
					if k, ok := v.(string); ok && !have[k] {
						return true
					}
				}
			}
		}
	}
	return false
}

// UpdateConfig replaces the whole configuration.
func (s *Service) UpdateConfig(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string, cfg domain.FlagConfig, version *int64, comment string) (domain.FlagEnvironment, error) {
	return s.ChangeConfig(ctx, c, projectKey, flagKey, envKey, ConfigChange{Version: version, Comment: comment, Change: ChangeUpdate,
		Edit: func(_ context.Context, _ *store.Tx, cur *domain.FlagConfig, _ *domain.Flag, _ string) error {
			*cur = cfg
			return nil
		}})
}

// Toggle turns a flag on or off in an environment.
func (s *Service) Toggle(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string, on bool, version *int64, comment string) (domain.FlagEnvironment, error) {
	return s.ChangeConfig(ctx, c, projectKey, flagKey, envKey, ConfigChange{Version: version, Comment: comment, Change: ChangeToggle,
		Edit: func(_ context.Context, _ *store.Tx, cur *domain.FlagConfig, _ *domain.Flag, _ string) error {
			cur.On = on
			return nil
		}})
}

// Kill turns a flag off in an environment at once, with a reason — the path automatic
// guardrail rollbacks take too. It skips the version check: stopping harm wins over conflicts.
func (s *Service) Kill(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey, reason string) (domain.FlagEnvironment, error) {
	if reason == "" {
		return domain.FlagEnvironment{}, errs.Invalid("reason", "say why the flag is being killed")
	}
	return s.ChangeConfig(ctx, c, projectKey, flagKey, envKey, ConfigChange{Comment: reason, Change: ChangeKill,
		Edit: func(_ context.Context, _ *store.Tx, cur *domain.FlagConfig, _ *domain.Flag, _ string) error {
			cur.On = false
			return nil
		}})
}

// Rollback makes an earlier version's configuration current again, as a new version. The old
// configuration is validated against today's variations, flags and segments.
func (s *Service) Rollback(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string, to int64, version *int64, comment string) (domain.FlagEnvironment, error) {
	if to < 1 {
		return domain.FlagEnvironment{}, errs.Invalid("to_version", "must be a version number")
	}
	if comment == "" {
		comment = fmt.Sprintf("rollback to version %d", to)
	} else {
		comment = fmt.Sprintf("rollback to version %d: %s", to, comment)
	}
	return s.ChangeConfig(ctx, c, projectKey, flagKey, envKey, ConfigChange{Version: version, Comment: comment, Change: ChangeRollback,
		Edit: func(ctx context.Context, tx *store.Tx, cur *domain.FlagConfig, f *domain.Flag, envID string) error {
			old, err := tx.ConfigVersion(ctx, f.ID, envID, to)
			if err != nil {
				return errs.Invalid("to_version", "version %d does not exist", to)
			}
			*cur = old.Config
			return nil
		}})
}

// HistoryPage is a page of versions, newest first.
type HistoryPage struct {
	Items []domain.ConfigVersion `json:"items"`
	// NextBefore pages further back (pass as ?before=).
	NextBefore int64 `json:"next_before,omitempty"`
}

// History lists a configuration's versions newest first, before a version (0: the newest).
func (s *Service) History(ctx context.Context, c audit.Caller, projectKey, flagKey, envKey string, before int64, limit int) (HistoryPage, error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > 500 {
		return HistoryPage{}, errs.Invalid("limit", "at most 500")
	}
	var out HistoryPage
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := loadProject(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		f, err := tx.FlagByKey(ctx, p.ID, flagKey, "")
		if err != nil {
			return err
		}
		e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
		if err != nil {
			return err
		}
		items, err := tx.ListConfigVersions(ctx, f.ID, e.ID, before, limit+1)
		if err != nil {
			return err
		}
		if len(items) > limit {
			items = items[:limit]
			out.NextBefore = items[limit-1].Version
		}
		out.Items = items
		return nil
	})
	return out, err
}

func jsonRoundTrip(data []byte, v any) error { return json.Unmarshal(data, v) }
