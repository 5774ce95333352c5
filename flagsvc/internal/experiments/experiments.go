// Package experiments runs experiments: defined on a flag in an environment with the metrics
// that judge them, started (which sets the flag's rollout to the experiment's split, salt and
// key — a versioned, audited flag change), stopped, and concluded with a decision that ships a
// variation or rolls back. Guardrails declared by an experiment become active when it starts.
package experiments

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Service manages experiments.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// scope is an experiment's project, environment and flag, with the caller's rights checked.
type scope struct {
	project domain.Project
	env     domain.Environment
	flag    domain.Flag
}

func resolve(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, envKey, flagKey string, write bool) (scope, error) {
	var sc scope
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
	if err != nil {
		return sc, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
		return sc, err
	}
	e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
	if err != nil {
		return sc, errs.Invalid("environment", "environment %q not found", envKey)
	}
	f, err := tx.FlagByKey(ctx, p.ID, flagKey, "")
	if err != nil {
		return sc, errs.Invalid("flag", "flag %q not found", flagKey)
	}
	if write {
		if err := c.P.Require(access.WriteEnvironment, access.Target{ProjectID: p.ID, EnvironmentID: e.ID, Critical: e.Critical, Resource: "experiments"}); err != nil {
			return sc, err
		}
	}
	return scope{project: p, env: e, flag: f}, nil
}

func resource(x *domain.Experiment, sc scope) audit.Resource {
	return audit.Resource{Type: "experiment", ID: x.ID, Key: x.Key, ProjectID: sc.project.ID, EnvironmentID: sc.env.ID}
}

// validate checks an experiment against its flag: the domain's rules, and that no metric is
// guarded twice (each guardrail becomes an enforced row at start; two on one metric would
// enforce two tolerances at once).
func validate(x *domain.Experiment, f *domain.Flag) error {
	if err := domain.ValidateExperiment(x, f); err != nil {
		return err
	}
	guarded := map[string]bool{}
	for i, g := range x.Metrics.Guardrails {
		if guarded[g.Metric] {
			return errs.Invalid(fmt.Sprintf("metrics.guardrails[%d].metric", i), "metric %q already has a guardrail in this experiment", g.Metric)
		}
		guarded[g.Metric] = true
	}
	return nil
}

// checkMetrics checks that every metric the experiment names exists and is live, with live
// parts for a ratio, and returns their current versions (with ratio parts) for the record.
// Metrics in recorded (the versions a started experiment recorded) are not looked up again:
// they keep their recorded version even if archived since.
func checkMetrics(ctx context.Context, tx *store.Tx, projectID string, x *domain.Experiment, recorded map[string]int64) (map[string]int64, error) {
	versions := map[string]int64{}
	check := func(field, key string) error {
		if v, ok := recorded[key]; ok {
			versions[key] = v
			return nil
		}
		m, _, err := tx.MetricByKey(ctx, projectID, key, false)
		if errs.KindOf(err) == errs.KindNotFound {
			return errs.Invalid(field, "unknown metric %q", key)
		}
		if err != nil {
			return err
		}
		if m.Archived {
			return errs.Invalid(field, "metric %q is archived", key)
		}
		versions[key] = m.Version
		for _, part := range []string{m.Numerator, m.Denominator} {
			if part != "" {
				pm, _, err := tx.MetricByKey(ctx, projectID, part, false)
				if err != nil {
					return errs.Invalid(field, "metric %q refers to a missing metric %q", key, part)
				}
				// A ratio is computed from its parts: one archived since the ratio was defined
				// (which the catalog allows) makes the ratio as unusable as an archived metric.
				if pm.Archived {
					return errs.Invalid(field, "metric %q divides metric %q, which is archived", key, part)
				}
				versions[part] = pm.Version
			}
		}
		return nil
	}
	for role, keys := range map[string][]string{"primary": x.Metrics.Primary, "secondary": x.Metrics.Secondary} {
		for i, k := range keys {
			if err := check(fmt.Sprintf("metrics.%s[%d]", role, i), k); err != nil {
				return nil, err
			}
		}
	}
	for i, g := range x.Metrics.Guardrails {
		if err := check(fmt.Sprintf("metrics.guardrails[%d].metric", i), g.Metric); err != nil {
			return nil, err
		}
	}
	return versions, nil
}

// CreateInput creates an experiment (a draft).
type CreateInput struct {
	domain.Experiment
}

// Create creates a draft experiment.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey string, x domain.Experiment) (domain.Experiment, error) {
	domain.ExperimentDefaults(&x)
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := resolve(ctx, tx, c, projectKey, x.Environment, x.Flag, true)
		if err != nil {
			return err
		}
		if err := validate(&x, &sc.flag); err != nil {
			return err
		}
		if sc.flag.Lifecycle == domain.LifecycleArchived {
			return errs.Invalid("flag", "flag %q is archived", sc.flag.Key)
		}
		if x.OwnerID != "" {
			if _, err := tx.Membership(ctx, c.P.OrgID, x.OwnerID); err != nil {
				return errs.Invalid("owner_id", "owner must be a member of the organization")
			}
		}
		if _, err := checkMetrics(ctx, tx, sc.project.ID, &x, nil); err != nil {
			return err
		}
		if x.Salt == "" {
			x.Salt = x.Key + "-" + tokens.RandomString(6)
		}
		// Bucketing hashes salt + "." + context key, without the flag: two experiments with one
		// salt, on any flags, would split the same contexts the same way.
		other, err := tx.ExperimentWithSalt(ctx, sc.project.ID, x.Salt)
		if err != nil {
			return err
		}
		if other != "" {
			return errs.Conflict("salt", "experiment %q already uses salt %q; experiments sharing a salt assign the same contexts alike, so choose another salt (or omit it for a random one)", other, x.Salt)
		}
		if out, err = tx.InsertExperiment(ctx, sc.project.ID, sc.env.ID, sc.flag.ID, &x); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.create", resource(&out, sc), nil, out, ""))
	})
	return out, err
}

func (s *Service) load(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, key string, write, lock bool) (domain.Experiment, scope, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
	if err != nil {
		return domain.Experiment{}, scope{}, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
		return domain.Experiment{}, scope{}, err
	}
	x, err := tx.ExperimentByKey(ctx, p.ID, key, lock)
	if err != nil {
		return x, scope{}, err
	}
	sc, err := resolve(ctx, tx, c, projectKey, x.Environment, x.Flag, write)
	return x, sc, err
}

// Get returns an experiment.
func (s *Service) Get(ctx context.Context, c audit.Caller, projectKey, key string) (domain.Experiment, error) {
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		out, _, err = s.load(ctx, tx, c, projectKey, key, false, false)
		return err
	})
	return out, err
}

// List lists a project's experiments (status and environment filter them).
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey, status, envKey string) ([]domain.Experiment, error) {
	var out []domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
		if err != nil {
			return err
		}
		if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
			return err
		}
		f := store.ExperimentFilter{ProjectID: p.ID, Status: status}
		if envKey != "" {
			e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
			if err != nil {
				return errs.Invalid("environment", "environment %q not found", envKey)
			}
			f.EnvironmentID = e.ID
		}
		out, err = tx.ListExperiments(ctx, f)
		return err
	})
	return out, err
}

// ListOrg lists the experiments of every project the caller can read (the results workers
// list the running ones, and those stopped recently); stoppedAfter, when set, keeps only the
// experiments stopped at or after it.
func (s *Service) ListOrg(ctx context.Context, c audit.Caller, status string, stoppedAfter *time.Time) ([]domain.Experiment, error) {
	var out []domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ReadOrg, access.Target{}); err != nil {
			return err
		}
		all, err := tx.ListExperiments(ctx, store.ExperimentFilter{OrgID: c.P.OrgID, Status: status, StoppedAfter: stoppedAfter})
		if err != nil {
			return err
		}
		out = []domain.Experiment{}
		for _, x := range all {
			p, err := tx.ProjectByKey(ctx, c.P.OrgID, x.Project)
			if err == nil && c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}) == nil {
				out = append(out, x)
			}
		}
		return nil
	})
	return out, err
}

// UpdateInput edits an experiment; nil fields are unchanged. Drafts accept every field;
// started (running or stopped) experiments only changes of name, hypothesis, owner, planned
// duration and secondary metrics — the other fields may be sent back as they are.
type UpdateInput struct {
	Name            *string                      `json:"name"`
	Hypothesis      *string                      `json:"hypothesis"`
	OwnerID         *string                      `json:"owner_id"`
	Control         *string                      `json:"control"`
	Variations      *[]ruleset.WeightedVariation `json:"variations"`
	ContextKind     *string                      `json:"context_kind"`
	Metrics         *domain.ExperimentMetrics    `json:"metrics"`
	Analysis        *domain.Analysis             `json:"analysis"`
	PlannedDuration *domain.Duration             `json:"planned_duration"`
	Version         *int64                       `json:"version"`
}

// Update edits an experiment.
func (s *Service) Update(ctx context.Context, c audit.Caller, projectKey, key string, in UpdateInput) (domain.Experiment, error) {
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		before, sc, err := s.load(ctx, tx, c, projectKey, key, true, true)
		if err != nil {
			return err
		}
		if in.Version != nil && *in.Version != before.Version {
			return errs.Conflict("version", "experiment %q was changed since version %d (now %d); reload and retry", key, *in.Version, before.Version)
		}
		if before.Status == domain.ExperimentConcluded {
			return errs.PreconditionFailed("status", "experiment %q is concluded", key)
		}
		started := before.Status == domain.ExperimentRunning || before.Status == domain.ExperimentStopped
		x := before
		x.MetricVersions = maps.Clone(before.MetricVersions)
		if in.Name != nil {
			x.Name = *in.Name
		}
		if in.Hypothesis != nil {
			x.Hypothesis = *in.Hypothesis
		}
		if in.OwnerID != nil {
			x.OwnerID = *in.OwnerID
		}
		if in.Control != nil {
			x.Control = *in.Control
		}
		if in.Variations != nil {
			x.Variations = *in.Variations
		}
		if in.ContextKind != nil {
			x.ContextKind = *in.ContextKind
		}
		if in.Metrics != nil {
			x.Metrics = *in.Metrics
		}
		if in.Analysis != nil {
			x.Analysis = *in.Analysis
		}
		if in.PlannedDuration != nil {
			x.PlannedDuration = *in.PlannedDuration
		}
		domain.ExperimentDefaults(&x)
		if started {
			// Sending a field back unchanged is not an edit (clients PATCH what they read).
			if field := designChange(&before, &x); field != "" {
				if field == "control" || field == "variations" || field == "context_kind" {
					// The split assigned the units so far: changing it would mix units assigned
					// under two splits in one analysis (and the sample-ratio check would compare
					// them with a split most of them were not assigned under).
					return errs.PreconditionFailed(field, "cannot change %s once the experiment has started: units assigned before and after the change would be analysed together; to change the split, stop and conclude this experiment and start a new experiment", field)
				}
				return errs.PreconditionFailed(field, "cannot change %s once the experiment has started", field)
			}
		}
		if err := validate(&x, &sc.flag); err != nil {
			return err
		}
		if x.OwnerID != "" && x.OwnerID != before.OwnerID {
			if _, err := tx.Membership(ctx, c.P.OrgID, x.OwnerID); err != nil {
				return errs.Invalid("owner_id", "owner must be a member of the organization")
			}
		}
		// A started experiment keeps the metric versions it recorded (even of metrics archived
		// since); a secondary metric added now is checked and its current version recorded.
		var recorded map[string]int64
		if started {
			recorded = before.MetricVersions
		}
		versions, err := checkMetrics(ctx, tx, sc.project.ID, &x, recorded)
		if err != nil {
			return err
		}
		if started {
			for k, v := range versions {
				if _, had := x.MetricVersions[k]; !had {
					x.MetricVersions[k] = v
				}
			}
		}
		if out, err = tx.SaveExperiment(ctx, &x); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.update", resource(&out, sc), before, out, ""))
	})
	return out, err
}

// designChange names the first part of a started experiment's design that an edit changes
// ("" if none): its split, its analysis, its primary metrics and its guardrails (the monitor
// enforces the rows made at start) are fixed once it has started. Both have defaults filled in.
func designChange(before, after *domain.Experiment) string {
	switch {
	case after.Control != before.Control:
		return "control"
	case !slices.Equal(after.Variations, before.Variations):
		return "variations"
	case after.ContextKind != before.ContextKind:
		return "context_kind"
	case after.Analysis != before.Analysis:
		return "analysis"
	case !slices.Equal(after.Metrics.Primary, before.Metrics.Primary):
		return "metrics.primary"
	case !slices.Equal(after.Metrics.Guardrails, before.Metrics.Guardrails):
		return "metrics.guardrails"
	}
	return ""
}

// Delete deletes a draft.
func (s *Service) Delete(ctx context.Context, c audit.Caller, projectKey, key string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		x, sc, err := s.load(ctx, tx, c, projectKey, key, true, true)
		if err != nil {
			return err
		}
		if x.Status != domain.ExperimentDraft {
			return errs.PreconditionFailed("status", "only drafts can be deleted; conclude a started experiment instead")
		}
		if err := tx.DeleteExperiment(ctx, x.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.delete", resource(&x, sc), x, nil, ""))
	})
}

// Start sets the flag's fallthrough to the experiment's rollout and turns the flag on,
// records the metric versions, and activates the experiment's guardrails — in one transaction.
// The guardrails of stopped experiments on the same flag and environment end: their split is
// no longer served.
func (s *Service) Start(ctx context.Context, c audit.Caller, projectKey, key string) (domain.Experiment, error) {
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		x, sc, err := s.load(ctx, tx, c, projectKey, key, true, true)
		if err != nil {
			return err
		}
		if x.Status != domain.ExperimentDraft {
			// A stopped experiment does not restart: its results are frozen at its stop, and a
			// second run under its key and salt would merge the two runs' units.
			return errs.PreconditionFailed("status", "experiment %q is %s; only drafts start: to run it again, start a new experiment (its own key and salt)", key, x.Status)
		}
		if err := validate(&x, &sc.flag); err != nil {
			return err
		}
		if x.MetricVersions, err = checkMetrics(ctx, tx, sc.project.ID, &x, nil); err != nil {
			return err
		}
		rollout := &ruleset.Rollout{ContextKind: x.ContextKind, Salt: x.Salt, ExperimentKey: x.Key, Variations: x.Variations}
		if _, err := flags.ChangeConfigTx(ctx, tx, c, projectKey, x.Flag, x.Environment, flags.ConfigChange{
			Change: flags.ChangeExperiment, Comment: "experiment " + x.Key + " started",
			Edit: func(_ context.Context, _ *store.Tx, cfg *domain.FlagConfig, _ *domain.Flag, _ string) error {
				cfg.On = true
				cfg.Fallthrough = ruleset.Serve{Rollout: rollout}
				return nil
			}}); err != nil {
			return err
		}
		// A stopped experiment on this flag and environment served its split until now; its
		// guardrails end with it, or a breach of theirs would roll back this one's rollout.
		stopped, err := tx.ListExperiments(ctx, store.ExperimentFilter{ProjectID: sc.project.ID, EnvironmentID: sc.env.ID,
			FlagID: sc.flag.ID, Status: domain.ExperimentStopped})
		if err != nil {
			return err
		}
		for _, o := range stopped {
			if err := tx.DisableExperimentGuardrails(ctx, o.ID); err != nil {
				return err
			}
		}
		var treatments []string
		for _, v := range x.Variations {
			if v.Variation != x.Control {
				treatments = append(treatments, v.Variation)
			}
		}
		for _, g := range x.Metrics.Guardrails {
			if _, err := tx.InsertGuardrail(ctx, sc.project.ID, sc.env.ID, sc.flag.ID, x.ID, domain.Guardrail{
				Metric: g.Metric, Tolerance: g.Tolerance, Action: g.Action, Control: x.Control, Treatments: treatments}); err != nil {
				return err
			}
		}
		now := s.now().UTC()
		before := x
		x.Status, x.StartedAt = domain.ExperimentRunning, &now
		if out, err = tx.SaveExperiment(ctx, &x); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.start", resource(&out, sc), before, out, ""))
	})
	return out, err
}

// Stop freezes the results; the flag keeps serving the split until the experiment concludes.
func (s *Service) Stop(ctx context.Context, c audit.Caller, projectKey, key string) (domain.Experiment, error) {
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		x, sc, err := s.load(ctx, tx, c, projectKey, key, true, true)
		if err != nil {
			return err
		}
		if x.Status != domain.ExperimentRunning {
			return errs.PreconditionFailed("status", "experiment %q is %s; only running experiments stop", key, x.Status)
		}
		now := s.now().UTC()
		before := x
		x.Status, x.StoppedAt = domain.ExperimentStopped, &now
		if out, err = tx.SaveExperiment(ctx, &x); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.stop", resource(&out, sc), before, out, ""))
	})
	return out, err
}

// ConcludeInput is the decision.
type ConcludeInput struct {
	Outcome   string `json:"outcome"`
	Variation string `json:"variation"`
	Rationale string `json:"rationale"`
}

// Conclude records the decision; ship serves the chosen variation to everyone, rollback the
// control (flag changes, audited); inconclusive leaves the flag as it is. Guardrails end.
// Ship and rollback replace the flag's fallthrough only while it still serves this
// experiment's rollout: a stopped experiment's flag may carry another experiment by then, and
// ending that one's split would be a silent side effect. Otherwise the decision is recorded,
// the flag is left alone and Decision.FlagUnchanged says why.
func (s *Service) Conclude(ctx context.Context, c audit.Caller, projectKey, key string, in ConcludeInput) (domain.Experiment, error) {
	var out domain.Experiment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		x, sc, err := s.load(ctx, tx, c, projectKey, key, true, true)
		if err != nil {
			return err
		}
		if x.Status != domain.ExperimentRunning && x.Status != domain.ExperimentStopped {
			return errs.PreconditionFailed("status", "experiment %q is %s; only started experiments conclude", key, x.Status)
		}
		serve := ""
		switch in.Outcome {
		case "ship":
			if !slices.ContainsFunc(x.Variations, func(v ruleset.WeightedVariation) bool { return v.Variation == in.Variation }) {
				return errs.Invalid("variation", "ship one of the experiment's variations")
			}
			serve = in.Variation
		case "rollback":
			if in.Variation != "" && in.Variation != x.Control {
				return errs.Invalid("variation", "a rollback serves the control %q", x.Control)
			}
			serve = x.Control
		case "inconclusive":
			if in.Variation != "" {
				return errs.Invalid("variation", "an inconclusive decision ships nothing")
			}
		default:
			return errs.Invalid("outcome", "must be ship, rollback or inconclusive")
		}
		if strings.TrimSpace(in.Rationale) == "" {
			// The decision is read later by people who were not there: it says why.
			return errs.Invalid("rationale", "say why the experiment concludes this way (kept with the decision)")
		}
		if len(in.Rationale) > domain.MaxDescriptionLength {
			return errs.Invalid("rationale", "at most %d characters", domain.MaxDescriptionLength)
		}
		unchanged := ""
		if serve != "" {
			if _, err := flags.ChangeConfigTx(ctx, tx, c, projectKey, x.Flag, x.Environment, flags.ConfigChange{
				Change: flags.ChangeExperiment, Comment: fmt.Sprintf("experiment %s concluded: %s %s", x.Key, in.Outcome, serve),
				Edit: func(_ context.Context, _ *store.Tx, cfg *domain.FlagConfig, _ *domain.Flag, _ string) error {
					// Only the experiment's own rollout is replaced: once stopped, another
					// experiment may have started on the flag, or someone changed it since.
					if unchanged = notOurRollout(cfg.Fallthrough, x.Key, serve, x.Flag, x.Environment); unchanged == "" {
						cfg.Fallthrough = ruleset.Serve{Variation: serve}
					}
					return nil
				}}); err != nil {
				return err
			}
		}
		if err := tx.DisableExperimentGuardrails(ctx, x.ID); err != nil {
			return err
		}
		now := s.now().UTC()
		before := x
		if x.StoppedAt == nil {
			x.StoppedAt = &now
		}
		x.Status, x.ConcludedAt = domain.ExperimentConcluded, &now
		x.Decision = &domain.Decision{Outcome: in.Outcome, Variation: serve, Rationale: in.Rationale, DecidedBy: c.P.Actor.Name, DecidedAt: now,
			FlagUnchanged: unchanged}
		if out, err = tx.SaveExperiment(ctx, &x); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "experiment.conclude", resource(&out, sc), before, out, in.Rationale))
	})
	return out, err
}

// notOurRollout says why a decision serving serve must leave a flag's fallthrough alone, or ""
// when the fallthrough is experiment key's rollout (or serves serve already).
func notOurRollout(ft ruleset.Serve, key, serve, flag, env string) string {
	switch {
	case ft.Rollout != nil && ft.Rollout.ExperimentKey == key, ft.Rollout == nil && ft.Variation == serve:
		return ""
	case ft.Rollout != nil && ft.Rollout.ExperimentKey != "":
		return fmt.Sprintf("flag %q in %s was left as it is: its fallthrough serves experiment %q's rollout now; change the flag yourself once that experiment ends", flag, env, ft.Rollout.ExperimentKey)
	case ft.Rollout != nil:
		return fmt.Sprintf("flag %q in %s was left as it is: its fallthrough was changed to another percentage rollout since the experiment ran", flag, env)
	default:
		return fmt.Sprintf("flag %q in %s was left as it is: its fallthrough was changed to serve %q since the experiment ran", flag, env, ft.Variation)
	}
}
