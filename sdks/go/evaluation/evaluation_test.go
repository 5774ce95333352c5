package evaluation_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func TestParseContext(t *testing.T) {
	for _, tc := range []struct {
		name  string
		json  string
		kinds []string
		keys  []string
		err   error
	}{
		{"single with kind", `{"kind":"device","key":"d1","os":"ios"}`, []string{"device"}, []string{"d1"}, nil},
		{"kind defaults to user", `{"key":"alice"}`, []string{"user"}, []string{"alice"}, nil},
		{"multi sorted by kind", `{"kind":"multi","user":{"key":"u"},"device":{"key":"d"}}`, []string{"device", "user"}, []string{"d", "u"}, nil},
		{"missing key", `{"kind":"user"}`, nil, nil, evaluation.ErrTargetingKeyMissing},
		{"empty key", `{"key":""}`, nil, nil, evaluation.ErrTargetingKeyMissing},
		{"multi part without key", `{"kind":"multi","user":{"name":"x"}}`, nil, nil, evaluation.ErrTargetingKeyMissing},
		{"numeric key", `{"key":1}`, nil, nil, evaluation.ErrInvalidContext},
		{"not an object", `[1]`, nil, nil, evaluation.ErrInvalidContext},
		{"not JSON", `{`, nil, nil, evaluation.ErrInvalidContext},
		{"null", `null`, nil, nil, evaluation.ErrInvalidContext},
		{"invalid kind", `{"kind":"a b","key":"x"}`, nil, nil, evaluation.ErrInvalidContext},
		{"multi without kinds", `{"kind":"multi"}`, nil, nil, evaluation.ErrInvalidContext},
		{"nested multi", `{"kind":"multi","multi":{"key":"x"}}`, nil, nil, evaluation.ErrInvalidContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := evaluation.ParseContext([]byte(tc.json))
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !errors.Is(c.Err(), tc.err) || (tc.err == nil) != (c.Err() == nil) {
				t.Fatalf("Context.Err() = %v, want %v", c.Err(), tc.err)
			}
			if err != nil {
				return
			}
			if got := c.Kinds(); !slices.Equal(got, tc.kinds) {
				t.Errorf("kinds = %v, want %v", got, tc.kinds)
			}
			for i, k := range tc.kinds {
				if key, ok := c.Key(k); !ok || key != tc.keys[i] {
					t.Errorf("key of %s = %q, %v; want %q", k, key, ok, tc.keys[i])
				}
			}
		})
	}
}

func TestContextBuilders(t *testing.T) {
	c := evaluation.NewContext("alice",
		evaluation.Attr("country", "US"),
		evaluation.Attr("country", "CA"),  // a later attribute replaces an earlier one
		evaluation.Attr("key", "mallory"), // cannot shadow the key
		evaluation.Attr("tags", []string{"a", "b"}),
		evaluation.Attr("age", int64(30)),
	)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("user", "country"); v.Any() != "CA" {
		t.Errorf("country = %v, want CA", v.Any())
	}
	if v, _ := c.Get("user", "key"); v.Any() != "alice" {
		t.Errorf("key = %v, want alice", v.Any())
	}
	if v, _ := c.Get("user", "age"); v.Type() != evaluation.TypeNumber || v.Any() != 30.0 {
		t.Errorf("age = %v (%v)", v.Any(), v.Type())
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back evaluation.Context
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Errorf("JSON round trip: %s became %s", data, again)
	}

	m := evaluation.NewMultiContext(evaluation.NewKindContext("device", "d1"), c)
	if got := m.Kinds(); !slices.Equal(got, []string{"device", "user"}) || !m.IsMulti() {
		t.Errorf("multi kinds = %v", got)
	}
	if kind, key := m.Primary(); kind != "user" || key != "alice" {
		t.Errorf("Primary() = %s/%s, want user/alice", kind, key)
	}
	for name, bad := range map[string]evaluation.Context{
		"duplicate kind":  evaluation.NewMultiContext(c, c),
		"no parts":        evaluation.NewMultiContext(),
		"invalid part":    evaluation.NewMultiContext(c, evaluation.NewKindContext("multi", "x")),
		"empty key":       evaluation.NewContext(""),
		"zero value":      {},
		"reserved kind":   evaluation.NewKindContext("kind", "x"),
		"kind with space": evaluation.NewKindContext("my kind", "x"),
	} {
		if bad.Err() == nil {
			t.Errorf("%s: Err() = nil", name)
		}
	}
}

func TestValueOf(t *testing.T) {
	type custom struct {
		A int `json:"a"`
	}
	for _, tc := range []struct {
		in   any
		typ  evaluation.ValueType
		want any
	}{
		{nil, evaluation.TypeNull, nil},
		{true, evaluation.TypeBool, true},
		{"s", evaluation.TypeString, "s"},
		{3, evaluation.TypeNumber, 3.0},
		{uint8(3), evaluation.TypeNumber, 3.0},
		{float32(1.5), evaluation.TypeNumber, 1.5},
		{json.Number("12"), evaluation.TypeNumber, 12.0},
		{[]any{1, "x"}, evaluation.TypeArray, []any{1.0, "x"}},
		{map[string]any{"k": false}, evaluation.TypeObject, map[string]any{"k": false}},
		{custom{A: 2}, evaluation.TypeObject, map[string]any{"a": 2.0}},
	} {
		v := evaluation.ValueOf(tc.in)
		if v.Type() != tc.typ || !reflect.DeepEqual(v.Any(), tc.want) {
			t.Errorf("ValueOf(%#v) = %v (%v), want %v (%v)", tc.in, v.Any(), v.Type(), tc.want, tc.typ)
		}
	}
}

func TestCompileJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		err  error
	}{
		{"not JSON", `{`, evaluation.ErrMalformedRuleset},
		{"array", `[]`, evaluation.ErrMalformedRuleset},
		{"no schema version", `{"flags":[],"segments":[]}`, evaluation.ErrUnsupportedSchema},
		{"schema version 2", `{"schema_version":2,"flags":[],"segments":[]}`, evaluation.ErrUnsupportedSchema},
		{"no flags", `{"schema_version":1,"segments":[]}`, evaluation.ErrMalformedRuleset},
		{"flags not an array", `{"schema_version":1,"flags":{},"segments":[]}`, evaluation.ErrMalformedRuleset},
		{"environment not an object", `{"schema_version":1,"environment":3,"flags":[],"segments":[]}`, evaluation.ErrMalformedRuleset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := evaluation.CompileJSON([]byte(tc.doc)); !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := evaluation.Compile(nil); !errors.Is(err, evaluation.ErrMalformedRuleset) {
		t.Errorf("Compile(nil) = %v", err)
	}
}

const smallRuleset = `{"schema_version":1,"version":7,
 "environment":{"id":"env-1","key":"prod","project_id":"p-1","project_key":"shop"},
 "flags":[
  {"key":"b","kind":"string","version":3,"on":true,"client_side":true,
   "variations":[{"key":"x","value":"X"},{"key":"y","value":"Y"}],"off_variation":"y",
   "prerequisites":[{"flag":"a","variation":"on"}],
   "targets":[{"context_kind":"device","variation":"x","values":["d1"]}],
   "rules":[{"id":"exp","clauses":[{"attribute":"beta","op":"in","values":[true]}],
     "serve":{"rollout":{"context_kind":"user","experiment_key":"exp-1","variations":[{"variation":"x","weight":100000},{"variation":"y","weight":0}]}}}],
   "fallthrough":{"variation":"y"}},
  {"key":"a","kind":"boolean","version":1,"on":true,"variations":[{"key":"on","value":true},{"key":"off","value":false}],
   "targets":[{"context_kind":"user","variation":"off","values":["blocked"]}],"fallthrough":{"variation":"on"}},
  {"key":"broken","kind":"boolean","version":1,"on":"yes"}
 ],
 "segments":[{"key":"s","version":1,"included":[{"context_kind":"","values":["x"]}]}]}`

func TestRulesetAccessors(t *testing.T) {
	rs, err := evaluation.CompileJSON([]byte(smallRuleset))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Version() != 7 || rs.Environment().Key != "prod" {
		t.Errorf("version %d, environment %+v", rs.Version(), rs.Environment())
	}
	if got := rs.FlagKeys(); !slices.Equal(got, []string{"a", "b", "broken"}) {
		t.Errorf("FlagKeys() = %v", got)
	}
	if got := rs.ClientSideFlagKeys(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("ClientSideFlagKeys() = %v", got)
	}
	if info, ok := rs.Flag("broken"); !ok || !info.Malformed {
		t.Errorf("Flag(broken) = %+v, %v", info, ok)
	}
	problems := rs.Problems()
	if len(problems) != 2 || problems[0].Segment != "s" || problems[1].Flag != "broken" {
		t.Errorf("Problems() = %v", problems)
	}
	all := rs.EvaluateAll(evaluation.NewContext("alice"), true)
	if len(all) != 1 || all[0].FlagKey() != "b" || all[0].VariationKey() != "y" {
		t.Errorf("EvaluateAll(client side) = %+v", all)
	}
	if n := len(rs.EvaluateAll(evaluation.NewContext("alice"), false)); n != 3 {
		t.Errorf("EvaluateAll = %d results", n)
	}
}

func TestResultDetails(t *testing.T) {
	rs, err := evaluation.CompileJSON([]byte(smallRuleset))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                                   string
		ctx                                    evaluation.Context
		reason                                 evaluation.Reason
		variation, ruleID, experiment, ctxKind string
		prereq                                 string
	}{
		{"prerequisite failed", evaluation.NewContext("blocked"), evaluation.ReasonPrerequisiteFailed, "y", "", "", "", "a"},
		{"target on device", evaluation.NewMultiContext(evaluation.NewContext("u"), evaluation.NewKindContext("device", "d1")),
			evaluation.ReasonTargetingMatch, "x", "", "", "device", ""},
		{"experiment rule", evaluation.NewContext("u", evaluation.Attr("beta", true)), evaluation.ReasonSplit, "x", "exp", "exp-1", "user", ""},
		{"rule clause on a kind the context lacks", evaluation.NewMultiContext(evaluation.NewKindContext("org", "o", evaluation.Attr("beta", true))),
			evaluation.ReasonDefault, "y", "", "", "", ""},
		{"fallthrough", evaluation.NewContext("u"), evaluation.ReasonDefault, "y", "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rs.Evaluate("b", tc.ctx)
			if r.Reason != tc.reason || r.VariationKey() != tc.variation || r.RuleID() != tc.ruleID ||
				r.ExperimentKey() != tc.experiment || r.ContextKind() != tc.ctxKind || r.PrerequisiteKey() != tc.prereq {
				t.Errorf("got reason=%s variation=%q rule=%q experiment=%q kind=%q prereq=%q", r.Reason, r.VariationKey(),
					r.RuleID(), r.ExperimentKey(), r.ContextKind(), r.PrerequisiteKey())
			}
			if r.FlagKey() != "b" || r.FlagKind() != ruleset.KindString || r.FlagVersion() != 3 {
				t.Errorf("flag %q %q %d", r.FlagKey(), r.FlagKind(), r.FlagVersion())
			}
		})
	}
	var nilRuleset *evaluation.Ruleset
	if r := nilRuleset.Evaluate("b", evaluation.NewContext("u")); r.ErrorCode != evaluation.ErrorFlagNotFound || r.Variation != nil {
		t.Errorf("nil ruleset: %+v", r)
	}
	if r := rs.EvaluateJSON("a", []byte(`{"key":"u"}`)); r.Variation == nil || !r.Variation.Bool {
		t.Errorf("EvaluateJSON = %+v", r)
	}
	if r := rs.EvaluateJSON("a", []byte(`{"key":`)); r.ErrorCode != evaluation.ErrorInvalidContext {
		t.Errorf("EvaluateJSON with bad context = %+v", r)
	}
}

// TestCompileMatchesCompileJSON: compiling the decoded Go value gives the same results as compiling
// the JSON, for every conformance suite whose flags all decode.
func TestCompileMatchesCompileJSON(t *testing.T) {
	for _, suite := range loadSuites(t) {
		var doc ruleset.Ruleset
		if json.Unmarshal(suite.Ruleset, &doc) != nil {
			continue // the malformed suite has flags that do not decode
		}
		fromJSON, err := evaluation.CompileJSON(suite.Ruleset)
		if err != nil {
			t.Fatal(err)
		}
		fromGo, err := evaluation.Compile(&doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range suite.Cases {
			ctx, _ := evaluation.ParseContext(c.Context)
			a, b := fromJSON.Evaluate(c.Flag, ctx), fromGo.Evaluate(c.Flag, ctx)
			if a.VariationKey() != b.VariationKey() || a.Reason != b.Reason || a.ErrorCode != b.ErrorCode || a.RuleIndex != b.RuleIndex {
				t.Errorf("%s/%s: CompileJSON gives %s/%s, Compile gives %s/%s", suite.Name, c.Name, a.VariationKey(), a.Reason, b.VariationKey(), b.Reason)
			}
		}
	}
}

func TestChangedFlags(t *testing.T) {
	doc := func(flagVersion, segmentVersion int64, extra bool) *evaluation.Ruleset {
		seg := ruleset.Clause{Op: ruleset.OpSegmentMatch, Values: []any{"outer"}}
		f := func(key string, version int64, clauses ...ruleset.Clause) ruleset.Flag {
			fl := ruleset.Flag{Key: key, Kind: ruleset.KindBoolean, Version: version, On: true, Variations: boolVariations,
				Fallthrough: ruleset.Serve{Variation: "control"}}
			if len(clauses) > 0 {
				fl.Rules = []ruleset.Rule{{Clauses: clauses, Serve: ruleset.Serve{Variation: "treatment"}}}
			}
			return fl
		}
		// Flags whose prerequisites change can serve other values: they change with them.
		prereq := func(fl ruleset.Flag, on string) ruleset.Flag {
			fl.Prerequisites, fl.OffVariation = []ruleset.Prerequisite{{Flag: on, Variation: "treatment"}}, "control"
			return fl
		}
		flags := []ruleset.Flag{f("plain", flagVersion), f("stable", 1), f("uses-segment", 1, seg),
			prereq(f("gated", 1), "plain"), prereq(f("gated-twice", 1), "gated"), prereq(f("gated-by-segment", 1), "uses-segment")}
		if extra {
			flags = append(flags, f("extra", 1))
		}
		rs, err := evaluation.Compile(&ruleset.Ruleset{SchemaVersion: 1, Flags: flags, Segments: []ruleset.Segment{
			{Key: "outer", Version: 1, Rules: []ruleset.SegmentRule{{Clauses: []ruleset.Clause{{Op: ruleset.OpSegmentMatch, Values: []any{"inner"}}}}}},
			{Key: "inner", Version: segmentVersion},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	base := doc(1, 1, false)
	for _, tc := range []struct {
		name string
		next *evaluation.Ruleset
		want []string
	}{
		{"nothing", doc(1, 1, false), nil},
		{"flag version", doc(2, 1, false), []string{"gated", "gated-twice", "plain"}},
		{"nested segment version", doc(1, 2, false), []string{"gated-by-segment", "uses-segment"}},
		{"flag added", doc(1, 1, true), []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.next.ChangedFlags(base); !slices.Equal(got, tc.want) {
				t.Errorf("ChangedFlags = %v, want %v", got, tc.want)
			}
		})
	}
	if got := base.ChangedFlags(doc(1, 1, true)); !slices.Equal(got, []string{"extra"}) {
		t.Errorf("removed flag: %v", got)
	}
	if got := base.ChangedFlags(nil); len(got) != 6 {
		t.Errorf("from nil: %v", got)
	}
}
