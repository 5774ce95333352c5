// Package guardrails keeps the guardrails that watch releases for harm: declared by experiments
// (active while they run) or on a plain percentage rollout (active while a configuration change
// does not remove that rollout, see flags.ChangeConfigTx, and the flag is not archived). The
// jobs service sweeps the active ones and reports a breach here, which is recorded exactly once
// and — for rollback guardrails — rolls the flag back in the same transaction, audited as an
// automatic rollback.
package guardrails

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Service manages guardrails.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// ListOrg lists the guardrails of every project the caller can read, by status.
func (s *Service) ListOrg(ctx context.Context, c audit.Caller, status string) ([]domain.Guardrail, error) {
	if status != "" && status != "active" && status != "breached" && status != "disabled" {
		return nil, errs.Invalid("status", "must be active, breached or disabled")
	}
	var out []domain.Guardrail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := c.P.Require(access.ReadOrg, access.Target{}); err != nil {
			return err
		}
		all, err := tx.ListGuardrails(ctx, store.GuardrailFilter{OrgID: c.P.OrgID, Status: status})
		if err != nil {
			return err
		}
		out = []domain.Guardrail{}
		for _, g := range all {
			if c.P.Require(access.ReadProject, access.Target{ProjectID: g.ProjectID}) == nil {
				out = append(out, g)
			}
		}
		return nil
	})
	return out, err
}

func environment(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, envKey string, write bool) (domain.Project, domain.Environment, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
	if err != nil {
		return p, domain.Environment{}, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
		return p, domain.Environment{}, err
	}
	e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
	if err != nil {
		return p, e, err
	}
	if write {
		err = c.P.Require(access.WriteEnvironment, access.Target{ProjectID: p.ID, EnvironmentID: e.ID, Critical: e.Critical, Resource: "guardrails"})
	}
	return p, e, err
}

// List lists an environment's guardrails.
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey, envKey string) ([]domain.Guardrail, error) {
	var out []domain.Guardrail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		_, e, err := environment(ctx, tx, c, projectKey, envKey, false)
		if err != nil {
			return err
		}
		out, err = tx.ListGuardrails(ctx, store.GuardrailFilter{EnvironmentID: e.ID})
		return err
	})
	return out, err
}

// Input declares a guardrail on a plain percentage rollout.
type Input struct {
	Flag       string   `json:"flag"`
	Metric     string   `json:"metric"`
	Tolerance  float64  `json:"tolerance"`
	Action     string   `json:"action"`
	Control    string   `json:"control"`
	Treatments []string `json:"treatments"`
}

// Create declares a guardrail on a flag's percentage rollout in an environment: the rollout must
// split the control and each treatment (splitsControl), and one active guardrail per flag,
// environment and metric is allowed — a disabled or breached one does not count, so a guardrail
// disabled by DELETE can be declared again.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey, envKey string, in Input) (domain.Guardrail, error) {
	if in.Action == "" {
		in.Action = "alert"
	}
	var out domain.Guardrail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, e, err := environment(ctx, tx, c, projectKey, envKey, true)
		if err != nil {
			return err
		}
		// Shared until commit: an archive (which locks the flag for update and disables its
		// guardrails) either waits for this guardrail or is seen by it.
		f, err := tx.FlagByKey(ctx, p.ID, in.Flag, "share")
		if err != nil {
			return errs.Invalid("flag", "flag %q not found", in.Flag)
		}
		if f.Lifecycle == domain.LifecycleArchived {
			return errs.Invalid("flag", "flag %q is archived; unarchive it to declare a guardrail", f.Key)
		}
		m, _, err := tx.MetricByKey(ctx, p.ID, in.Metric, false)
		if err != nil || m.Archived {
			return errs.Invalid("metric", "unknown metric %q", in.Metric)
		}
		switch {
		case in.Tolerance <= 0 || in.Tolerance > 1 || math.IsNaN(in.Tolerance):
			return errs.Invalid("tolerance", "a relative degradation in (0, 1], e.g. 0.02 for 2%%")
		case in.Action != "alert" && in.Action != "rollback":
			return errs.Invalid("action", "must be alert or rollback")
		case f.Variation(in.Control) == nil:
			return errs.Invalid("control", "flag %q has no variation %q", f.Key, in.Control)
		case len(in.Treatments) == 0:
			return errs.Invalid("treatments", "at least one treatment variation")
		}
		for i, t := range in.Treatments {
			if f.Variation(t) == nil || t == in.Control {
				return errs.Invalid(fmt.Sprintf("treatments[%d]", i), "must be a variation of %q other than the control", f.Key)
			}
		}
		// The configuration's row lock serializes guardrail creations on this flag and
		// environment (the duplicate check) and holds the rollout checked until commit.
		cfg, _, _, err := tx.FlagConfig(ctx, f.ID, e.ID, true)
		if err != nil {
			return err
		}
		if err := splitsControl(cfg, f.Key, e.Key, in); err != nil {
			return err
		}
		active, err := tx.ListGuardrails(ctx, store.GuardrailFilter{FlagID: f.ID, EnvironmentID: e.ID, Plain: true, Status: "active"})
		if err != nil {
			return err
		}
		for _, g := range active {
			if g.Metric == in.Metric {
				return errs.Conflict("metric", "guardrail %s already watches metric %q on flag %q in environment %q; "+
					"disable it (DELETE …/guardrails/%s) to replace it", g.ID, in.Metric, f.Key, e.Key, g.ID)
			}
		}
		if out, err = tx.InsertGuardrail(ctx, p.ID, e.ID, f.ID, "", domain.Guardrail{Metric: in.Metric, Tolerance: in.Tolerance,
			Action: in.Action, Control: in.Control, Treatments: in.Treatments}); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "guardrail.create",
			resource(p.ID, e.ID, out), nil, out, ""))
	})
	return out, err
}

// splitsControl checks that the guardrail has something to watch (flags.SplitsControl): the
// same check a later configuration change applies to keep the guardrail active.
func splitsControl(cfg domain.FlagConfig, flagKey, envKey string, in Input) error {
	return flags.SplitsControl(&cfg, flagKey, envKey, in.Control, in.Treatments)
}

// resource is a guardrail as the audit log names it.
func resource(projectID, envID string, g domain.Guardrail) audit.Resource {
	return flags.GuardrailResource(projectID, envID, g)
}

// lockGuardrail loads a guardrail of the environment for update; one of another environment is
// not found.
func lockGuardrail(ctx context.Context, tx *store.Tx, id, envID string) (domain.Guardrail, error) {
	g, err := tx.GuardrailByID(ctx, id, true)
	if err != nil || g.EnvironmentID != envID {
		return domain.Guardrail{}, errs.NotFound("guardrail not found")
	}
	return g, nil
}

// Disable turns a guardrail off.
func (s *Service) Disable(ctx context.Context, c audit.Caller, projectKey, envKey, id string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		p, e, err := environment(ctx, tx, c, projectKey, envKey, true)
		if err != nil {
			return err
		}
		g, err := lockGuardrail(ctx, tx, id, e.ID)
		if err != nil {
			return err
		}
		if err := tx.SetGuardrailStatus(ctx, id, "disabled", nil); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "guardrail.disable",
			resource(p.ID, e.ID, g), g, nil, ""))
	})
}

// BreachInput is what the monitor found.
type BreachInput struct {
	Effect   float64    `json:"effect"`
	Interval [2]float64 `json:"interval"`
	PValue   float64    `json:"p_value"`
	// Absolute: Effect and Interval are a difference of means, because the control's mean is 0
	// (a harm that appears only with the treatment, like a new error); else relative.
	Absolute bool `json:"absolute"`
}

// Breach records a breach exactly once (a second report is a Conflict) and, for rollback
// guardrails, serves the control variation (experiments) or turns the flag off (plain
// rollouts) in the same transaction, audited as flag_config.auto_rollback.
func (s *Service) Breach(ctx context.Context, c audit.Caller, projectKey, envKey, id string, in BreachInput) (domain.Guardrail, error) {
	for _, v := range []float64{in.Effect, in.Interval[0], in.Interval[1], in.PValue} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return domain.Guardrail{}, errs.Invalid("effect", "effect, interval and p_value must be finite numbers")
		}
	}
	if in.PValue < 0 || in.PValue > 1 {
		return domain.Guardrail{}, errs.Invalid("p_value", "must be in [0, 1]")
	}
	var out domain.Guardrail
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, e, err := environment(ctx, tx, c, projectKey, envKey, true)
		if err != nil {
			return err
		}
		g, err := lockGuardrail(ctx, tx, id, e.ID)
		if err != nil {
			return err
		}
		if g.Status != "active" {
			return errs.Conflict("status", "guardrail is %s; a breach is recorded once", g.Status)
		}
		b := &domain.Breach{At: s.now().UTC(), Effect: in.Effect, Interval: in.Interval, PValue: in.PValue, Absolute: in.Absolute, ActionTaken: "alert_only"}
		if g.Action == "rollback" {
			comment := fmt.Sprintf("automatic rollback by guardrail %s: %s degraded by %+.2f%% (interval %+.2f%% to %+.2f%%, p=%.4g, tolerance %.2f%%)",
				g.ID, g.Metric, 100*in.Effect, 100*in.Interval[0], 100*in.Interval[1], in.PValue, 100*g.Tolerance)
			if in.Absolute {
				comment = fmt.Sprintf("automatic rollback by guardrail %s: %s changed by %+.4g per unit from a control mean of 0 (interval %+.4g to %+.4g, p=%.4g)",
					g.ID, g.Metric, in.Effect, in.Interval[0], in.Interval[1], in.PValue)
			}
			experiment := g.Experiment != ""
			b.ActionTaken = "turn_off"
			if experiment {
				b.ActionTaken = "serve_control"
			}
			if _, err := flags.ChangeConfigTx(ctx, tx, c, projectKey, g.Flag, envKey, flags.ConfigChange{
				Change: flags.ChangeAutoRollback, Comment: comment,
				Edit: func(_ context.Context, _ *store.Tx, cfg *domain.FlagConfig, _ *domain.Flag, _ string) error {
					if !experiment {
						cfg.On = false
						return nil
					}
					cfg.Fallthrough = ruleset.Serve{Variation: g.Control}
					// Rules serving the experiment's rollout fall back to the control too.
					for i := range cfg.Rules {
						if r := cfg.Rules[i].Serve.Rollout; r != nil && slices.ContainsFunc(r.Variations, func(w ruleset.WeightedVariation) bool {
							return slices.Contains(g.Treatments, w.Variation)
						}) {
							cfg.Rules[i].Serve = ruleset.Serve{Variation: g.Control}
						}
					}
					return nil
				}}); err != nil {
				return err
			}
		}
		if err := tx.SetGuardrailStatus(ctx, id, "breached", b); err != nil {
			return err
		}
		if out, err = tx.GuardrailByID(ctx, id, false); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "guardrail.breach",
			resource(p.ID, e.ID, g), g, out, b.ActionTaken))
	})
	return out, err
}
