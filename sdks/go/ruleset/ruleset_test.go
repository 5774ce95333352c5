package ruleset

import (
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseSemver(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"1.2.3", true}, {"1.2", true}, {"1", true}, {"1.2.3-rc.1", true}, {"1.2.3+build.01", true}, {"1.2.3-alpha-1", true},
		{"", false}, {"v1.2.3", false}, {"01.2.3", false}, {"1.2.3.4", false}, {"1..3", false}, {"1.2.3-", false},
		{"1.2.3-01", false}, {"1.2.3+", false}, {"1.2.3-a_b", false}, {"-1.2.3", false},
	} {
		if _, ok := ParseSemver(tc.in); ok != tc.ok {
			t.Errorf("ParseSemver(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
	}
}

func TestSemverPrecedence(t *testing.T) {
	// semver.org's example order, plus the shorthand forms.
	ordered := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1", "2", "10.0.0"}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseSemver(ordered[i])
			b, _ := ParseSemver(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	a, _ := ParseSemver("1.2.3+x")
	b, _ := ParseSemver("1.2.3")
	if a.Compare(b) != 0 {
		t.Error("build metadata must not affect precedence")
	}
}

func validFlag() Flag {
	return Flag{
		Key: "f", Kind: KindBoolean, On: true,
		Variations:  []Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: Serve{Variation: "off"},
	}
}

func TestValidateFlagFieldPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(f *Flag)
		field string
	}{
		{"bad key", func(f *Flag) { f.Key = "no spaces" }, "key"},
		{"bad value", func(f *Flag) { f.Variations[1].Value = json.RawMessage(`"false"`) }, "variations[1].value"},
		{"unknown off variation", func(f *Flag) { f.OffVariation = "maybe" }, "off_variation"},
		{"weights", func(f *Flag) {
			f.Fallthrough = Serve{Rollout: &Rollout{Variations: []WeightedVariation{{Variation: "on", Weight: 1}}}}
		}, "fallthrough.rollout.variations"},
		{"clause value", func(f *Flag) {
			f.Rules = []Rule{{Clauses: []Clause{{Attribute: "a", Op: OpLessThan, Values: []any{"x"}}}, Serve: Serve{Variation: "on"}}}
		}, "rules[0].clauses[0].values[0]"},
		{"regex", func(f *Flag) {
			f.Rules = []Rule{{Clauses: []Clause{{Attribute: "a", Op: OpMatches, Values: []any{"("}}}, Serve: Serve{Variation: "on"}}}
		}, "rules[0].clauses[0].values[0]"},
		{"target twice", func(f *Flag) {
			f.Targets = []Target{{ContextKind: "user", Variation: "on", Values: []string{"a"}}, {ContextKind: "user", Variation: "off", Values: []string{"a"}}}
		}, "targets[1].values[0]"},
		{"self prerequisite", func(f *Flag) { f.Prerequisites = []Prerequisite{{Flag: "f", Variation: "on"}} }, "prerequisites[0].flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := validFlag()
			tc.edit(&f)
			errs := ValidateFlag(&f)
			if len(errs) == 0 || errs[0].Field != tc.field {
				t.Errorf("errors = %v, want one on %s", errs, tc.field)
			}
		})
	}
	f := validFlag()
	if errs := ValidateFlag(&f); errs != nil {
		t.Errorf("valid flag: %v", errs)
	}
}

func TestRulesetValidateCycles(t *testing.T) {
	a, b := validFlag(), validFlag()
	a.Key, b.Key = "a", "b"
	a.Prerequisites = []Prerequisite{{Flag: "b", Variation: "on"}}
	b.Prerequisites = []Prerequisite{{Flag: "a", Variation: "on"}}
	seg := func(key, nested string) Segment {
		return Segment{Key: key, Rules: []SegmentRule{{Clauses: []Clause{{Op: OpSegmentMatch, Values: []any{nested}}}}}}
	}
	rs := Ruleset{SchemaVersion: 1, Flags: []Flag{a, b}, Segments: []Segment{seg("s1", "s2"), seg("s2", "s1")}}
	errs := rs.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "prerequisites form a cycle: a -> b -> a") || !strings.Contains(joined, "segments form a cycle: s1 -> s2 -> s1") {
		t.Errorf("errors:\n%s", joined)
	}
	if got := FindCycle(map[string][]string{"x": {"y"}, "y": {"z"}}); got != nil {
		t.Errorf("acyclic graph: %v", got)
	}
	if got := FindCycle(map[string][]string{"x": {"x"}}); !slices.Equal(got, []string{"x", "x"}) {
		t.Errorf("self loop: %v", got)
	}
}

func TestJSONRoundTripOmitsEmptyOptionalFields(t *testing.T) {
	f := validFlag()
	f.Rules = []Rule{{Clauses: []Clause{{Op: OpSegmentMatch, Values: []any{"s"}}}, Serve: Serve{Variation: "on"}}}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{`"id"`, `"attribute"`, `"off_variation"`, `"salt"`, `"rollout"`} {
		if strings.Contains(string(data), absent) {
			t.Errorf("%s present in %s", absent, data)
		}
	}
	var back Flag
	if err := json.Unmarshal(data, &back); err != nil || back.Rules[0].Clauses[0].Values[0] != "s" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// TestValidKeyMatchesThePattern: the hand-written check accepts exactly what the documented
// pattern ^[A-Za-z0-9][A-Za-z0-9._-]*$ (up to MaxKeyLength) accepts, on every short string over
// an alphabet with the edge characters and random longer ones.
func TestValidKeyMatchesThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	want := func(s string) bool { return len(s) <= MaxKeyLength && pattern.MatchString(s) }
	alphabet := []byte("aZ09._-/ é@\x00")
	var all func(prefix []byte, n int)
	all = func(prefix []byte, n int) {
		if s := string(prefix); ValidKey(s) != want(s) {
			t.Fatalf("ValidKey(%q) = %v, pattern says %v", s, ValidKey(s), want(s))
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			all(append(prefix, c), n-1)
		}
	}
	all(nil, 3)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, MaxKeyLength-10+r.IntN(20)) // around the length limit
		for i := range b {
			b[i] = alphabet[r.IntN(7)] // valid characters, and now and then any other
			if r.IntN(500) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		if s := string(b); ValidKey(s) != want(s) {
			t.Fatalf("ValidKey(%q) = %v, pattern says %v", s, ValidKey(s), want(s))
		}
	}
}

// TestRegexLengthCountsCharacters: the 1,024 limit is on characters (EVALUATION.md), not bytes:
// 600 two-byte characters are allowed, 1,025 one-byte ones are not.
func TestRegexLengthCountsCharacters(t *testing.T) {
	if why := CheckClauseValue(OpMatches, strings.Repeat("é", 600)); why != "" {
		t.Errorf("600 characters (1,200 bytes): %s", why)
	}
	if why := CheckClauseValue(OpMatches, strings.Repeat("a", MaxRegexLength+1)); why == "" {
		t.Error("1,025 characters were accepted")
	}
}
