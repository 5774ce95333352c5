package benchcompare

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gb "github.com/growthbook/growthbook-golang"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ldeval "github.com/launchdarkly/go-server-sdk-evaluation/v3"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// The two flags of the architecture brief, built identically in all three SDKs:
//
//   - "one-percentage-rule": a boolean flag whose one rule (country in [US, CA]) serves a 50/50
//     rollout; the fallthrough serves false.
//   - "five-rules": five rules of three clauses. Rules 0-3 (country in [US, CA, GB], age >= 18,
//     plan in [plan-i]) each fail on their third clause for the benchmark context; rule 4
//     (email ends with @example.com, age < 65, plan in [pro, enterprise]) matches and serves a
//     50/50 rollout. So all 15 clauses are evaluated: the worst case.
//
// The context: key user-7f3a9c21, country US, age 34, plan pro, email ann@example.com.
const (
	onePercentageRule = "one-percentage-rule"
	fiveRules         = "five-rules"
	contextKey        = "user-7f3a9c21"
)

var quiet = slog.New(slog.DiscardHandler)

// --- Switchyard ---

func switchyardRuleset(tb testing.TB) *ruleset.Ruleset {
	tb.Helper()
	vars := []ruleset.Variation{{Key: "true", Value: []byte("true")}, {Key: "false", Value: []byte("false")}}
	split := ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{{Variation: "true", Weight: 50000}, {Variation: "false", Weight: 50000}}}}
	cl := func(attr string, op ruleset.Operator, values ...any) ruleset.Clause {
		return ruleset.Clause{Attribute: attr, Op: op, Values: values}
	}
	var rules []ruleset.Rule
	for i := range 4 {
		rules = append(rules, ruleset.Rule{ID: fmt.Sprintf("rule-%d", i), Serve: ruleset.Serve{Variation: "true"}, Clauses: []ruleset.Clause{
			cl("country", ruleset.OpIn, "US", "CA", "GB"), cl("age", ruleset.OpGreaterEqual, 18), cl("plan", ruleset.OpIn, fmt.Sprintf("plan-%d", i)),
		}})
	}
	rules = append(rules, ruleset.Rule{ID: "rule-4", Serve: split, Clauses: []ruleset.Clause{
		cl("email", ruleset.OpEndsWith, "@example.com"), cl("age", ruleset.OpLessThan, 65), cl("plan", ruleset.OpIn, "pro", "enterprise"),
	}})
	return &ruleset.Ruleset{SchemaVersion: 1, Version: 1, Segments: []ruleset.Segment{}, Flags: []ruleset.Flag{
		{Key: onePercentageRule, Kind: ruleset.KindBoolean, Version: 1, On: true, Variations: vars,
			Rules:       []ruleset.Rule{{ID: "r", Clauses: []ruleset.Clause{cl("country", ruleset.OpIn, "US", "CA")}, Serve: split}},
			Fallthrough: ruleset.Serve{Variation: "false"}},
		{Key: fiveRules, Kind: ruleset.KindBoolean, Version: 1, On: true, Variations: vars, Rules: rules, Fallthrough: ruleset.Serve{Variation: "false"}},
	}}
}

func switchyardContext() evaluation.Context {
	return evaluation.NewContext(contextKey, evaluation.Attr("country", "US"), evaluation.Attr("age", 34),
		evaluation.Attr("plan", "pro"), evaluation.Attr("email", "ann@example.com"))
}

func switchyardClient(tb testing.TB, events bool) *switchyard.Client {
	tb.Helper()
	td := switchyard.NewTestData()
	for _, f := range switchyardRuleset(tb).Flags {
		td.SetFlag(f)
	}
	cfg := switchyard.Config{DataSource: td, Logger: quiet}
	if events {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
		tb.Cleanup(sink.Close)
		cfg.SDKKey, cfg.EventsURL = "bench", sink.URL
	}
	c, err := switchyard.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// --- LaunchDarkly ---

func launchDarklyFlags() []ldmodel.FeatureFlag {
	split := ldbuilders.Rollout(ldbuilders.Bucket(0, 50000), ldbuilders.Bucket(1, 50000))
	s := ldvalue.String
	one := ldbuilders.NewFlagBuilder(onePercentageRule).Version(1).On(true).Variations(ldvalue.Bool(true), ldvalue.Bool(false)).
		AddRule(ldbuilders.NewRuleBuilder().ID("r").Clauses(ldbuilders.Clause("country", ldmodel.OperatorIn, s("US"), s("CA"))).VariationOrRollout(split)).
		FallthroughVariation(1).OffVariation(1).Build()
	five := ldbuilders.NewFlagBuilder(fiveRules).Version(1).On(true).Variations(ldvalue.Bool(true), ldvalue.Bool(false)).FallthroughVariation(1).OffVariation(1)
	for i := range 4 {
		five.AddRule(ldbuilders.NewRuleBuilder().ID(fmt.Sprintf("rule-%d", i)).Variation(0).Clauses(
			ldbuilders.Clause("country", ldmodel.OperatorIn, s("US"), s("CA"), s("GB")),
			ldbuilders.Clause("age", ldmodel.OperatorGreaterThanOrEqual, ldvalue.Int(18)),
			ldbuilders.Clause("plan", ldmodel.OperatorIn, s(fmt.Sprintf("plan-%d", i)))))
	}
	five.AddRule(ldbuilders.NewRuleBuilder().ID("rule-4").VariationOrRollout(split).Clauses(
		ldbuilders.Clause("email", ldmodel.OperatorEndsWith, s("@example.com")),
		ldbuilders.Clause("age", ldmodel.OperatorLessThan, ldvalue.Int(65)),
		ldbuilders.Clause("plan", ldmodel.OperatorIn, s("pro"), s("enterprise"))))
	return []ldmodel.FeatureFlag{one, five.Build()}
}

func launchDarklyContext() ldcontext.Context {
	return ldcontext.NewBuilder(contextKey).SetString("country", "US").SetInt("age", 34).
		SetString("plan", "pro").SetString("email", "ann@example.com").Build()
}

// ldStore is the minimal DataProvider the evaluator needs (no prerequisites, no segments here).
type ldStore map[string]*ldmodel.FeatureFlag

func (s ldStore) GetFeatureFlag(key string) *ldmodel.FeatureFlag { return s[key] }
func (s ldStore) GetSegment(string) *ldmodel.Segment             { return nil }

func launchDarklyEvaluator() (ldeval.Evaluator, ldStore) {
	store := ldStore{}
	for _, f := range launchDarklyFlags() {
		f := f
		ldmodel.PreprocessFlag(&f) // what the SDK does when it stores a flag
		store[f.Key] = &f
	}
	return ldeval.NewEvaluator(store), store
}

func launchDarklyClient(tb testing.TB) *ld.LDClient {
	tb.Helper()
	td := ldtestdata.DataSource()
	for _, f := range launchDarklyFlags() {
		td.UsePreconfiguredFlag(f)
	}
	c, err := ld.MakeCustomClient("bench", ld.Config{DataSource: td, Events: ldcomponents.NoEvents(), Logging: ldcomponents.NoLogging()}, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// --- GrowthBook ---

const growthBookFeatures = `{
 "one-percentage-rule": {"defaultValue": false, "rules": [
   {"id": "r", "condition": {"country": {"$in": ["US", "CA"]}}, "variations": [true, false], "weights": [0.5, 0.5],
    "coverage": 1, "hashAttribute": "id", "key": "one-percentage-rule"}]},
 "five-rules": {"defaultValue": false, "rules": [
   {"id": "rule-0", "condition": {"country": {"$in": ["US", "CA", "GB"]}, "age": {"$gte": 18}, "plan": {"$in": ["plan-0"]}}, "force": true},
   {"id": "rule-1", "condition": {"country": {"$in": ["US", "CA", "GB"]}, "age": {"$gte": 18}, "plan": {"$in": ["plan-1"]}}, "force": true},
   {"id": "rule-2", "condition": {"country": {"$in": ["US", "CA", "GB"]}, "age": {"$gte": 18}, "plan": {"$in": ["plan-2"]}}, "force": true},
   {"id": "rule-3", "condition": {"country": {"$in": ["US", "CA", "GB"]}, "age": {"$gte": 18}, "plan": {"$in": ["plan-3"]}}, "force": true},
   {"id": "rule-4", "condition": {"email": {"$regex": "@example\\.com$"}, "age": {"$lt": 65}, "plan": {"$in": ["pro", "enterprise"]}},
    "variations": [true, false], "weights": [0.5, 0.5], "coverage": 1, "hashAttribute": "id", "key": "five-rules"}]}
}`

func growthBookClient(tb testing.TB) *gb.Client {
	tb.Helper()
	base, err := gb.NewClient(context.Background(), gb.WithJsonFeatures(growthBookFeatures), gb.WithLogger(quiet))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = base.Close() })
	child, err := base.WithAttributes(gb.Attributes{"id": contextKey, "country": "US", "age": 34, "plan": "pro", "email": "ann@example.com"})
	if err != nil {
		tb.Fatal(err)
	}
	return child
}

// TestEquivalentFlags checks that the three SDKs do the same work: the same rule matches, and a
// context outside every rule gets the fallthrough/default.
func TestEquivalentFlags(t *testing.T) {
	rs, err := evaluation.Compile(switchyardRuleset(t))
	if err != nil {
		t.Fatal(err)
	}
	ev, store := launchDarklyEvaluator()
	ldc := launchDarklyClient(t)
	gbc := growthBookClient(t)
	for _, tc := range []struct {
		flag string
		rule int
	}{{onePercentageRule, 0}, {fiveRules, 4}} {
		if r := rs.Evaluate(tc.flag, switchyardContext()); r.RuleIndex != tc.rule || r.Reason != evaluation.ReasonSplit {
			t.Errorf("switchyard %s: rule %d, reason %s", tc.flag, r.RuleIndex, r.Reason)
		}
		r := ev.Evaluate(store[tc.flag], launchDarklyContext(), nil)
		if r.Detail.Reason.GetKind() != ldreason.EvalReasonRuleMatch || r.Detail.Reason.GetRuleIndex() != tc.rule {
			t.Errorf("launchdarkly evaluator %s: %v", tc.flag, r.Detail.Reason)
		}
		if _, d, _ := ldc.BoolVariationDetail(tc.flag, launchDarklyContext(), false); d.Reason.GetRuleIndex() != tc.rule {
			t.Errorf("launchdarkly client %s: %v", tc.flag, d.Reason)
		}
		if res := gbc.EvalFeature(context.Background(), tc.flag); res.RuleId != fmt.Sprintf("rule-%d", tc.rule) && !(tc.rule == 0 && res.RuleId == "r") {
			t.Errorf("growthbook %s: rule %q, source %s", tc.flag, res.RuleId, res.Source)
		}
	}
}

// BenchmarkOnePercentageRule measures one evaluation of "one-percentage-rule" (see the top of the
// file) for a prebuilt context, per SDK: the engine alone where the SDK exposes one, and the
// client call an application makes (events off, except "switchyard-client-events").
func BenchmarkOnePercentageRule(b *testing.B) { benchmarkFlag(b, onePercentageRule) }

// BenchmarkFiveRulesThreeClauses measures one evaluation of "five-rules" (15 clauses evaluated).
func BenchmarkFiveRulesThreeClauses(b *testing.B) { benchmarkFlag(b, fiveRules) }

func benchmarkFlag(b *testing.B, key string) {
	b.Run("switchyard-engine", func(b *testing.B) {
		rs, err := evaluation.Compile(switchyardRuleset(b))
		if err != nil {
			b.Fatal(err)
		}
		ctx := switchyardContext()
		b.ReportAllocs()
		for b.Loop() {
			_ = rs.Evaluate(key, ctx)
		}
	})
	b.Run("switchyard-client", func(b *testing.B) {
		c := switchyardClient(b, false)
		ctx := switchyardContext()
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Bool(ctx, key, false)
		}
	})
	b.Run("switchyard-client-events", func(b *testing.B) {
		c := switchyardClient(b, true)
		ctx := switchyardContext()
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Bool(ctx, key, false)
		}
	})
	b.Run("launchdarkly-evaluator", func(b *testing.B) {
		ev, store := launchDarklyEvaluator()
		ctx := launchDarklyContext()
		b.ReportAllocs()
		for b.Loop() {
			_ = ev.Evaluate(store[key], ctx, nil)
		}
	})
	b.Run("launchdarkly-client", func(b *testing.B) {
		c := launchDarklyClient(b)
		ctx := launchDarklyContext()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.BoolVariation(key, ctx, false)
		}
	})
	b.Run("growthbook-client", func(b *testing.B) {
		c := growthBookClient(b)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_ = c.EvalFeature(ctx, key)
		}
	})
}
