package evaluation_test

import (
	"fmt"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func clause(attr string, op ruleset.Operator, values ...any) ruleset.Clause {
	return ruleset.Clause{Attribute: attr, Op: op, Values: values}
}

// benchRuleset holds the flags the benchmarks (and the allocation test) evaluate. The benchcompare
// module builds the same flags for LaunchDarkly's and GrowthBook's SDKs.
func benchRuleset(t testing.TB) *evaluation.Ruleset {
	targets := make([]string, 1000)
	for i := range targets {
		targets[i] = fmt.Sprintf("target-%d", i)
	}
	rules5 := make([]ruleset.Rule, 5)
	for i := range 4 {
		// Each of the first four rules passes two clauses and fails the third: the worst case.
		rules5[i] = ruleset.Rule{
			ID: fmt.Sprintf("rule-%d", i),
			Clauses: []ruleset.Clause{
				clause("country", ruleset.OpIn, "US", "CA", "GB"),
				clause("age", ruleset.OpGreaterEqual, 18),
				clause("plan", ruleset.OpIn, fmt.Sprintf("plan-%d", i)),
			},
			Serve: ruleset.Serve{Variation: "treatment"},
		}
	}
	rules5[4] = ruleset.Rule{
		ID: "rule-4",
		Clauses: []ruleset.Clause{
			clause("email", ruleset.OpEndsWith, "@example.com"),
			clause("age", ruleset.OpLessThan, 65),
			clause("plan", ruleset.OpIn, "pro", "enterprise"),
		},
		Serve: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{wv("treatment", 50000), wv("control", 50000)}}},
	}
	return compileFlags(t,
		ruleset.Flag{
			Key: "one-percentage-rule", Kind: ruleset.KindBoolean, Variations: boolVariations, On: true,
			Rules: []ruleset.Rule{{ID: "r", Clauses: []ruleset.Clause{clause("country", ruleset.OpIn, "US", "CA")},
				Serve: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{wv("treatment", 50000), wv("control", 50000)}}}}},
			Fallthrough: ruleset.Serve{Variation: "control"},
		},
		ruleset.Flag{
			Key: "five-rules", Kind: ruleset.KindBoolean, Variations: boolVariations, On: true,
			Rules: rules5, Fallthrough: ruleset.Serve{Variation: "control"},
		},
		ruleset.Flag{
			Key: "targets", Kind: ruleset.KindBoolean, Variations: boolVariations, On: true,
			Targets:     []ruleset.Target{{ContextKind: "user", Variation: "treatment", Values: targets}},
			Fallthrough: ruleset.Serve{Variation: "control"},
		},
		ruleset.Flag{
			Key: "regex", Kind: ruleset.KindBoolean, Variations: boolVariations, On: true,
			Rules:       []ruleset.Rule{{Clauses: []ruleset.Clause{clause("email", ruleset.OpMatches, `^[a-z]+@example\.(com|org)$`)}, Serve: ruleset.Serve{Variation: "treatment"}}},
			Fallthrough: ruleset.Serve{Variation: "control"},
		},
		ruleset.Flag{
			Key: "off", Kind: ruleset.KindBoolean, Variations: boolVariations, OffVariation: "control",
			Fallthrough: ruleset.Serve{Variation: "control"},
		},
	)
}

func benchContext() evaluation.Context {
	return evaluation.NewContext("user-7f3a9c21",
		evaluation.Attr("country", "US"),
		evaluation.Attr("age", 34),
		evaluation.Attr("plan", "pro"),
		evaluation.Attr("email", "ann@example.com"),
	)
}

// TestHotPathAllocationFree: evaluating a compiled flag for a built context allocates nothing.
func TestHotPathAllocationFree(t *testing.T) {
	rs := benchRuleset(t)
	ctx := benchContext()
	for _, key := range []string{"one-percentage-rule", "five-rules", "targets", "regex", "off", "missing"} {
		if n := testing.AllocsPerRun(200, func() { _ = rs.Evaluate(key, ctx) }); n != 0 {
			t.Errorf("Evaluate(%q) allocates %v times per call", key, n)
		}
	}
}

// BenchmarkEvaluate measures local evaluation of precompiled flags for a prebuilt context: the cost
// an application pays per flag check. "one-percentage-rule" and "five-rules" are the targets of
// the architecture brief (≤ 100 ns and 0 allocs; ≤ 500 ns).
func BenchmarkEvaluate(b *testing.B) {
	rs := benchRuleset(b)
	ctx := benchContext()
	for _, key := range []string{"one-percentage-rule", "five-rules", "targets", "regex", "off"} {
		b.Run(key, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = rs.Evaluate(key, ctx)
			}
		})
	}
}

// BenchmarkEvaluateJSON measures evaluation from a JSON context (parsing included), as a relay's
// remote evaluation does per request.
func BenchmarkEvaluateJSON(b *testing.B) {
	rs := benchRuleset(b)
	ctx := []byte(`{"kind":"user","key":"user-7f3a9c21","country":"US","age":34,"plan":"pro","email":"ann@example.com"}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = rs.EvaluateJSON("one-percentage-rule", ctx)
	}
}

// BenchmarkNewContext measures building a context with four attributes (the caller's cost when it
// builds a context per request).
func BenchmarkNewContext(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = benchContext()
	}
}
