package publisher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// encodeCase builds a ruleset of n flags the way compile does, with their sources and fresh
// JSON slots; the environment's name holds what encode looks for, and values need escaping.
func encodeCase(n int) (ruleset.Ruleset, []flagSource) {
	rs := ruleset.Ruleset{SchemaVersion: ruleset.SchemaVersion, Version: 42,
		Environment: ruleset.Environment{ID: "env-1", Key: "production", Name: `"flags":[] <&> é`, ProjectID: "p-1", ProjectKey: "shop"},
		GeneratedAt: time.Date(2026, 11, 26, 23, 0, 0, 123456789, time.UTC),
		Flags:       []ruleset.Flag{},
		Segments:    []ruleset.Segment{{Key: "beta", Version: 3, Included: []ruleset.SegmentTarget{{ContextKind: "user", Values: []string{"a<b>"}}}}},
		SDKKeys:     []ruleset.SDKKey{{Hash: "sha256:00", Kind: ruleset.KeyServer}},
	}
	var sources []flagSource
	for i := 0; i < n; i++ {
		f := &domain.Flag{Key: fmt.Sprintf("flag-%03d", i), Kind: ruleset.KindBoolean, ClientSide: i%2 == 0,
			Variations: []ruleset.Variation{{Key: "on", Value: json.RawMessage(`true`), Name: "On <b>"}, {Key: "off", Value: json.RawMessage(` false `)}}}
		c := &domain.FlagConfig{On: i%3 == 0, OffVariation: "off", Fallthrough: ruleset.Serve{Variation: "on"},
			Rules: []ruleset.Rule{{ID: fmt.Sprintf("r%d", i), Clauses: []ruleset.Clause{{Attribute: "email", Op: "endsWith", Values: []any{"@example.com", 3.5e-7}}},
				Serve: ruleset.Serve{Variation: "off"}}}}
		rs.Flags = append(rs.Flags, domain.RulesetFlag(f, c, int64(i+1)))
		sources = append(sources, flagSource{flag: f, version: int64(i + 1), json: &store.FlagJSON{}})
	}
	return rs, sources
}

func mustEqualMarshal(t *testing.T, what string, rs ruleset.Ruleset, sources []flagSource) {
	t.Helper()
	got, err := encode(rs, sources)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encode differs from json.Marshal:\n%s\n%s", what, got, want)
	}
}

// TestEncodeIsJSONMarshal: encode writes exactly what json.Marshal writes, on the first
// publish (every flag encoded), on the next (every flag's JSON reused), after a flag's
// configuration changed (its version: encoded again), and after a change of the flag's row only
// (client_side: the same decoding, so the same slot — encoded again, not reused).
func TestEncodeIsJSONMarshal(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		rs, sources := encodeCase(n)
		mustEqualMarshal(t, fmt.Sprintf("%d flags, first", n), rs, sources)
		for i, s := range sources {
			if _, ok := s.json.Get(s.flag, s.version); !ok {
				t.Fatalf("flag %d: its JSON was not kept", i)
			}
		}
		mustEqualMarshal(t, fmt.Sprintf("%d flags, again", n), rs, sources)
		if n == 0 {
			continue
		}
		// A configuration change: a new version of the flag's configuration.
		sources[0].version++
		rs.Flags[0].Version, rs.Flags[0].On = sources[0].version, !rs.Flags[0].On
		mustEqualMarshal(t, "configuration changed", rs, sources)
		// The flag's row changed, its stored variations and configuration did not.
		f := *sources[n-1].flag
		f.ClientSide = !f.ClientSide
		sources[n-1].flag = &f
		rs.Flags[n-1].ClientSide = f.ClientSide
		mustEqualMarshal(t, "client_side changed", rs, sources)
	}
	// Without slots (a ruleset not compiled here) it is json.Marshal too.
	rs, _ := encodeCase(3)
	mustEqualMarshal(t, "no sources", rs, nil)
}

// BenchmarkEncode: publishing an environment of 1,000 flags in which one changed.
func BenchmarkEncode(b *testing.B) {
	rs, sources := encodeCase(1000)
	b.Run("json.Marshal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := json.Marshal(rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode, one flag changed", func(b *testing.B) {
		if _, err := encode(rs, sources); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			sources[0].version++
			rs.Flags[0].Version = sources[0].version
			if _, err := encode(rs, sources); err != nil {
				b.Fatal(err)
			}
		}
	})
}
