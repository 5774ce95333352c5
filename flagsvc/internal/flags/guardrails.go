package flags

import (
	"context"
	"fmt"
	"slices"

	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// SplitsControl checks that a plain guardrail has something to watch in a configuration: the
// monitor compares the contexts a plain percentage rollout (no experiment_key) split between
// the control and each treatment, so a flag serving one variation to everyone — or splitting
// other variations — would leave it waiting forever for units, or comparing traffic no rollout
// splits any more. Each treatment must share a rollout, on the fallthrough or a rule, with the
// control (a weight may still be 0, before a ramp starts, or 0 again after one).
func SplitsControl(cfg *domain.FlagConfig, flagKey, envKey, control string, treatments []string) error {
	var rollouts []*ruleset.Rollout
	if r := cfg.Fallthrough.Rollout; r != nil && r.ExperimentKey == "" {
		rollouts = append(rollouts, r)
	}
	for _, rule := range cfg.Rules {
		if r := rule.Serve.Rollout; r != nil && r.ExperimentKey == "" {
			rollouts = append(rollouts, r)
		}
	}
	if len(rollouts) == 0 {
		return errs.Invalid("flag", "flag %q has no percentage rollout in environment %q: a guardrail compares the contexts "+
			"a rollout splits between the control and the treatments (an experiment's rollout has its own guardrails); "+
			"give the fallthrough or a rule a rollout over them first", flagKey, envKey)
	}
	serves := func(r *ruleset.Rollout, v string) bool {
		return slices.ContainsFunc(r.Variations, func(w ruleset.WeightedVariation) bool { return w.Variation == v })
	}
	var withControl []*ruleset.Rollout
	for _, r := range rollouts {
		if serves(r, control) {
			withControl = append(withControl, r)
		}
	}
	if len(withControl) == 0 {
		return errs.Invalid("control", "no percentage rollout of flag %q in environment %q serves %q; "+
			"the control must be one of a rollout's variations", flagKey, envKey, control)
	}
	for i, t := range treatments {
		if !slices.ContainsFunc(withControl, func(r *ruleset.Rollout) bool { return serves(r, t) }) {
			return errs.Invalid(fmt.Sprintf("treatments[%d]", i), "no percentage rollout of flag %q in environment %q "+
				"splits %q with the control %q", flagKey, envKey, t, control)
		}
	}
	return nil
}

// GuardrailResource is a guardrail as the audit log names it.
func GuardrailResource(projectID, envID string, g domain.Guardrail) audit.Resource {
	return audit.Resource{Type: "guardrail", ID: g.ID, Key: g.Flag + "/" + g.Metric, ProjectID: projectID, EnvironmentID: envID}
}

// endOrphanedGuardrails disables, in the transaction of a configuration change, every active
// guardrail of a plain rollout of this flag and environment whose rollout the new
// configuration no longer has (SplitsControl fails on it): the monitor would otherwise go on
// comparing the contexts served since the guardrail was created — the old split's, then
// whatever serves the control and treatments now — for ever. Weights changing (a ramp, even to
// 0/100), the flag turned off, and targeting around the rollout keep it active. Each one
// disabled gets a guardrail.disable audit entry by the change's caller whose comment names the
// change (its audit action and the version it made) and what is missing. Experiments'
// guardrails end with their experiment, not here. A guardrail breached or disabled meanwhile
// is left as it is.
func endOrphanedGuardrails(ctx context.Context, tx *store.Tx, c audit.Caller, p domain.Project, f *domain.Flag, e domain.Environment,
	change string, version int64, next *domain.FlagConfig) error {
	gs, err := tx.ListGuardrails(ctx, store.GuardrailFilter{FlagID: f.ID, EnvironmentID: e.ID, Plain: true, Status: "active"})
	if err != nil {
		return err
	}
	for _, g := range gs {
		why := SplitsControl(next, f.Key, e.Key, g.Control, g.Treatments)
		if why == nil {
			continue
		}
		after, ok, err := tx.DisableActiveGuardrail(ctx, g.ID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		reason := why.Error()
		var fe *errs.Error
		if errAs(why, &fe) {
			reason = fe.Message
		}
		comment := fmt.Sprintf("disabled by flag_config.%s (version %d of flag %q in %s): the percentage rollout it watched "+
			"is gone — %s", change, version, f.Key, e.Key, reason)
		if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "guardrail.disable", GuardrailResource(p.ID, e.ID, g), g, after, comment)); err != nil {
			return err
		}
	}
	return nil
}

// endArchivedGuardrails disables, in the archive's transaction, every active plain guardrail of
// a flag being archived, in every environment: an archived flag is left out of the rulesets, so
// its rollouts split nothing any more, yet no configuration change (which endOrphanedGuardrails
// follows) removes them, and the monitor would sweep the guardrails for ever. Each one disabled
// gets a guardrail.disable audit entry by the archive's caller whose comment names the archive
// (its audit action and the flag version it made). Unarchiving does not re-enable them.
// Experiments' guardrails are not here: a flag with a running or stopped experiment cannot be
// archived (checkExperiments). Deleting a flag deletes its guardrails (ON DELETE CASCADE).
func endArchivedGuardrails(ctx context.Context, tx *store.Tx, c audit.Caller, f *domain.Flag, action string) error {
	gs, err := tx.ListGuardrails(ctx, store.GuardrailFilter{FlagID: f.ID, Plain: true, Status: "active"})
	if err != nil {
		return err
	}
	for _, g := range gs {
		after, ok, err := tx.DisableActiveGuardrail(ctx, g.ID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		comment := fmt.Sprintf("disabled by %s (version %d of flag %q): the flag is archived, so its percentage rollout in %s "+
			"splits no contexts any more; unarchiving the flag does not re-enable the guardrail", action, f.Version, f.Key, g.Environment)
		if err := tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "guardrail.disable", GuardrailResource(f.ProjectID, g.EnvironmentID, g), g, after, comment)); err != nil {
			return err
		}
	}
	return nil
}
