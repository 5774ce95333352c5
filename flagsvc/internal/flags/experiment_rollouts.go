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

// matchExperimentRules gives a rule sent without an id (a configuration written by hand, or
// by a tool that drops ids) the id of the current rule whose rollout carries the same
// experiment_key, so that checkExperimentRollouts judges it as that rule: the experiment's
// rollout sent back unchanged is accepted, a changed one is refused as a change. Only an
// unambiguous match counts — one current rule with the key, one rule sent without an id
// carrying it, and no rule sent with that rule's id; otherwise the second carrier is refused
// here, naming it (its units would be added to the experiment's analysis).
func matchExperimentRules(before, next *domain.FlagConfig) error {
	current := map[string][]int{} // experiment key → indexes of before's rules carrying it
	for i, r := range before.Rules {
		if r.Serve.Rollout != nil && r.Serve.Rollout.ExperimentKey != "" {
			current[r.Serve.Rollout.ExperimentKey] = append(current[r.Serve.Rollout.ExperimentKey], i)
		}
	}
	if len(current) == 0 {
		return nil
	}
	sentIDs := map[string]int{}
	idless := map[string][]int{} // experiment key → indexes of next's id-less rules carrying it
	var keys []string
	for i, r := range next.Rules {
		if r.ID != "" {
			sentIDs[r.ID] = i
			continue
		}
		if r.Serve.Rollout == nil || r.Serve.Rollout.ExperimentKey == "" {
			continue
		}
		key := r.Serve.Rollout.ExperimentKey
		if _, ok := current[key]; !ok {
			continue // not on a current rule: checkExperimentRollouts judges it as a new key
		}
		if idless[key] == nil {
			keys = append(keys, key)
		}
		idless[key] = append(idless[key], i)
	}
	for _, key := range keys {
		sent, carriers := idless[key], current[key]
		field := func(i int) string { return fmt.Sprintf("rules[%d].serve.rollout.experiment_key", i) }
		switch {
		case len(carriers) > 1:
			return errs.Conflict(field(sent[0]), "experiment_key %q is on %d rules of the current configuration, so a rule sent without an id cannot be matched to one of them; send the rule's id (as GET returns it)", key, len(carriers))
		case len(sent) > 1:
			return errs.Conflict(field(sent[1]), "rules[%d] and rules[%d] both carry experiment_key %q without an id; the experiment's rollout is served by one rule (id %q), and a second would add its units to the experiment's analysis", sent[0], sent[1], key, before.Rules[carriers[0]].ID)
		}
		id := before.Rules[carriers[0]].ID
		if j, taken := sentIDs[id]; taken {
			return errs.Conflict(field(sent[0]), "the rule serving experiment_key %q (id %q) is sent as rules[%d]; a second rule carrying the key would add its units to the experiment's analysis: remove experiment_key", key, id, j)
		}
		next.Rules[sent[0]].ID = id
	}
	return nil
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
