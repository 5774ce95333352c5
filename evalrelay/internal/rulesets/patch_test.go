package rulesets

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

type wirePatch struct {
	Version      int64             `json:"version"`
	BaseVersion  int64             `json:"base_version"`
	Flags        []json.RawMessage `json:"flags"`
	DeletedFlags []string          `json:"deleted_flags"`
}

func decodePatch(t *testing.T, e *Entry) wirePatch {
	t.Helper()
	if e.Patch == nil {
		t.Fatalf("version %d has no patch", e.Version)
	}
	var p wirePatch
	if err := json.Unmarshal(e.Patch, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func flagKeys(raws []json.RawMessage) []string {
	var out []string
	for _, raw := range raws {
		var k struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(raw, &k)
		out = append(out, k.Key)
	}
	return out
}

// TestPatches: each new version carries a patch from the version it replaced with only what
// changed, and the SDK's PatchJSON turns the old compiled ruleset into the new one.
func TestPatches(t *testing.T) {
	s := New("")
	apply := func(rs ruleset.Ruleset) *Entry {
		t.Helper()
		e, err := s.Apply("env1", relaytest.JSON(rs))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := apply(relaytest.Ruleset("env1", 5, true))
	if first.Patch != nil {
		t.Error("the first version of an environment has nothing to patch")
	}
	second := apply(relaytest.Ruleset("env1", 6, false))
	p := decodePatch(t, second)
	if second.PatchBase != 5 || p.BaseVersion != 5 || p.Version != 6 || !slices.Equal(flagKeys(p.Flags), []string{"banner"}) || len(p.DeletedFlags) != 0 {
		t.Fatalf("patch 5→6 = base %d %+v; want only banner", second.PatchBase, p)
	}
	if len(second.Patch) >= len(second.JSON) {
		t.Errorf("patch of %d bytes, ruleset %d", len(second.Patch), len(second.JSON))
	}
	patched, err := first.Compiled.PatchJSON(second.Patch)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"alice", "bob", "carol", "dave"} {
		ctx := evaluation.NewContext(key)
		for _, flag := range []string{"banner", "limit"} {
			got, want := patched.Evaluate(flag, ctx), second.Compiled.Evaluate(flag, ctx)
			if got.VariationKey() != want.VariationKey() || got.Reason != want.Reason {
				t.Errorf("%s for %s: patched %s/%s, whole %s/%s", flag, key, got.VariationKey(), got.Reason, want.VariationKey(), want.Reason)
			}
		}
	}

	// A removed flag is listed by key; a skipped version makes the patch start at the replaced one.
	rs := relaytest.Ruleset("env1", 9, false)
	rs.Flags = rs.Flags[:1]
	third := apply(rs)
	if p := decodePatch(t, third); third.PatchBase != 6 || !slices.Equal(p.DeletedFlags, []string{"limit"}) || !slices.Equal(flagKeys(p.Flags), []string{"banner"}) {
		t.Fatalf("patch 6→9 = base %d %+v", third.PatchBase, p)
	}

	// A ruleset whose keys repeat is only ever sent whole.
	dup := relaytest.Ruleset("env1", 10, true)
	dup.Flags = append(dup.Flags, dup.Flags[0])
	fourth := apply(dup)
	if fourth.Patch != nil {
		t.Error("a ruleset with a repeated flag key got a patch")
	}
	fifth := apply(relaytest.Ruleset("env1", 11, true))
	if fifth.Patch != nil {
		t.Error("a patch from a ruleset with a repeated flag key")
	}
}
