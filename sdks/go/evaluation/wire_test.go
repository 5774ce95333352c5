package evaluation

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// sameAsEncodingJSON fails t unless decodeTyped either declines data or decodes it exactly as
// json.Unmarshal does. It reports whether decodeTyped decoded it.
func sameAsEncodingJSON(t *testing.T, data []byte) bool {
	t.Helper()
	var fast, std typedDocument
	// Decoded from a buffer overwritten afterwards, as a stream reuses its buffer: nothing decoded
	// may point into it.
	buf := slices.Clone(data)
	ok := decodeTyped(buf, &fast)
	clear(buf)
	if !ok {
		return false
	}
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("decodeTyped accepted what encoding/json refuses (%v):\n%s", err, data)
	}
	for _, f := range deref(std.Flags) {
		for _, v := range f.Variations {
			sameValueAsEncodingJSON(t, v.Value)
		}
	}
	if !reflect.DeepEqual(fast, std) {
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(std)
		t.Fatalf("decodeTyped and encoding/json differ on\n%s\nfast: %s\nstd:  %s\nfast: %#v\nstd:  %#v", data, a, b, fast, std)
	}
	return true
}

func deref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}

// sameValueAsEncodingJSON fails t unless decodeValue declines data or decodes it as
// json.Unmarshal does into an interface{}.
func sameValueAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := decodeValue(data)
	if !ok {
		return
	}
	var std any
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("decodeValue accepted what encoding/json refuses (%v): %s", err, data)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decodeValue and encoding/json differ on %s: %#v vs %#v", data, fast, std)
	}
}

// TestDecodeValue: values decodeValue must decode (and agree on) and values it must decline.
func TestDecodeValue(t *testing.T) {
	for _, v := range []string{`true`, ` false `, `null`, `0`, `-1.5e3`, `"a\"\u00e9"`, `[]`, `{}`, `[1,"x",null,[{}]]`,
		`{"a":1,"a":2,"b":{"c":[true]}}`, `{"\u0041":"é"}`} {
		if _, ok := decodeValue([]byte(v)); !ok {
			t.Errorf("decodeValue declined %s", v)
		}
		sameValueAsEncodingJSON(t, []byte(v))
	}
	for _, v := range []string{``, `tru`, `1 2`, `{"a"}`, `[1,]`, `"\ud800"`, "\"\xff\"", `1e400`, `{"a":1,}`} {
		if _, ok := decodeValue([]byte(v)); ok {
			t.Errorf("decodeValue accepted %q", v)
		}
	}
}

// ConformanceRulesets returns the ruleset of every conformance file (sdks/spec/testdata); the
// external tests use it too.
func ConformanceRulesets(t testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join("..", "..", "spec", "testdata", "evaluation", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance files: %v", err)
	}
	var rulesets [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Ruleset json.RawMessage `json:"ruleset"`
		}
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		rulesets = append(rulesets, s.Ruleset)
	}
	return rulesets
}

// wireSeeds are the conformance rulesets and a patch with every field.
func wireSeeds(t testing.TB) [][]byte {
	return append(ConformanceRulesets(t), []byte(everyFieldPatch))
}

// everyFieldPatch sets every field decodeTyped knows, with escapes, non-ASCII text, nulls, empty
// lists and unknown fields of every shape around them.
const everyFieldPatch = ` {"schema_version":1,"environment":{"id":"e\u00e9\"1","key":"k","name":"Prod ✓","project_id":"p","project_key":"pk","extra":{"ü":[1,{"a":null}]}},
 "version":9007199254740993,"base_version":-3,"generated_at":"2026-11-26T05:00:00Z",
 "flags":[{"key":"f\/1","kind":"json","version":2,"on":true,"off_variation":"off","salt":"s\t",
   "variations":[{"key":"a","value":{"x":[1,2.5e3,"\ud83d\ude00"],"y":null},"name":"A","description":"d"},{"key":"off","value":null},{"key":"n","value":-0.5}],
   "prerequisites":[{"flag":"g","variation":"on"},null],"targets":[{"context_kind":"user","variation":"a","values":["u1","u\n2",null]}],
   "rules":[{"id":"r1","description":"x","clauses":[{"context_kind":"org","attribute":"n","op":"in","values":["s",1.25,true,null,[1,"2"],{"k":{"z":false}}],"negate":true},
     {"attribute":"a","op":"segment_match","values":[]}],"serve":{"rollout":{"context_kind":"org","bucket_by":"id","salt":"x","experiment_key":"e","variations":[{"variation":"a","weight":60000},{"variation":"off","weight":40000}]}}},
     {"clauses":null,"serve":{"variation":"a","rollout":null}}],
   "fallthrough":{"variation":"off"},"client_side":true,"unknown":[true,false,null,"",{}]},
  {"key":"g","fallthrough":null,"on":false,"version":null,"kind":null,"rules":[],"targets":null}],
 "segments":[{"key":"seg","version":4,"included":[{"context_kind":"user","values":["a"]}],"excluded":[{"values":[]}],
   "rules":[{"id":"sr","clauses":[{"attribute":"plan","op":"in","values":["pro"]}]}]},{}],
 "deleted_flags":["old",""],"deleted_segments":null,"sdk_keys":[{"hash":"sha256:00","kind":"server"}]}
`

func TestDecodeTypedMatchesEncodingJSON(t *testing.T) {
	declined := 0
	for _, seed := range wireSeeds(t) {
		var std typedDocument
		if !sameAsEncodingJSON(t, seed) {
			declined++
			if json.Unmarshal(seed, &std) == nil {
				t.Errorf("decodeTyped declined a document encoding/json decodes:\n%s", seed)
			}
		}
	}
	if declined != 1 { // malformed.json, whose flags have wrong types on purpose
		t.Errorf("decodeTyped declined %d documents, want 1", declined)
	}
	// What the flag service writes: encoding/json's output of the ruleset types.
	doc, err := json.Marshal(ruleset.Ruleset{SchemaVersion: 1, Version: 3, Segments: []ruleset.Segment{{Key: "s"}},
		Flags: []ruleset.Flag{{Key: "f", Kind: ruleset.KindString, Variations: []ruleset.Variation{{Key: "a", Value: json.RawMessage(`"<b>&"`)}},
			Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{{Variation: "a", Weight: 100000}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{doc, []byte(`{}`), []byte(`null`), []byte(` {"flags":[],"segments":[]} `)} {
		if !sameAsEncodingJSON(t, d) {
			t.Errorf("decodeTyped declined %s", d)
		}
	}
}

// TestDecodeTypedDeclines: what decodeTyped cannot decode exactly like encoding/json, it leaves to
// encoding/json; decodeDocument then gives encoding/json's result.
func TestDecodeTypedDeclines(t *testing.T) {
	for _, d := range []string{
		`{"version":1,"version":2}`,          // duplicate: encoding/json keeps the last (and merges objects)
		`{"Version":1}`,                      // encoding/json matches keys case-insensitively
		`{"environment":{"ID":"x"}}`,         // the same, nested
		`{"flags":[{"ſalt":"x"}]}`,           // non-ASCII key: could fold to "salt"
		`{"flags":[{"key":"\ud83d\ude00"}]}`, // escaped surrogates
		"{\"flags\":[{\"key\":\"\xff\"}]}",   // invalid UTF-8: encoding/json writes U+FFFD
		`{"version":1.5}`, `{"version":1e3}`, // not integers
		`{"version":9223372036854775808}`,                             // overflow
		`{"flags":[{"variations":[{"value":tru}]}]}`,                  // invalid JSON in a raw value
		`{"flags":[{"rules":[{"clauses":[{"values":[1e999]}]}]}]}`,    // a number out of float64's range
		`{"flags":[{"on":"yes"}]}`, `{"flags":{}}`, `{"version":"1"}`, // wrong types
		`{"flags":[]} x`, `{"flags":[],}`, `{"a":01}`, `{"a":-}`, `{"a":"\x"}`, `{"a":"` + "\x01" + `"}`, `[`, ``, // not JSON
	} {
		var fast typedDocument
		if decodeTyped([]byte(d), &fast) {
			t.Errorf("decodeTyped accepted %q", d)
		}
	}
	// A declined document still decodes, by encoding/json.
	got, err := decodeDocument([]byte(`{"schema_version":1,"Version":7,"flags":[{"key":"f","kind":"boolean"}],"segments":[]}`))
	if err != nil || got.version != 7 || len(*got.flags) != 1 || (*got.flags)[0].flag.Kind != ruleset.KindBoolean {
		t.Fatalf("decodeDocument after declining: %+v, %v", got, err)
	}
}

// TestDecodeTypedKnowsEveryField: a field added to a ruleset type must be added to decodeTyped,
// or it would be silently dropped by SDKs.
func TestDecodeTypedKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		typ    any
		fields []string
	}{
		{typedDocument{}, documentFields}, {ruleset.Environment{}, environmentFields}, {ruleset.Flag{}, flagFields},
		{ruleset.Variation{}, variationFields}, {ruleset.Prerequisite{}, prereqFields}, {ruleset.Target{}, targetFields},
		{ruleset.Rule{}, ruleFields}, {ruleset.Clause{}, clauseFields}, {ruleset.Serve{}, serveFields},
		{ruleset.Rollout{}, rolloutFields}, {ruleset.WeightedVariation{}, weightedFields}, {ruleset.Segment{}, segmentFields},
		{ruleset.SegmentTarget{}, segTargetFields}, {ruleset.SegmentRule{}, segRuleFields},
	} {
		typ := reflect.TypeOf(c.typ)
		var tags []string
		for i := range typ.NumField() {
			tags = append(tags, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		if !slices.Equal(tags, c.fields) {
			t.Errorf("%s: decodeTyped reads %v, the type has %v", typ, c.fields, tags)
		}
	}
}

// FuzzDecodeTyped: on any input decodeTyped either declines or agrees with encoding/json.
func FuzzDecodeTyped(f *testing.F) {
	for _, seed := range wireSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsEncodingJSON(t, data)
		sameValueAsEncodingJSON(t, data)
	})
}

// TestDecodeTypedOnMutatedDocuments: the seeds with values swapped for values of other types,
// keys renamed, doubled or re-cased, and strings escaped — decodeTyped declines or agrees with
// encoding/json on each, and decodes most of those that stay well-typed.
func TestDecodeTypedOnMutatedDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := []string{`null`, `true`, `false`, `0`, `-1`, `7`, `1.5`, `-0`, `1e3`, `1e400`, `9223372036854775807`,
		`9223372036854775808`, `-9223372036854775808`, `""`, `"x"`, `"\u00e9\ud83d\ude00"`, `"a\"b\\c\/d\b\f\n\r\t"`,
		`[]`, `[null]`, `["a",1]`, `{}`, `{"key":"k"}`, `{"variation":"on"}`, `[{"key":"x","value":1}]`}
	var tries, decoded, declined int // declined: those encoding/json decodes
	for _, seed := range wireSeeds(t) {
		var tree any
		if err := json.Unmarshal(seed, &tree); err != nil {
			t.Fatal(err)
		}
		m := mutator{rng: rng, pool: pool, rate: max(2, nodes(tree)/2)} // about two mutations a document
		for range 400 {
			var b strings.Builder
			m.write(&b, tree)
			tries++
			var std typedDocument
			if sameAsEncodingJSON(t, []byte(b.String())) {
				decoded++
			} else if json.Unmarshal([]byte(b.String()), &std) == nil {
				declined++
			}
		}
	}
	t.Logf("of %d mutated documents, decodeTyped decoded %d and declined %d that encoding/json decodes", tries, decoded, declined)
	// Declined are those with a key doubled or re-cased (half of the key mutations).
	if decoded < tries/5 || declined > decoded {
		t.Errorf("decodeTyped decoded %d and declined %d of %d mutated documents", decoded, declined, tries)
	}
}

type mutator struct {
	rng  *rand.Rand
	pool []string // JSON values that replace a node
	rate int      // one node or key in rate is mutated
}

func (m mutator) now() bool { return m.rng.IntN(m.rate) == 0 }

// nodes counts the values and keys in v.
func nodes(v any) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			n += 1 + nodes(e)
		}
	case []any:
		for _, e := range v {
			n += nodes(e)
		}
	}
	return n
}

// write writes v as JSON, mutated: a value replaced by one from the pool, a key re-cased,
// doubled, dropped or renamed, a letter of a string written as a \u escape.
func (m mutator) write(b *strings.Builder, v any) {
	if m.now() {
		b.WriteString(m.pool[m.rng.IntN(len(m.pool))])
		return
	}
	switch v := v.(type) {
	case map[string]any:
		b.WriteByte('{')
		first := true
		for _, k := range slices.Sorted(maps.Keys(v)) {
			times := 1
			if m.now() {
				switch m.rng.IntN(4) {
				case 0:
					k = strings.ToUpper(k[:1]) + k[1:]
				case 1:
					times = 2
				case 2:
					times = 0
				case 3:
					k += "_x"
				}
			}
			for range times {
				if !first {
					b.WriteByte(',')
				}
				first = false
				m.string(b, k)
				b.WriteString(" : ")
				m.write(b, v[k])
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteString("[ ")
		for i, e := range v {
			if i > 0 {
				b.WriteString(",\n")
			}
			m.write(b, e)
		}
		b.WriteByte(']')
	case string:
		m.string(b, v)
	default:
		out, _ := json.Marshal(v)
		b.Write(out)
	}
}

func (m mutator) string(b *strings.Builder, s string) {
	out, _ := json.Marshal(s)
	if len(s) > 0 && m.now() {
		i := 1 + m.rng.IntN(len(out)-2)
		if c := out[i]; c >= 'a' && c <= 'z' {
			out = []byte(fmt.Sprintf(`%s\u%04x%s`, out[:i], c, out[i+1:]))
		}
	}
	b.Write(out)
}

// TestParseContextMatchesEncodingJSON: contexts parsed through decodeValue are those parsed from
// encoding/json's decoding, errors included.
func TestParseContextMatchesEncodingJSON(t *testing.T) {
	for _, d := range []string{
		`{"key":"alice"}`, `{"kind":"user","key":"a","country":"US","n":1.5,"tags":["x",2],"o":{"a":null}}`,
		`{"kind":"multi","user":{"key":"u"},"device":{"kind":"device","key":"d","os":"ios"}}`, `{"key":"a","key":"b"}`,
		`{"key":"\u00e9\"","Key":"x","big":1e308,"neg":-0,"nested":[[1],{"a":[true]}]}`, `{"kind":"multi"}`, `{"key":""}`,
		`[]`, `null`, `"s"`, `7`, `{"key":1}`, `{"kind":null,"key":"k"}`, `{"key":"\ud83d\ude00"}`, "{\"key\":\"\xff\"}", `{"key":"a"`, ``,
	} {
		got, gotErr := parseContext([]byte(d))
		var obj map[string]any
		want, wantErr := Context{}, json.Unmarshal([]byte(d), &obj)
		if wantErr != nil {
			wantErr = fmt.Errorf("%w: not a JSON object", ErrInvalidContext)
		} else {
			want, wantErr = contextFromObject(obj)
		}
		if !reflect.DeepEqual(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s: parsed %#v, %v; encoding/json gives %#v, %v", d, got, gotErr, want, wantErr)
		}
	}
}
