package api_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// hostInRules puts the running experiment's rollout (cfg's fallthrough) into rules, each
// serving it for one country, with "off" as the fallthrough. No API edit does this today
// (starting sets the fallthrough, and an experiment_key on a new place is refused); it is the
// state of a configuration written before that check, which a rollback can bring back. It goes
// through the service as an unguarded change, with its version, audit entry and outbox row.
func hostInRules(t *testing.T, s *stack, p string, cfg domain.FlagEnvironment, countries ...string) domain.FlagEnvironment {
	t.Helper()
	pr, err := s.app.Services.Tokens.Authenticate(t.Context(), s.owner)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.app.Services.Flags.ChangeConfig(t.Context(), audit.Caller{P: pr}, p, "checkout", "production", flags.ConfigChange{
		Change: flags.ChangeExperiment, Comment: "configuration from before the experiment-key check",
		Edit: func(_ context.Context, _ *store.Tx, c *domain.FlagConfig, _ *domain.Flag, _ string) error {
			c.Rules = nil
			for _, country := range countries {
				ro := *cfg.Fallthrough.Rollout
				ro.Variations = slices.Clone(ro.Variations)
				c.Rules = append(c.Rules, ruleset.Rule{Clauses: []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{country}}},
					Serve: ruleset.Serve{Rollout: &ro}})
			}
			c.Fallthrough = ruleset.Serve{Variation: "off"}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Rules {
		if r.ID == "" || r.Serve.Rollout == nil || r.Serve.Rollout.ExperimentKey != cfg.Fallthrough.Rollout.ExperimentKey {
			t.Fatalf("rule-hosted rollout: %+v", out.Rules)
		}
	}
	return out
}

// withoutRuleIDs returns cfg's rules (deep copies) without their ids, edited by edit.
func withoutRuleIDs(cfg domain.FlagConfig, edit func(rules []ruleset.Rule) []ruleset.Rule) domain.FlagConfig {
	rules := make([]ruleset.Rule, len(cfg.Rules))
	for i, r := range cfg.Rules {
		r.ID = ""
		if r.Serve.Rollout != nil {
			ro := *r.Serve.Rollout
			ro.Variations = slices.Clone(ro.Variations)
			r.Serve.Rollout = &ro
		}
		rules[i] = r
	}
	cfg.Rules = edit(rules)
	return cfg
}

func unchanged(rules []ruleset.Rule) []ruleset.Rule { return rules }

// TestARunningExperimentsRuleSentBackWithoutItsIDIsAccepted: a configuration PUT back with the
// running experiment's rule-hosted rollout unchanged but without the rule's id (written by
// hand, or by a tool that drops ids) is that rule: accepted, its id kept. A change of the
// rollout is still refused, naming it, and so is a second rule with the experiment's key, or
// a rule that cannot be told apart from another carrying it.
func TestARunningExperimentsRuleSentBackWithoutItsIDIsAccepted(t *testing.T) {
	s := newStack(t)
	p, _, started := runningExperiment(s)
	path := configPath(p, "checkout", "production")
	hosted := hostInRules(t, s, p, started, "NL")
	id := hosted.Rules[0].ID
	keepsRule := func(t *testing.T, fe domain.FlagEnvironment, at int) {
		t.Helper()
		if len(fe.Rules) <= at || fe.Rules[at].ID != id || !reflect.DeepEqual(fe.Rules[at].Serve, hosted.Rules[0].Serve) {
			t.Fatalf("rules[%d] should be the experiment's rule %q, its rollout unchanged: %+v", at, id, fe.Rules)
		}
	}

	// get decodes into a fresh value (decoding into a used one keeps fields a rule leaves out).
	get := func(want int, method string, body any) domain.FlagEnvironment {
		t.Helper()
		var fe domain.FlagEnvironment
		s.must(want, method, path, body, &fe)
		return fe
	}
	// Sent back as GET returned it, minus the id: nothing changes (no new version).
	fe := get(200, "PUT", withoutRuleIDs(hosted.FlagConfig, unchanged))
	if fe.Version != hosted.Version {
		t.Fatalf("an unchanged configuration made version %d (was %d): %+v", fe.Version, hosted.Version, fe.Rules)
	}
	keepsRule(t, fe, 0)
	// With a new rule above it (targeting stays editable): the experiment's rule keeps its id.
	staff := ruleset.Rule{Description: "staff", Clauses: []ruleset.Clause{{Attribute: "email", Op: ruleset.OpEndsWith, Values: []any{"@acme.test"}}},
		Serve: ruleset.Serve{Variation: "on"}}
	fe = get(200, "PUT", withoutRuleIDs(hosted.FlagConfig, func(r []ruleset.Rule) []ruleset.Rule { return append([]ruleset.Rule{staff}, r...) }))
	if fe.Version != hosted.Version+1 || fe.Rules[0].ID == "" || fe.Rules[0].ID == id {
		t.Fatalf("rule added: version %d, rules %+v", fe.Version, fe.Rules)
	}
	keepsRule(t, fe, 1)
	current := get(200, "GET", nil)
	keepsRule(t, current, 1)

	// Still refused without the id: a change of the split, a second carrier of the key.
	for name, tc := range map[string]struct {
		field string
		edit  func([]ruleset.Rule) []ruleset.Rule
	}{
		// (the split: the message says to conclude and start a new experiment)
		"weights": {"rules[1].serve.rollout", func(r []ruleset.Rule) []ruleset.Rule {
			r[1].Serve.Rollout.Variations[0].Weight, r[1].Serve.Rollout.Variations[1].Weight = 20000, 80000
			return r
		}},
		"salt":      {"rules[1].serve.rollout", func(r []ruleset.Rule) []ruleset.Rule { r[1].Serve.Rollout.Salt = "other"; return r }},
		"bucketing": {"rules[1].serve.rollout", func(r []ruleset.Rule) []ruleset.Rule { r[1].Serve.Rollout.BucketBy = "email"; return r }},
		"variations": {"rules[1].serve.rollout", func(r []ruleset.Rule) []ruleset.Rule {
			slices.Reverse(r[1].Serve.Rollout.Variations)
			return r
		}},
	} {
		t.Run(name, func(t *testing.T) {
			refusedAsExperimentRollout(t, s, tc.field, "PUT", path, withoutRuleIDs(current.FlagConfig, tc.edit))
		})
	}
	// Two id-less rules carrying the key: the second is refused, named.
	twice := withoutRuleIDs(current.FlagConfig, func(r []ruleset.Rule) []ruleset.Rule {
		second := r[1]
		second.Clauses = []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{"BE"}}}
		return append(r, second)
	})
	s.refused(409, "rules[2].serve.rollout.experiment_key", "PUT", path, twice)
	// The rule sent with its id and an id-less copy of it: the copy is refused, named.
	withCopy := current.FlagConfig
	withCopy.Rules = append(slices.Clone(current.Rules), withoutRuleIDs(current.FlagConfig, unchanged).Rules[1])
	withCopy.Rules[2].Clauses = []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{"BE"}}}
	s.refused(409, "rules[2].serve.rollout.experiment_key", "PUT", path, withCopy)
	if fe = get(200, "GET", nil); fe.Version != current.Version {
		t.Fatalf("refused edits made versions: %d → %d", current.Version, fe.Version)
	}
	keepsRule(t, fe, 1)

	// Two rules carry the key already (older data): an id-less rule matches neither.
	two := hostInRules(t, s, p, started, "NL", "BE")
	s.refused(409, "rules[0].serve.rollout.experiment_key", "PUT", path, withoutRuleIDs(two.FlagConfig, unchanged))
	// With their ids, the same configuration is accepted (and changes nothing).
	if fe = get(200, "PUT", two.FlagConfig); fe.Version != two.Version {
		t.Fatalf("version %d, was %d", fe.Version, two.Version)
	}
}
