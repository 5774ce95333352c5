package evaluation_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// basedOn derives, from a conformance ruleset (the target), an older ruleset and the patch that
// turns it into the target: of the flags and segments with a unique key, every third is missing
// from the base (the patch adds it), every third differs in the base (the patch replaces it), and
// the base has one extra flag and segment (the patch deletes them). Items without a usable key
// (the malformed suite) are left alone.
// With flagsOnly, the segments are left alone (the patch changes flags only).
func basedOn(t *testing.T, target json.RawMessage, flagsOnly bool) (base, patch []byte) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(target, &doc); err != nil {
		t.Fatal(err)
	}
	var version int64
	_ = json.Unmarshal(doc["version"], &version)
	patchDoc := map[string]any{"schema_version": 1, "environment": doc["environment"], "version": version, "base_version": version - 1}
	baseDoc := map[string]any{}
	for k, v := range doc {
		baseDoc[k] = v
	}
	baseDoc["version"] = version - 1
	for _, what := range []string{"flags", "segments"} {
		if what == "segments" && flagsOnly {
			patchDoc["segments"], patchDoc["deleted_segments"] = []any{}, []string{}
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(doc[what], &items); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, raw := range items {
			count[keyOf(raw)]++
		}
		baseItems, changed := []json.RawMessage{}, []json.RawMessage{}
		for i, raw := range items {
			k := keyOf(raw)
			if k == "" || count[k] > 1 {
				baseItems = append(baseItems, raw)
				continue
			}
			switch i % 3 {
			case 0: // added by the patch
				changed = append(changed, raw)
			case 1: // replaced by the patch
				changed = append(changed, raw)
				baseItems = append(baseItems, altered(t, raw))
			default:
				baseItems = append(baseItems, raw)
			}
		}
		extra := fmt.Sprintf(`{"key":"patch-extra-%s","version":1,"kind":"boolean","on":true,"variations":[{"key":"on","value":true},{"key":"off","value":false}],"off_variation":"off","fallthrough":{"variation":"on"},"included":[],"excluded":[],"rules":[]}`, what)
		baseItems = append(baseItems, json.RawMessage(extra))
		baseDoc[what] = baseItems
		patchDoc[what] = changed
		patchDoc["deleted_"+what] = []string{"patch-extra-" + what}
	}
	var err error
	if base, err = json.Marshal(baseDoc); err != nil {
		t.Fatal(err)
	}
	if patch, err = json.Marshal(patchDoc); err != nil {
		t.Fatal(err)
	}
	return base, patch
}

func keyOf(raw json.RawMessage) string {
	var k struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal(raw, &k)
	return k.Key
}

// altered returns a flag or segment that serves differently: its on switch flipped, its rules
// and targets dropped, another version.
func altered(t *testing.T, raw json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	on, _ := m["on"].(bool)
	m["on"] = !on
	m["version"] = 9999
	for _, k := range []string{"rules", "targets", "included", "excluded"} {
		if _, ok := m[k]; ok {
			m[k] = []any{}
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// TestPatchEqualsTheFullRuleset: a base ruleset patched to a conformance suite's ruleset
// evaluates every case of the suite exactly like the suite's ruleset compiled whole, whether
// the patch changes segments too (everything is compiled again) or flags only (the unchanged
// flags are reused where nothing they depend on changed).
func TestPatchEqualsTheFullRuleset(t *testing.T) {
	for _, flagsOnly := range []bool{false, true} {
		for _, suite := range loadSuites(t) {
			t.Run(fmt.Sprintf("%s/flags-only=%v", suite.Name, flagsOnly), func(t *testing.T) { patchSuite(t, suite, flagsOnly) })
		}
	}
}

func patchSuite(t *testing.T, suite conformanceSuite, flagsOnly bool) {
	full, err := evaluation.CompileJSON(suite.Ruleset)
	if err != nil {
		t.Fatal(err)
	}
	baseJSON, patchJSON := basedOn(t, suite.Ruleset, flagsOnly)
	base, err := evaluation.CompileJSON(baseJSON)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := base.PatchJSON(patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	if patched.Version() != full.Version() || patched.Environment() != full.Environment() {
		t.Errorf("patched version %d env %+v, want %d %+v", patched.Version(), patched.Environment(), full.Version(), full.Environment())
	}
	if !slices.Equal(patched.FlagKeys(), full.FlagKeys()) {
		t.Errorf("flags %v, want %v", patched.FlagKeys(), full.FlagKeys())
	}
	if ch := patched.ChangedFlags(full); len(ch) > 0 {
		t.Errorf("flags differing from the full ruleset: %v", ch)
	}
	if len(patched.Problems()) != len(full.Problems()) {
		t.Errorf("%d problems, want %d", len(patched.Problems()), len(full.Problems()))
	}
	if ch := base.ChangedFlags(full); len(ch) == 0 {
		t.Fatal("the base ruleset does not differ from the target: the test proves nothing")
	}
	differed := 0
	for _, c := range suite.Cases {
		ctx, _ := evaluation.ParseContext(c.Context)
		want := full.EvaluateKind(c.Flag, ctx, ruleset.FlagKind(c.Type))
		got := patched.EvaluateKind(c.Flag, ctx, ruleset.FlagKind(c.Type))
		if got.VariationKey() != want.VariationKey() || string(got.Value()) != string(want.Value()) || got.Reason != want.Reason ||
			got.ErrorCode != want.ErrorCode || got.RuleIndex != want.RuleIndex || got.RuleID() != want.RuleID() {
			t.Errorf("%s: patched %s/%s/%s, full %s/%s/%s", c.Name, got.VariationKey(), got.Reason, got.ErrorCode,
				want.VariationKey(), want.Reason, want.ErrorCode)
		}
		if b := base.EvaluateKind(c.Flag, ctx, ruleset.FlagKind(c.Type)); b.VariationKey() != want.VariationKey() || b.Reason != want.Reason ||
			b.ErrorCode != want.ErrorCode {
			differed++
		}
	}
	if differed == 0 && len(suite.Cases) > 5 {
		t.Error("no case evaluates differently before the patch: the test proves nothing")
	}
	// The patched ruleset can be patched again.
	if _, err := patched.PatchJSON(patchOf(full.Environment().ID, full.Version(), full.Version()+1)); err != nil {
		t.Errorf("patching a patched ruleset: %v", err)
	}
}

func patchOf(env string, base, version int64) []byte {
	return []byte(fmt.Sprintf(`{"schema_version":1,"environment":{"id":%q},"version":%d,"base_version":%d,"flags":[],"deleted_flags":[],"segments":[],"deleted_segments":[]}`, env, version, base))
}

func TestPatchRefusedOutOfStep(t *testing.T) {
	rs, err := evaluation.CompileJSON([]byte(`{"schema_version":1,"environment":{"id":"env-1"},"version":7,"flags":[],"segments":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.PatchJSON(patchOf("env-1", 7, 8)); err != nil {
		t.Fatalf("a patch from the ruleset's version: %v", err)
	}
	for name, p := range map[string][]byte{
		"other base":        patchOf("env-1", 6, 8),
		"other environment": []byte(`{"schema_version":1,"environment":{"id":"env-2"},"version":8,"base_version":7,"flags":[]}`),
	} {
		if _, err := rs.PatchJSON(p); !errors.Is(err, evaluation.ErrPatchBase) {
			t.Errorf("%s: err = %v, want ErrPatchBase", name, err)
		}
	}
	var none *evaluation.Ruleset
	if _, err := none.PatchJSON(patchOf("env-1", 7, 8)); !errors.Is(err, evaluation.ErrPatchBase) {
		t.Errorf("no ruleset: err = %v, want ErrPatchBase", err)
	}
	for name, p := range map[string][]byte{
		"not JSON":       []byte(`{"version":`),
		"no base":        []byte(`{"schema_version":1,"environment":{"id":"env-1"},"version":8}`),
		"other schema":   []byte(`{"schema_version":2,"environment":{"id":"env-1"},"version":8,"base_version":7}`),
		"flags not list": []byte(`{"schema_version":1,"environment":{"id":"env-1"},"version":8,"base_version":7,"flags":{}}`),
	} {
		if _, err := rs.PatchJSON(p); err == nil || errors.Is(err, evaluation.ErrPatchBase) {
			t.Errorf("%s: err = %v, want a decoding error", name, err)
		}
	}
}

// TestPatchReusesUntouchedFlags: a patch of one flag carries every other flag over as is, so
// change listeners evaluate only that one; when a prerequisite changes, everything is compiled
// again.
func TestPatchReusesUntouchedFlags(t *testing.T) {
	flag := func(key string, version int, on bool, prereq string) string {
		p := ""
		if prereq != "" {
			p = fmt.Sprintf(`,"prerequisites":[{"flag":%q,"variation":"on"}]`, prereq)
		}
		return fmt.Sprintf(`{"key":%q,"kind":"boolean","version":%d,"on":%v,"variations":[{"key":"on","value":true},{"key":"off","value":false}],"off_variation":"off","fallthrough":{"variation":"on"}%s}`, key, version, on, p)
	}
	doc := fmt.Sprintf(`{"schema_version":1,"environment":{"id":"e"},"version":1,"flags":[%s,%s,%s],"segments":[]}`,
		flag("a", 1, true, ""), flag("b", 1, true, ""), flag("c", 1, true, "b"))
	base, err := evaluation.CompileJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	patch := func(version int, flags ...string) []byte {
		return []byte(fmt.Sprintf(`{"schema_version":1,"environment":{"id":"e"},"version":%d,"base_version":%d,"flags":[%s],"deleted_flags":[],"segments":[],"deleted_segments":[]}`,
			version, version-1, strings.Join(flags, ",")))
	}
	next, err := base.PatchJSON(patch(2, flag("a", 2, false, "")))
	if err != nil {
		t.Fatal(err)
	}
	if keys, ok := next.PatchedFlags(base); !ok || !slices.Equal(keys, []string{"a"}) {
		t.Errorf("patched flags %v %v, want [a] (b and c carried over)", keys, ok)
	}
	if ch := next.ChangedFlags(base); !slices.Equal(ch, []string{"a"}) {
		t.Errorf("changed flags %v, want [a]", ch)
	}
	if _, ok := base.PatchedFlags(next); ok {
		t.Error("the base was not patched from the next version")
	}
	// b is c's prerequisite: c must see the new b, so everything is compiled again.
	third, err := next.PatchJSON(patch(3, flag("b", 2, false, "")))
	if err != nil {
		t.Fatal(err)
	}
	if keys, ok := third.PatchedFlags(next); ok {
		t.Errorf("only %v patched although c's prerequisite b changed", keys)
	}
	if r := third.Evaluate("c", evaluation.NewContext("u")); r.Reason != evaluation.ReasonPrerequisiteFailed {
		t.Errorf("c after b went off: %s, want PREREQUISITE_FAILED", r.Reason)
	}
}

// TestPatchSequence: hundreds of patches in a row — flags changed, added, deleted and added
// again, enough for the patched flags to outgrow the short map kept over the shared one and be
// merged into a new one several times, and now and then a segment change that compiles every
// flag again from the kept sources — and after each, the patched ruleset answers like the same
// document compiled whole: keys, client-side keys, flag information and evaluations. The
// second run only replaces flags already there, so the replaced sources too stay in their
// short map over the shared list until they outgrow it, and the segment changes compile every
// flag from the list with its replacements.
func TestPatchSequence(t *testing.T) {
	t.Run("changed, added and deleted", func(t *testing.T) { patchSequence(t, false) })
	t.Run("replaced only", func(t *testing.T) { patchSequence(t, true) })
}

func patchSequence(t *testing.T, replaceOnly bool) {
	rng := rand.New(rand.NewPCG(7, 11))
	flagJSON := func(key string, version int) string {
		return fmt.Sprintf(`{"key":%q,"kind":"string","version":%d,"on":%v,"client_side":%v,"variations":[{"key":"a","value":"A"},{"key":"b","value":"B"}],"off_variation":"b",`+
			`"rules":[{"id":"r","clauses":[{"attribute":"plan","op":"in","values":["pro"]}],"serve":{"variation":"%s"}}],"fallthrough":{"rollout":{"variations":[{"variation":"a","weight":%d},{"variation":"b","weight":%d}]}}}`,
			key, version, rng.IntN(4) > 0, rng.IntN(2) == 0, []string{"a", "b"}[rng.IntN(2)], version*997%100001, 100000-version*997%100001)
	}
	model := map[string]string{}
	segment := `{"key":"s","version":1}` // changed every 40 versions: every flag is compiled again from the kept sources
	for i := range 100 {
		k := fmt.Sprintf("flag-%03d", i)
		model[k] = flagJSON(k, 1)
	}
	document := func(version int) []byte {
		var flags []string
		for _, k := range slices.Sorted(maps.Keys(model)) {
			flags = append(flags, model[k])
		}
		return []byte(fmt.Sprintf(`{"schema_version":1,"environment":{"id":"e"},"version":%d,"flags":[%s],"segments":[%s]}`, version, strings.Join(flags, ","), segment))
	}
	rs, err := evaluation.CompileJSON(document(1))
	if err != nil {
		t.Fatal(err)
	}
	contexts := []evaluation.Context{evaluation.NewContext("u1", evaluation.Attr("plan", "pro")), evaluation.NewContext("u2"), evaluation.NewContext("u3")}
	for version := 2; version <= 400; version++ {
		var changed, deleted, touched []string
		for range 1 + rng.IntN(3) {
			k := fmt.Sprintf("flag-%03d", rng.IntN(150)) // a third of the keys are not flags at first
			if _, exists := model[k]; slices.Contains(touched, k) || (replaceOnly && !exists) {
				continue
			}
			touched = append(touched, k)
			if _, exists := model[k]; exists && !replaceOnly && rng.IntN(4) == 0 {
				delete(model, k)
				deleted = append(deleted, strconv.Quote(k))
				continue
			}
			model[k] = flagJSON(k, version)
			changed = append(changed, model[k])
		}
		segments := ""
		if every := map[bool]int{false: 40, true: 150}[replaceOnly]; version%every == 0 { // replacements alone outgrow their map between two
			segment = fmt.Sprintf(`{"key":"s","version":%d}`, version)
			segments = segment
		}
		patch := fmt.Sprintf(`{"schema_version":1,"environment":{"id":"e"},"version":%d,"base_version":%d,"flags":[%s],"deleted_flags":[%s],"segments":[%s],"deleted_segments":[]}`,
			version, version-1, strings.Join(changed, ","), strings.Join(deleted, ","), segments)
		next, err := rs.PatchJSON([]byte(patch))
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if _, ok := next.PatchedFlags(rs); ok == (segments != "") {
			t.Fatalf("version %d: patched flag by flag: %v, want %v (%s)", version, ok, segments == "", patch)
		}
		rs = next
		whole, err := evaluation.CompileJSON(document(version))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rs.FlagKeys(), whole.FlagKeys()) || !slices.Equal(rs.ClientSideFlagKeys(), whole.ClientSideFlagKeys()) {
			t.Fatalf("version %d: keys %v / %v, want %v / %v", version, rs.FlagKeys(), rs.ClientSideFlagKeys(), whole.FlagKeys(), whole.ClientSideFlagKeys())
		}
		for i := range 150 {
			k := fmt.Sprintf("flag-%03d", i)
			a, aok := rs.Flag(k)
			b, bok := whole.Flag(k)
			if a != b || aok != bok {
				t.Fatalf("version %d: Flag(%s) = %+v %v, want %+v %v", version, k, a, aok, b, bok)
			}
			for _, c := range contexts {
				if got, want := rs.Evaluate(k, c), whole.Evaluate(k, c); got.Reason != want.Reason || got.VariationKey() != want.VariationKey() ||
					!bytes.Equal(got.Value(), want.Value()) || got.ErrorCode != want.ErrorCode {
					t.Fatalf("version %d: %s for %v: %+v, want %+v", version, k, c, got, want)
				}
			}
		}
		if got, want := len(rs.EvaluateAll(contexts[0], true)), len(whole.EvaluateAll(contexts[0], true)); got != want {
			t.Fatalf("version %d: %d client-side evaluations, want %d", version, got, want)
		}
	}
}
