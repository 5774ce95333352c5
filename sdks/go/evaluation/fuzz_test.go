package evaluation_test

import (
	"encoding/json"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// FuzzParseContext: parsing never panics, and a context that parses survives a JSON round trip.
func FuzzParseContext(f *testing.F) {
	for _, s := range []string{
		`{"key":"alice"}`, `{"kind":"user","key":"a","country":"US","n":1.5,"tags":["x",2],"o":{"a":null}}`,
		`{"kind":"multi","user":{"key":"u"},"device":{"kind":"device","key":"d","os":"ios"}}`,
		`{"kind":"multi"}`, `{"key":""}`, `[]`, `null`, `"s"`, `{"key":1}`, `{"kind":"multi","user":{"key":"u"},"device":3}`,
	} {
		f.Add([]byte(s))
	}
	rs, err := evaluation.CompileJSON([]byte(smallRuleset))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := evaluation.ParseContext(data)
		for _, k := range rs.FlagKeys() {
			_ = rs.Evaluate(k, c)
		}
		if err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := evaluation.ParseContext(out)
		if err != nil {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(out) {
			t.Fatalf("round trip changed %s into %s", out, again)
		}
	})
}

// FuzzCompileJSON: compiling arbitrary documents never panics, and neither does evaluating every
// flag of whatever compiled.
func FuzzCompileJSON(f *testing.F) {
	for _, rs := range evaluation.ConformanceRulesets(f) {
		f.Add(rs)
	}
	f.Add([]byte(smallRuleset))
	contexts := []evaluation.Context{
		evaluation.NewContext("alice", evaluation.Attr("country", "US"), evaluation.Attr("age", 30), evaluation.Attr("email", "a@beta.io")),
		evaluation.NewMultiContext(evaluation.NewContext("bob"), evaluation.NewKindContext("device", "d1", evaluation.Attr("os", "ios"))),
		{},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := evaluation.CompileJSON(data)
		if err != nil {
			return
		}
		for _, k := range rs.FlagKeys() {
			for _, c := range contexts {
				r := rs.Evaluate(k, c)
				if r.Reason == "" {
					t.Fatalf("flag %q: empty reason", k)
				}
				_ = r.RuleID()
				_ = r.ExperimentKey()
				_ = r.ContextKind()
				_ = r.PrerequisiteKey()
			}
		}
	})
}
