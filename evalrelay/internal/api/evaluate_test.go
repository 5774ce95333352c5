package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestAppendResultIsTheJSONOfFlagResult: the hand-written encoding decodes to the same
// result as encoding/json's, including strings that need escaping and absent fields.
func TestAppendResultIsTheJSONOfFlagResult(t *testing.T) {
	for _, r := range []flagResult{
		{Reason: "SPLIT", Value: json.RawMessage(`true`), Variation: "on", RuleID: "r_1", Version: 7, ExperimentKey: "exp-1"},
		{Reason: "ERROR", ErrorCode: "FLAG_NOT_FOUND"},
		{Reason: "TARGETING_MATCH", Value: json.RawMessage(`{"a": [1, 2.5, "x"], "b": null}`), Variation: "quote\" back\\slash <tag> & \u00e9\n"},
		{Reason: "DEFAULT", Value: json.RawMessage(`"string value"`), Variation: "v", Version: -1},
	} {
		var got, want flagResult
		raw := appendResult(nil, r)
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%+v encodes to invalid JSON %s: %v", r, raw, err)
		}
		std, _ := json.Marshal(r)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(compactValue(t, got), compactValue(t, want)) {
			t.Fatalf("hand-written %s, encoding/json %s", raw, std)
		}
	}
	for _, s := range []string{"", "flag-1", "a\"b", "tab\there", "\u2028", "ü", "<script>"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Fatalf("%q round-tripped to %q (%v)", s, back, err)
		}
	}
}

// compactValue normalises the raw value's whitespace so equal JSON compares equal.
func compactValue(t *testing.T, r flagResult) flagResult {
	if len(r.Value) > 0 {
		var v any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		r.Value, _ = json.Marshal(v)
	}
	return r
}
