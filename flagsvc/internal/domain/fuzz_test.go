package domain

import (
	"encoding/json"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// FuzzValidateConfig feeds arbitrary JSON to the configuration decoder and validator the API
// uses: they must never panic, and whatever they accept must survive a JSON round trip and
// still validate (so what is stored is what was checked).
func FuzzValidateConfig(f *testing.F) {
	seeds := []string{
		`{"on":true,"fallthrough":{"variation":"on"}}`,
		`{"rules":[{"clauses":[{"attribute":"email","op":"matches","values":["^a.*@x\\.com$"]}],"serve":{"variation":"off"}}],"fallthrough":{"variation":"on"}}`,
		`{"fallthrough":{"rollout":{"variations":[{"variation":"on","weight":50000},{"variation":"off","weight":50000}]}}}`,
		`{"targets":[{"context_kind":"user","variation":"on","values":["a","b"]}],"fallthrough":{"variation":"on"}}`,
		`{"rules":[{"clauses":[{"attribute":"v","op":"semver_gt","values":["1.2.3-beta.1"]},{"attribute":"t","op":"before","values":[1700000000000]}],"serve":{"variation":"on"}}],"fallthrough":{"variation":"off"}}`,
		`{"rules":[{"clauses":[{"attribute":"n","op":"gte","values":[1e308]}],"serve":{"rollout":{"variations":[{"variation":"on","weight":100000}]}}}],"fallthrough":{"variation":"off"}}`,
		`{"prerequisites":[{"flag":"x","variation":"on"}],"off_variation":"off","fallthrough":{"variation":"on"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	flag := Flag{Key: "f", Kind: ruleset.KindBoolean, Variations: []ruleset.Variation{
		{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c FlagConfig
		if json.Unmarshal(data, &c) != nil {
			return
		}
		c.Normalize()
		if ValidateConfig(&flag, &c) != nil {
			return
		}
		var again FlagConfig
		if err := json.Unmarshal(ConfigJSON(&c), &again); err != nil {
			t.Fatalf("accepted config does not round-trip: %v", err)
		}
		if err := ValidateConfig(&flag, &again); err != nil {
			t.Fatalf("accepted config fails after a round trip: %v", err)
		}
	})
}
