package rulesets

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func TestApplyOrderingAndRejection(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 5, true))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 4, false))); !errors.Is(err, ErrStale) {
		t.Fatalf("older version: %v", err)
	}
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 5, false))); !errors.Is(err, ErrStale) {
		t.Fatalf("same version: %v", err)
	}
	for name, raw := range map[string][]byte{
		"not JSON":         []byte("{nope"),
		"wrong schema":     []byte(`{"schema_version":9,"environment":{"id":"env1"},"version":6,"flags":[],"segments":[]}`),
		"another env's":    relaytest.JSON(relaytest.Ruleset("env2", 6, true)),
		"bad key hash":     []byte(`{"schema_version":1,"environment":{"id":"env1"},"version":6,"flags":[],"segments":[],"sdk_keys":[{"hash":"md5:x","kind":"server"}]}`),
		"flags not a list": []byte(`{"schema_version":1,"environment":{"id":"env1"},"version":6,"flags":{},"segments":[]}`),
	} {
		if _, err := s.Apply("env1", raw); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: want ErrMalformed, got %v", name, err)
		}
	}
	// The same, after a large ruleset, where a patch would be smaller than the document.
	big := relaytest.Ruleset("env1", 5, true)
	for i := 0; i < 50; i++ {
		f := big.Flags[1]
		f.Key = fmt.Sprintf("pad-%d", i)
		big.Flags = append(big.Flags, f)
	}
	bigStore := New("")
	if _, err := bigStore.Apply("env1", relaytest.JSON(big)); err != nil {
		t.Fatal(err)
	}
	big.Version = 6
	variant := func(edit func(doc map[string]any)) []byte {
		var doc map[string]any
		_ = json.Unmarshal(relaytest.JSON(big), &doc)
		edit(doc)
		out, _ := json.Marshal(doc)
		return out
	}
	for name, raw := range map[string][]byte{
		"wrong schema":  variant(func(doc map[string]any) { doc["schema_version"] = 9 }),
		"no segments":   variant(func(doc map[string]any) { delete(doc, "segments") }),
		"no flags":      variant(func(doc map[string]any) { delete(doc, "flags") }),
		"null segments": variant(func(doc map[string]any) { doc["segments"] = nil }),
	} {
		if _, err := bigStore.Apply("env1", raw); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s after a large ruleset: want ErrMalformed, got %v", name, err)
		}
	}
	if e := s.Get("env1"); e == nil || e.Version != 5 || e.ETag != `"env1-5"` {
		t.Fatalf("previous ruleset not kept: %+v", e)
	}
	// A newer one replaces it and is persisted; a restart from disk serves it.
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 7, false))); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "env1.json")); err != nil {
		t.Fatal("not persisted:", err)
	}
	again := New(dir)
	if n, err := again.LoadDisk(); err != nil || n != 1 || again.Get("env1").Version != 7 {
		t.Fatalf("reload: %d %v", n, err)
	}
	// A tombstone forgets the environment, its keys and its file.
	server, _ := relaytest.Keys("env1")
	if _, ok := s.Authenticate(server); !ok {
		t.Fatal("server key not accepted")
	}
	if _, err := s.Apply("env1", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(server); ok || s.Get("env1") != nil {
		t.Fatal("deleted environment still served")
	}
	if _, err := os.Stat(filepath.Join(dir, "env1.json")); !os.IsNotExist(err) {
		t.Fatal("deleted environment still on disk")
	}
}

func TestAuthenticateKeysAndExpiry(t *testing.T) {
	s := New("")
	now := time.Now()
	s.now = func() time.Time { return now }
	rs := relaytest.Ruleset("env1", 1, true)
	soon := now.Add(time.Hour)
	rs.SDKKeys = append(rs.SDKKeys, ruleset.SDKKey{Hash: relaytest.Hash("rotated-old"), Kind: ruleset.KeyServer, ExpiresAt: &soon})
	if _, err := s.Apply("env1", relaytest.JSON(rs)); err != nil {
		t.Fatal(err)
	}
	server, client := relaytest.Keys("env1")
	if k, ok := s.Authenticate(server); !ok || k.Kind != ruleset.KeyServer || k.Entry.EnvID != "env1" {
		t.Fatalf("server key: %+v %v", k, ok)
	}
	if k, ok := s.Authenticate(client); !ok || k.Kind != ruleset.KeyClient {
		t.Fatal("client key")
	}
	if _, ok := s.Authenticate("rotated-old"); !ok {
		t.Fatal("a rotated key works during its grace period")
	}
	now = now.Add(2 * time.Hour)
	if _, ok := s.Authenticate("rotated-old"); ok {
		t.Fatal("a rotated key must stop working when its grace period ends")
	}
	for _, k := range []string{"", "sdk-srv-unknown", server + " "} {
		if _, ok := s.Authenticate(k); ok {
			t.Fatalf("key %q accepted", k)
		}
	}
	// Revocation: the next ruleset no longer lists the client key.
	rs.Version = 2
	rs.SDKKeys = rs.SDKKeys[:1]
	if _, err := s.Apply("env1", relaytest.JSON(rs)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(client); ok {
		t.Fatal("revoked client key still accepted")
	}
}

// TestSlowSubscriberOnlyGetsTheNewest: a subscriber that does not read is never blocking
// and, when it reads, gets the newest version only.
func TestSlowSubscriberOnlyGetsTheNewest(t *testing.T) {
	s := New("")
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 1, true))); err != nil {
		t.Fatal(err)
	}
	slow := s.Subscribe("env1")
	fast := s.Subscribe("env1")
	var got []int64
	for v := int64(2); v <= 100; v++ {
		if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", v, v%2 == 0))); err != nil {
			t.Fatal(err)
		}
		<-fast.Wake()
		got = append(got, fast.Take().Version)
	}
	if len(got) != 99 || got[98] != 100 {
		t.Fatalf("fast subscriber saw %d versions", len(got))
	}
	<-slow.Wake()
	if e := slow.Take(); e == nil || e.Version != 100 {
		t.Fatalf("slow subscriber should see only the newest: %+v", e)
	}
	if s.Subscribers() != 2 {
		t.Fatal("subscribers")
	}
	s.Unsubscribe(slow)
	s.Apply("env1", nil)
	select {
	case <-fast.Done():
	default:
		t.Fatal("deleting the environment must end its streams")
	}
}

// TestDeletionDuringAFlushRemovesTheFile: a tombstone that arrives while the persister writes
// the environment's ruleset leaves no file behind, so a restart without Kafka does not serve
// the deleted environment again.
func TestDeletionDuringAFlushRemovesTheFile(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if _, err := s.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 1, true))); err != nil {
		t.Fatal(err)
	}
	removed := make(chan struct{})
	beforeWrite = func(string) {
		go func() {
			_, _ = s.Apply("env1", nil)
			close(removed)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for s.Get("env1") != nil { // the deletion has swapped the snapshot
			if time.Now().After(deadline) {
				t.Error("the deletion did not happen")
				return
			}
			runtime.Gosched()
		}
	}
	defer func() { beforeWrite = nil }()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	<-removed
	if _, err := os.Stat(filepath.Join(dir, "env1.json")); !os.IsNotExist(err) {
		t.Fatalf("the deleted environment's file is on disk: %v", err)
	}
	if n, _ := New(dir).LoadDisk(); n != 0 {
		t.Fatalf("a restart loads %d rulesets", n)
	}
}
