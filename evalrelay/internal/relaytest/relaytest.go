// Package relaytest builds rulesets for the relay's tests.
package relaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Hash is a key's hash as rulesets carry it.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

// Keys of the test environments: env → server key and client key.
func Keys(env string) (server, client string) { return "sdk-srv-test-" + env, "sdk-cli-test-" + env }

// Ruleset returns a ruleset for env at version v with two flags: "banner" (boolean, client
// side, on or off as given, 50/50 rollout when on) and "limit" (number, server only).
func Ruleset(env string, v int64, on bool) ruleset.Ruleset {
	server, client := Keys(env)
	return ruleset.Ruleset{
		SchemaVersion: ruleset.SchemaVersion,
		Environment:   ruleset.Environment{ID: env, Key: "production", ProjectID: "p-" + env, ProjectKey: "shop"},
		Version:       v,
		GeneratedAt:   time.Now().UTC(),
		Flags: []ruleset.Flag{
			{Key: "banner", Kind: ruleset.KindBoolean, Version: v, On: on, OffVariation: "off", ClientSide: true,
				Variations: []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
				Rules: []ruleset.Rule{{ID: "beta", Clauses: []ruleset.Clause{{Attribute: "plan", Op: ruleset.OpIn, Values: []any{"beta"}}},
					Serve: ruleset.Serve{Variation: "on"}}},
				Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{ExperimentKey: "banner-test", Variations: []ruleset.WeightedVariation{
					{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}}},
			{Key: "limit", Kind: ruleset.KindNumber, Version: 1, On: true, OffVariation: "low",
				Variations:  []ruleset.Variation{{Key: "low", Value: json.RawMessage("10")}, {Key: "high", Value: json.RawMessage("100")}},
				Fallthrough: ruleset.Serve{Variation: "high"}},
		},
		Segments: []ruleset.Segment{},
		SDKKeys:  []ruleset.SDKKey{{Hash: Hash(server), Kind: ruleset.KeyServer}, {Hash: Hash(client), Kind: ruleset.KeyClient}},
	}
}

// JSON marshals a ruleset.
func JSON(rs ruleset.Ruleset) []byte {
	b, err := json.Marshal(rs)
	if err != nil {
		panic(err)
	}
	return b
}
