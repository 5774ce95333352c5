package flags

import (
	"context"
	"fmt"
	"reflect"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// guardsExperimentRollouts reports whether a kind of change is held to
// checkExperimentRollouts. The experiments service sets and ends experiment rollouts itself;
// the emergency changes (toggle, kill, rollback to a version, a guardrail's automatic
// rollback) must always work, whatever an experiment loses by them.
func guardsExperimentRollouts(change string) bool {
	switch change {
	case ChangeExperiment, ChangeToggle, ChangeKill, ChangeRollback, ChangeAutoRollback:
		return false
	}
	return true
}

// placedRollout is a rollout where a configuration serves it.
type placedRollout struct {
	// place identifies it across edits: "fallthrough", or "rule:" and the rule's id (rules
	// added or removed above it move its index, not its place).
	place   string
	path    string // its field, as validation names it: fallthrough.rollout, rules[2].serve.rollout
	rollout *ruleset.Rollout
}

func placedRollouts(cfg *domain.FlagConfig) []placedRollout {
	var out []placedRollout
	for i, r := range cfg.Rules {
		if r.Serve.Rollout != nil {
			out = append(out, placedRollout{"rule:" + r.ID, fmt.Sprintf("rules[%d].serve.rollout", i), r.Serve.Rollout})
		}
	}
	if cfg.Fallthrough.Rollout != nil {
		out = append(out, placedRollout{"fallthrough", "fallthrough.rollout", cfg.Fallthrough.Rollout})
	}
	return out
}

// checkExperimentRollouts refuses an ordinary edit (see guardsExperimentRollouts) that
// changes or removes the rollout of a started (running or stopped) experiment of this flag in
// this environment, or that puts an experiment_key on a rollout that did not carry it. The
// results count units by experiment key and compare exposures with the experiment's stored
// split: a split changed by hand mixes units assigned under two splits in one analysis (and
// the sample-ratio check fires falsely or misses an arm), and a copied key adds units of
// another rule or flag to the experiment.
func checkExperimentRollouts(ctx context.Context, tx *store.Tx, projectID, envID, flagID string, before, next *domain.FlagConfig) error {
	was := map[string]placedRollout{}
	for _, r := range placedRollouts(before) {
		was[r.place] = r
	}
	now := map[string]placedRollout{}
	for _, r := range placedRollouts(next) {
		now[r.place] = r
		key := r.rollout.ExperimentKey
		if old := was[r.place].rollout; key != "" && (old == nil || old.ExperimentKey != key) {
			return errs.Conflict(r.path+".experiment_key", "experiment_key %q cannot be set by hand: an experiment's rollout is set by starting the experiment, and a copy would add the units it serves to that experiment's analysis; remove experiment_key (to change a started experiment's split, stop and conclude it, then start a new experiment)", key)
		}
	}
	var keyed []placedRollout
	for _, r := range placedRollouts(before) {
		if r.rollout.ExperimentKey != "" {
			keyed = append(keyed, r)
		}
	}
	if len(keyed) == 0 {
		return nil
	}
	xs, err := tx.ListExperiments(ctx, store.ExperimentFilter{ProjectID: projectID, EnvironmentID: envID, FlagID: flagID})
	if err != nil {
		return err
	}
	started := map[string]string{}
	for _, x := range xs {
		if x.Status == domain.ExperimentRunning || x.Status == domain.ExperimentStopped {
			started[x.Key] = x.Status
		}
	}
	for _, r := range keyed {
		status, ok := started[r.rollout.ExperimentKey]
		if !ok {
			continue
		}
		path, what := r.path, "removed"
		if n := now[r.place].rollout; n != nil {
			if reflect.DeepEqual(*n, *r.rollout) {
				continue
			}
			path, what = now[r.place].path, "changed"
		}
		return errs.Conflict(path, "this rollout is %s experiment %q's split and cannot be %s while the experiment is not concluded: units assigned before and after would be analysed together; to change the split, stop and conclude the experiment, then start a new experiment", status, r.rollout.ExperimentKey, what)
	}
	return nil
}
