package store

import (
	"strings"
	"testing"
)

// TestFlagDecodesStaysWithinItsBudget: past MaxBytes of JSON, the environments read longest ago
// are dropped; what is replaced or forgotten is no longer counted.
func TestFlagDecodesStaysWithinItsBudget(t *testing.T) {
	d := FlagDecodes{MaxBytes: 1000}
	flags := func(n int) map[string]*flagDecode { // n bytes of JSON
		return map[string]*flagDecode{"f": {variationsJSON: []byte(strings.Repeat("x", n/2)), configJSON: []byte(strings.Repeat("y", n-n/2))}}
	}
	d.keep("a", flags(400))
	d.keep("b", flags(400))
	if d.of("a") == nil { // a is now read more recently than b
		t.Fatal("a was dropped within the budget")
	}
	d.keep("c", flags(400)) // 1,200 bytes: b, read longest ago, goes
	if d.of("b") != nil || d.of("a") == nil || d.of("c") == nil || d.bytes != 800 {
		t.Fatalf("after c: a %v, b %v, c %v, %d bytes", d.of("a") != nil, d.of("b") != nil, d.of("c") != nil, d.bytes)
	}
	d.keep("a", flags(100)) // replaced: counted once
	if d.bytes != 500 {
		t.Fatalf("%d bytes after replacing a, want 500", d.bytes)
	}
	d.keep("c", nil) // forgotten (a deleted environment)
	if d.of("c") != nil || d.bytes != 100 {
		t.Fatalf("after forgetting c: %v, %d bytes", d.of("c") != nil, d.bytes)
	}
	d.keep("big", flags(5000)) // alone over the budget: not kept, and nothing dropped for it
	if d.of("big") != nil || d.of("a") == nil || d.bytes != 100 {
		t.Fatalf("after an environment larger than the budget: big %v, a %v, %d bytes", d.of("big") != nil, d.of("a") != nil, d.bytes)
	}
	var none *FlagDecodes // nil: no caching, no panics
	none.keep("a", flags(10))
	if none.of("a") != nil {
		t.Fatal("a nil FlagDecodes kept something")
	}
}
