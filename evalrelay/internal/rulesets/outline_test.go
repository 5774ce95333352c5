package rulesets

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// outlineDocs are documents written the way the flag service writes them.
func outlineDocs() [][]byte {
	small := relaytest.Ruleset("env1", 7, true)
	full := relaytest.Ruleset("env1", 8, false)
	at := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	full.GeneratedAt = at
	full.SDKKeys = append(full.SDKKeys, ruleset.SDKKey{Hash: relaytest.Hash("old"), Kind: ruleset.KeyServer, ExpiresAt: &at})
	big := relaytest.Ruleset("env1", 9, true)
	for i := 0; i < 300; i++ {
		f := big.Flags[1]
		f.Key = fmt.Sprintf("pad-%d", i)
		big.Flags = append(big.Flags, f)
	}
	return [][]byte{relaytest.JSON(small), relaytest.JSON(full), relaytest.JSON(big),
		[]byte(` { "schema_version" : 1 , "flags" : [ ] , "segments" : null , "extra" : {"a":[1,-2.5e+3,"\u00e9\n",true,false,null]} } `)}
}

// checkOutline fails when outline accepted a document encoding/json refuses or read it
// differently; it reports whether outline read it (false: it left it to encoding/json).
func checkOutline(t testing.TB, doc []byte) bool {
	t.Helper()
	got, ok := outline(doc)
	if !ok {
		return false
	}
	if !json.Valid(doc) {
		t.Fatalf("outline read invalid JSON %q", doc)
	}
	var want header
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatalf("outline read %q, which encoding/json refuses: %v", doc, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outline read %q as\n%+v\nencoding/json as\n%+v", doc, got, want)
	}
	return true
}

// TestOutlineReadsTheFlagServicesDocuments: the fast path is taken for what the flag service
// writes (otherwise it would silently never run), and reads it as encoding/json does.
func TestOutlineReadsTheFlagServicesDocuments(t *testing.T) {
	for i, doc := range outlineDocs() {
		if !checkOutline(t, doc) {
			t.Fatalf("document %d was left to encoding/json: %s", i, doc)
		}
	}
}

// TestOutlineLeavesTheRestToEncodingJSON: invalid JSON and documents in another shape are
// never read by outline, and build treats them exactly as encoding/json decides.
func TestOutlineLeavesTheRestToEncodingJSON(t *testing.T) {
	for _, doc := range []string{
		`{"schema_version":1,"flags":[{"key":"a","x":tru}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":"\q"}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":"\u12g4"}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":1.}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":01}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":-}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":1e}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a",,"x":1}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a" "x":1}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":[1,]}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a","x":"` + "\x01" + `"}],"segments":[]}`,
		`{"schema_version":1,"environment":{"id":"e",},"flags":[],"segments":[]}`,
		`{"schema_version":1,"flags":[],"segments":[]} x`,
		`{"schema_version":1,"flags":[],"segments":[],}`,
		`{"schema_version":1,"flags":[],"segments":[]`,
		`{"schema_version":1,"flags":[],"segments":[],"x":[}`,
		`[1]`, `null`, ``, `{`, `"x"`,
		// Valid, but not as the flag service writes it: encoding/json decides.
		`{"schema_version":1,"FLAGS":[{"key":"a"}],"segments":[]}`,
		`{"schema_version":1,"flags":[{"key":"a"}],"flags":[{"key":"b"}],"segments":[]}`,
		`{"schema_version":1,"fl\u0061gs":[{"key":"a"}],"segments":[]}`,
		`{"schema_version":1,"version":1e2,"flags":[],"segments":[]}`,
		`{"schema_version":1,"version":"3","flags":[],"segments":[]}`,
		`{"schema_version":1,"version":null,"flags":[],"segments":[]}`,
		`{"schema_version":1,"version":9223372036854775808,"flags":[],"segments":[]}`,
		`{"schema_version":1,"flags":{},"segments":[]}`,
		`{"schema_version":1,"sdk_keys":[{"hash":1}],"flags":[],"segments":[]}`,
	} {
		if _, ok := outline([]byte(doc)); ok {
			t.Errorf("outline read %q", doc)
		}
		var h header
		stdErr := json.Unmarshal([]byte(doc), &h)
		_, err := Build("env1", []byte(doc), time.Now())
		if stdErr != nil && err == nil {
			t.Errorf("build accepted %q, which encoding/json refuses (%v)", doc, stdErr)
		}
	}
	// Edges it does read: the extreme versions, -0, deep but not too deep nesting.
	for _, doc := range []string{
		`{"schema_version":1,"version":9223372036854775807,"flags":[],"segments":[]}`,
		`{"schema_version":1,"version":-9223372036854775808,"flags":[],"segments":[]}`,
		`{"schema_version":1,"version":-0,"flags":null,"segments":[]}`,
		`{"schema_version":1,"x":[[[[[[[[[[{"a":[[[]]]}]]]]]]]]]],"flags":[],"segments":[]}`,
		"{\"schema_version\":1,\"flags\":[\"\xff\xfe\"],\"segments\":[]}", // encoding/json does not check UTF-8
	} {
		if !checkOutline(t, []byte(doc)) {
			t.Errorf("outline left %q to encoding/json", doc)
		}
	}
}

// TestOutlineOnMutatedDocuments: thousands of documents with bytes changed, dropped, doubled
// and inserted: whatever outline reads, encoding/json reads the same way.
func TestOutlineOnMutatedDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "{}[]:,\"\\ 0123456789.eE+-tfnulrsa\x01\xff"
	read, left := 0, 0
	for _, base := range outlineDocs() {
		for n := 0; n < 3000; n++ {
			doc := append([]byte(nil), base...)
			for m := 1 + rng.IntN(3); m > 0 && len(doc) > 0; m-- {
				i := rng.IntN(len(doc))
				switch rng.IntN(4) {
				case 0:
					doc[i] = alphabet[rng.IntN(len(alphabet))]
				case 1:
					doc = append(doc[:i], doc[i+1:]...)
				case 2:
					doc = append(doc[:i+1], doc[i:]...)
				default:
					doc = append(doc[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, doc[i:]...)...)
				}
			}
			if checkOutline(t, doc) {
				read++
			} else {
				left++
			}
		}
	}
	t.Logf("outline read %d mutated documents and left %d to encoding/json", read, left)
	if read == 0 || left == 0 {
		t.Fatalf("the mutations exercised one side only: read %d, left %d", read, left)
	}
}

// FuzzOutline: go test ./internal/rulesets -fuzz FuzzOutline
func FuzzOutline(f *testing.F) {
	for _, doc := range outlineDocs() {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkOutline(t, doc) })
}
