package keys

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func rulesetJSON(t *testing.T, env string, version int64, ks ...ruleset.SDKKey) []byte {
	t.Helper()
	b, err := json.Marshal(ruleset.Ruleset{Environment: ruleset.Environment{ID: env}, Version: version, SDKKeys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRing(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := NewRing(func() time.Time { return now })
	soon, past := now.Add(time.Hour), now.Add(-time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Apply([]byte("e1"), rulesetJSON(t, "e1", 2,
		ruleset.SDKKey{Hash: Hash("srv"), Kind: ruleset.KeyServer},
		ruleset.SDKKey{Hash: Hash("cli"), Kind: ruleset.KeyClient, ExpiresAt: &soon},
		ruleset.SDKKey{Hash: Hash("old"), Kind: ruleset.KeyServer, ExpiresAt: &past},
		ruleset.SDKKey{Hash: "md5:abc", Kind: ruleset.KeyServer})))
	must(r.Apply([]byte("e2"), rulesetJSON(t, "e2", 1, ruleset.SDKKey{Hash: Hash("two"), Kind: ruleset.KeyServer})))

	for _, tc := range []struct {
		key, env string
		kind     ruleset.KeyKind
		err      error
	}{
		{"srv", "e1", ruleset.KeyServer, nil},
		{"cli", "e1", ruleset.KeyClient, nil},
		{"two", "e2", ruleset.KeyServer, nil},
		{"old", "", "", ErrExpiredKey},
		{"nope", "", "", ErrUnknownKey},
	} {
		k, err := r.Lookup(tc.key)
		if !errors.Is(err, tc.err) || k.EnvironmentID != tc.env || k.Kind != tc.kind {
			t.Fatalf("%s: got %+v, %v; want %s %s %v", tc.key, k, err, tc.env, tc.kind, tc.err)
		}
	}
	// An older version does not replace a newer one; a newer one replaces all keys.
	must(r.Apply([]byte("e1"), rulesetJSON(t, "e1", 1, ruleset.SDKKey{Hash: Hash("stale"), Kind: ruleset.KeyServer})))
	if _, err := r.Lookup("stale"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("stale ruleset applied: %v", err)
	}
	must(r.Apply([]byte("e1"), rulesetJSON(t, "e1", 3, ruleset.SDKKey{Hash: Hash("new"), Kind: ruleset.KeyServer})))
	if _, err := r.Lookup("srv"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotated-out key still valid: %v", err)
	}
	if k, err := r.Lookup("new"); err != nil || k.EnvironmentID != "e1" {
		t.Fatalf("new key: %+v %v", k, err)
	}
	// Tombstone.
	must(r.Apply([]byte("e2"), nil))
	if _, err := r.Lookup("two"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("tombstoned environment's key still valid: %v", err)
	}
	if err := r.Apply([]byte("e3"), []byte("{not json")); err == nil {
		t.Fatal("invalid ruleset accepted")
	}
}
