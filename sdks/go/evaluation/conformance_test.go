package evaluation_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// specDir is sdks/spec, which holds the conformance cases every SDK must pass.
var specDir = filepath.Join("..", "..", "spec")

type conformanceSuite struct {
	Name    string          `json:"name"`
	Ruleset json.RawMessage `json:"ruleset"`
	Cases   []struct {
		Name    string          `json:"name"`
		Flag    string          `json:"flag"`
		Context json.RawMessage `json:"context"`
		Type    string          `json:"type"`
		Default json.RawMessage `json:"default"`
		Expect  struct {
			Value         json.RawMessage `json:"value"`
			Variation     *string         `json:"variation"`
			Reason        string          `json:"reason"`
			ErrorCode     string          `json:"error_code"`
			RuleIndex     *int            `json:"rule_index"`
			RuleID        string          `json:"rule_id"`
			ExperimentKey string          `json:"experiment_key"`
		} `json:"expect"`
	} `json:"cases"`
}

func loadSuites(t testing.TB) []conformanceSuite {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(specDir, "testdata", "evaluation", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance suites found (%v)", err)
	}
	var suites []conformanceSuite
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s conformanceSuite
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		suites = append(suites, s)
	}
	return suites
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(bytes.TrimSpace(a)) == 0 {
		a = json.RawMessage("null")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = json.RawMessage("null")
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestConformance runs every case of sdks/spec/testdata/evaluation.
func TestConformance(t *testing.T) {
	total := 0
	for _, suite := range loadSuites(t) {
		t.Run(suite.Name, func(t *testing.T) {
			rs, err := evaluation.CompileJSON(suite.Ruleset)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, c := range suite.Cases {
				total++
				t.Run(c.Name, func(t *testing.T) {
					ctx, _ := evaluation.ParseContext(c.Context)
					res := rs.EvaluateKind(c.Flag, ctx, ruleset.FlagKind(c.Type))
					value := json.RawMessage(res.Value())
					if res.Variation == nil {
						value = c.Default
					}
					want := c.Expect
					wantVariation := ""
					if want.Variation != nil {
						wantVariation = *want.Variation
					}
					wantRule := -1
					if want.RuleIndex != nil {
						wantRule = *want.RuleIndex
					}
					if !jsonEqual(value, want.Value) || res.VariationKey() != wantVariation || string(res.Reason) != want.Reason ||
						string(res.ErrorCode) != want.ErrorCode || res.RuleIndex != wantRule || res.RuleID() != want.RuleID ||
						res.ExperimentKey() != want.ExperimentKey {
						t.Errorf("flag %q context %s:\n got value=%s variation=%q reason=%s error=%q rule=%d/%q experiment=%q\nwant value=%s variation=%q reason=%s error=%q rule=%d/%q experiment=%q",
							c.Flag, c.Context,
							value, res.VariationKey(), res.Reason, res.ErrorCode, res.RuleIndex, res.RuleID(), res.ExperimentKey(),
							want.Value, wantVariation, want.Reason, want.ErrorCode, wantRule, want.RuleID, want.ExperimentKey)
					}
				})
			}
		})
	}
	if total < 300 {
		t.Errorf("only %d conformance cases; the spec promises at least 300", total)
	}
}
