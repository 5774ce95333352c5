package evaluation_test

import (
	"encoding/json"
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

// largeRuleset is an environment of n boolean flags with a rule and a 50/50 rollout each, as
// JSON, and a patch that toggles the first of them (what a stream carries for one toggle).
func largeRuleset(n int) (doc, patch []byte) {
	flag := func(i int, on bool) ruleset.Flag {
		return ruleset.Flag{Key: fmt.Sprintf("flag-%04d", i), Kind: ruleset.KindBoolean, Version: 1, On: on, OffVariation: "off",
			Variations: []ruleset.Variation{{Key: "on", Value: []byte("true")}, {Key: "off", Value: []byte("false")}},
			Rules:      []ruleset.Rule{{ID: "beta", Clauses: []ruleset.Clause{clause("plan", ruleset.OpIn, "beta")}, Serve: ruleset.Serve{Variation: "on"}}},
			Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{
				{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}}}
	}
	rs := ruleset.Ruleset{SchemaVersion: ruleset.SchemaVersion, Environment: ruleset.Environment{ID: "env"}, Version: 1, Segments: []ruleset.Segment{}}
	for i := range n {
		rs.Flags = append(rs.Flags, flag(i, true))
	}
	doc, _ = json.Marshal(rs)
	toggled := flag(0, false)
	toggled.Version = 2
	patch, _ = json.Marshal(map[string]any{"schema_version": ruleset.SchemaVersion, "environment": rs.Environment, "version": 2,
		"base_version": 1, "flags": []ruleset.Flag{toggled}, "deleted_flags": []string{}, "segments": []any{}, "deleted_segments": []string{}})
	return doc, patch
}

// BenchmarkRulesetUpdate: what an SDK spends on one flag toggle in an environment of n flags —
// the whole ruleset decoded and compiled (a put) or the patch applied.
func BenchmarkRulesetUpdate(b *testing.B) {
	for _, n := range []int{1, 1000} {
		doc, patch := largeRuleset(n)
		b.Run(fmt.Sprintf("flags=%d/put", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := evaluation.CompileJSON(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		base, err := evaluation.CompileJSON(doc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("flags=%d/patch", n), func(b *testing.B) {
			b.SetBytes(int64(len(patch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := base.PatchJSON(patch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
