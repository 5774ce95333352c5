package api_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// runningExperiment starts experiment "checkout-q4" (50/50 off/on) on flag "checkout" in
// production of project "shop" and returns the project, the experiment's path and the flag's
// configuration after the start.
func runningExperiment(s *stack) (string, string, domain.FlagEnvironment) {
	s.t.Helper()
	p, base := shopExperiments(s)
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", base+"/checkout-q4/start", nil, nil)
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	if ro := cfg.Fallthrough.Rollout; ro == nil || ro.ExperimentKey != "checkout-q4" {
		s.t.Fatalf("the experiment's rollout: %+v", cfg.Fallthrough)
	}
	return p, base + "/checkout-q4", cfg
}

// withRollout returns cfg with its fallthrough rollout (a deep copy) changed by edit.
func withRollout(cfg domain.FlagConfig, edit func(*ruleset.Rollout)) domain.FlagConfig {
	ro := *cfg.Fallthrough.Rollout
	ro.Variations = slices.Clone(ro.Variations)
	edit(&ro)
	cfg.Fallthrough = ruleset.Serve{Rollout: &ro}
	return cfg
}

func ramp(ro *ruleset.Rollout) { ro.Variations[0].Weight, ro.Variations[1].Weight = 20000, 80000 }

// refusedAsExperimentRollout checks a 409 naming field that says how to change a split.
func refusedAsExperimentRollout(t *testing.T, s *stack, field, method, path string, body any, headers ...string) {
	t.Helper()
	e := s.refused(409, field, method, path, body, headers...)
	if !strings.Contains(e.Message, "conclude") || !strings.Contains(e.Message, "new experiment") {
		t.Fatalf("%s %s: %q does not say to conclude the experiment and start a new one", method, field, e.Message)
	}
}

// sameRollout fails unless the flag still serves want's fallthrough rollout, unchanged.
func sameRollout(t *testing.T, s *stack, p string, want domain.FlagEnvironment) domain.FlagEnvironment {
	t.Helper()
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	if !reflect.DeepEqual(cfg.Fallthrough, want.Fallthrough) {
		t.Fatalf("the experiment's rollout changed: %+v, was %+v", cfg.Fallthrough.Rollout, want.Fallthrough.Rollout)
	}
	return cfg
}

// TestFlagConfigRefusesEditsOfAStartedExperimentsRollout: the experiment's split is fixed
// (the results compare exposures with its stored split): the flag configuration API cannot
// change any part of the rollout, or remove it, while the experiment runs or is stopped.
func TestFlagConfigRefusesEditsOfAStartedExperimentsRollout(t *testing.T) {
	s := newStack(t)
	p, xp, cfg := runningExperiment(s)
	path := configPath(p, "checkout", "production")
	for _, status := range []string{"running", "stopped"} {
		for name, tc := range map[string]struct {
			field string
			body  domain.FlagConfig
		}{
			"weights":            {"fallthrough.rollout", withRollout(cfg.FlagConfig, ramp)},
			"variations":         {"fallthrough.rollout", withRollout(cfg.FlagConfig, func(ro *ruleset.Rollout) { slices.Reverse(ro.Variations) })},
			"salt":               {"fallthrough.rollout", withRollout(cfg.FlagConfig, func(ro *ruleset.Rollout) { ro.Salt = "other" })},
			"context kind":       {"fallthrough.rollout", withRollout(cfg.FlagConfig, func(ro *ruleset.Rollout) { ro.ContextKind = "device" })},
			"experiment key off": {"fallthrough.rollout", withRollout(cfg.FlagConfig, func(ro *ruleset.Rollout) { ro.ExperimentKey = "" })},
			"experiment key":     {"fallthrough.rollout.experiment_key", withRollout(cfg.FlagConfig, func(ro *ruleset.Rollout) { ro.ExperimentKey = "other" })},
			"removed": {"fallthrough.rollout", func() domain.FlagConfig {
				c := cfg.FlagConfig
				c.Fallthrough = ruleset.Serve{Variation: "on"}
				return c
			}()},
		} {
			t.Run(status+" "+name, func(t *testing.T) {
				refusedAsExperimentRollout(t, s, tc.field, "PUT", path, tc.body)
			})
		}
		// A merge patch of the weights alone, the way a "ramp" would be sent.
		refusedAsExperimentRollout(t, s, "fallthrough.rollout", "PATCH", path, map[string]any{"fallthrough": map[string]any{"rollout": map[string]any{
			"variations": []any{map[string]any{"variation": "off", "weight": 20000}, map[string]any{"variation": "on", "weight": 80000}}}}})
		if status == "running" {
			s.must(200, "POST", xp+"/stop", nil, nil)
		}
	}
	if after := sameRollout(t, s, p, cfg); after.Version != cfg.Version {
		t.Fatalf("refused edits made versions: %d → %d", cfg.Version, after.Version)
	}
}

// TestTargetingAroundARunningExperimentStaysEditable: rules above the fallthrough (which
// decide who enters the experiment) are targeting, not the split: they may change, and the
// rollout, now behind a rule, is still protected under its own name.
func TestTargetingAroundARunningExperimentStaysEditable(t *testing.T) {
	s := newStack(t)
	p, _, cfg := runningExperiment(s)
	path := configPath(p, "checkout", "production")
	rule := map[string]any{"description": "staff see it", "clauses": []any{map[string]any{"attribute": "email", "op": "ends_with", "values": []string{"@acme.test"}}},
		"serve": map[string]any{"variation": "on"}}
	var edited domain.FlagEnvironment
	s.must(200, "PATCH", path, map[string]any{"rules": []any{rule}, "comment": "staff first"}, &edited)
	if len(edited.Rules) != 1 || edited.Version != cfg.Version+1 {
		t.Fatalf("rule added: %+v", edited)
	}
	sameRollout(t, s, p, cfg)
	// What GET returned, with the split edited: refused, naming the fallthrough.
	refusedAsExperimentRollout(t, s, "fallthrough.rollout", "PUT", path, withRollout(edited.FlagConfig, ramp))
	// Copying the experiment's rollout into the rule is refused too.
	copied := edited.FlagConfig
	copied.Rules = slices.Clone(copied.Rules)
	copied.Rules[0].Serve = cfg.Fallthrough
	refusedAsExperimentRollout(t, s, "rules[0].serve.rollout.experiment_key", "PUT", path, copied)
	s.must(200, "PATCH", path, map[string]any{"rules": []any{}}, nil)
	sameRollout(t, s, p, cfg)
}

// TestExperimentKeyIsNotCopiedByHand: an experiment_key on any other rollout — a rule of the
// experiment's flag, another flag, the same flag in another environment, or a key no
// experiment has (yet) — would add that rollout's units to the experiment's analysis.
func TestExperimentKeyIsNotCopiedByHand(t *testing.T) {
	s := newStack(t)
	p, _, cfg := runningExperiment(s)
	s.boolFlag(p, "banner")
	keyed := func(key string) map[string]any {
		return map[string]any{"rollout": map[string]any{"experiment_key": key, "salt": cfg.Fallthrough.Rollout.Salt,
			"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}}}}
	}
	inRule := map[string]any{"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []string{"NL"}}},
		"serve": keyed("checkout-q4")}}}
	refusedAsExperimentRollout(t, s, "rules[0].serve.rollout.experiment_key", "PATCH", configPath(p, "checkout", "production"), inRule)
	refusedAsExperimentRollout(t, s, "fallthrough.rollout.experiment_key", "PUT", configPath(p, "banner", "production"), map[string]any{"on": true, "fallthrough": keyed("checkout-q4")})
	refusedAsExperimentRollout(t, s, "fallthrough.rollout.experiment_key", "PUT", configPath(p, "checkout", "staging"), map[string]any{"on": true, "fallthrough": keyed("checkout-q4")})
	refusedAsExperimentRollout(t, s, "fallthrough.rollout.experiment_key", "PUT", configPath(p, "banner", "production"), map[string]any{"on": true, "fallthrough": keyed("not-yet-created")})
	// A plain percentage rollout is still anyone's to set.
	s.must(200, "PUT", configPath(p, "banner", "production"), map[string]any{"on": true, "fallthrough": rollout(10000, 90000)}, nil)
	sameRollout(t, s, p, cfg)
}

// TestEmergencyChangesKeepWorkingDuringAnExperiment: toggle and kill always work and leave
// the rollout as it is (turning the flag back on serves the same split); the rollout stays
// protected while the flag is off; a scheduled change is an ordinary edit; rolling back to a
// version is an emergency action and may take the rollout away.
func TestEmergencyChangesKeepWorkingDuringAnExperiment(t *testing.T) {
	s := newStack(t)
	p, _, cfg := runningExperiment(s)
	path := configPath(p, "checkout", "production")
	change := func(method, path string, body any) domain.FlagEnvironment {
		t.Helper()
		var fe domain.FlagEnvironment
		s.must(200, method, path, body, &fe)
		return fe
	}
	if fe := change("POST", path+"/toggle", map[string]any{"on": false}); fe.On {
		t.Fatal("toggled off")
	}
	off := sameRollout(t, s, p, cfg)
	refusedAsExperimentRollout(t, s, "fallthrough.rollout", "PUT", path, withRollout(off.FlagConfig, ramp))
	if fe := change("POST", path+"/toggle", map[string]any{"on": true}); !fe.On {
		t.Fatal("toggled on")
	}
	sameRollout(t, s, p, cfg)
	jobs := s.serviceToken(domain.RoleAdmin, "", "")
	if r := s.req("POST", path+"/toggle", jobs, map[string]any{"on": false, "comment": "scheduled"}, "X-Switchyard-Origin", "scheduled"); r.Status != 200 {
		t.Fatalf("scheduled toggle: %d %s", r.Status, r.Body)
	}
	sameRollout(t, s, p, cfg)
	if r := s.req("PUT", path, jobs, withRollout(cfg.FlagConfig, ramp), "X-Switchyard-Origin", "scheduled"); r.Status != 409 || r.errorBody(t).Field != "fallthrough.rollout" {
		t.Fatalf("scheduled ramp: %d %s", r.Status, r.Body)
	}
	change("POST", path+"/toggle", map[string]any{"on": true})
	if fe := change("POST", path+"/kill", map[string]any{"reason": "checkout errors"}); fe.On {
		t.Fatal("killed")
	}
	sameRollout(t, s, p, cfg)
	// Back to the version before the experiment started: the flag no longer serves its split.
	fe := change("POST", path+"/rollback", map[string]any{"to_version": cfg.Version - 1, "comment": "back to before the experiment"})
	if fe.Fallthrough.Rollout != nil || fe.Fallthrough.Variation == "" {
		t.Fatalf("rolled back: %+v", fe.Fallthrough)
	}
}

// TestConcludedExperimentsRolloutIsEditableAgain: once the experiment concludes (here
// inconclusive, which leaves its rollout in place), the flag's fallthrough is the flag's again.
func TestConcludedExperimentsRolloutIsEditableAgain(t *testing.T) {
	s := newStack(t)
	p, xp, cfg := runningExperiment(s)
	path := configPath(p, "checkout", "production")
	ramped := withRollout(cfg.FlagConfig, ramp)
	refusedAsExperimentRollout(t, s, "fallthrough.rollout", "PUT", path, ramped)
	s.must(200, "POST", xp+"/conclude", map[string]any{"outcome": "inconclusive", "rationale": "no difference"}, nil)
	var fe domain.FlagEnvironment
	s.must(200, "PUT", path, ramped, &fe)
	if ro := fe.Fallthrough.Rollout; ro == nil || ro.Variations[1].Weight != 80000 {
		t.Fatalf("edited after the conclusion: %+v", fe.Fallthrough)
	}
	var served domain.FlagEnvironment
	s.must(200, "PATCH", path, map[string]any{"fallthrough": map[string]any{"variation": "on", "rollout": nil}}, &served)
	if served.Fallthrough.Variation != "on" || served.Fallthrough.Rollout != nil {
		t.Fatalf("served after the conclusion: %+v", served.Fallthrough)
	}
}

// TestCloneDropsExperimentKeys: an environment cloned from one with a running experiment gets
// the experiment's rollout as a plain one — the same split and salt, so the same assignments,
// without the experiment's key (an experiment runs in one environment; its key is set only by
// starting it there).
func TestCloneDropsExperimentKeys(t *testing.T) {
	s := newStack(t)
	p, _, cfg := runningExperiment(s)
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/production/clone", map[string]any{"key": "prod-copy", "name": "Production copy"}, nil)
	var cloned domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "prod-copy"), nil, &cloned)
	want := *cfg.Fallthrough.Rollout
	want.ExperimentKey = ""
	if ro := cloned.Fallthrough.Rollout; ro == nil || !reflect.DeepEqual(*ro, want) {
		t.Fatalf("cloned rollout %+v, want %+v", cloned.Fallthrough.Rollout, want)
	}
	sameRollout(t, s, p, cfg) // the source keeps its experiment's rollout
}
