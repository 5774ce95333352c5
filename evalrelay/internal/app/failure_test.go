package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestNewestVersionWinsWithinAFetch: two publishers (an old leader finishing late) can put an
// older version after a newer one on the topic. A relay replaying the topic gets both in one
// fetch and must serve the newer one, as a relay that read them one at a time does.
func TestNewestVersionWinsWithinAFetch(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 5, true))
	produceRuleset(t, prod, relaytest.Ruleset("env1", 4, false)) // the lagging publisher
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true))  // a marker after both
	dir := t.TempDir()
	r := startRelay(t, testConfig(t, name, dir))
	r.waitVersion(t, "env2", 1)
	r.waitCaughtUp(t)
	if e := r.app.Store.Get("env1"); e == nil || e.Version != 5 {
		t.Fatalf("env1 after replaying v5 then v4: %v, want version 5", e != nil && e.Version == 4)
	}
	produceRuleset(t, prod, relaytest.Ruleset("env1", 6, false))
	r.waitVersion(t, "env1", 6)
}

// TestBootFromDiskThenKafkaReturns: a relay restarts while Kafka is unreachable, with a disk
// cache holding leftovers of a crash (a temporary file, a truncated ruleset). It boots, serves
// what is intact marked stale, and cleans the leftovers. When Kafka becomes reachable and the
// relay has read the topic, staleness clears (header and metric) for every environment —
// including one that did not change — streams opened while stale end, an older version on the
// topic (N-1) does not replace the one from disk (N), and a newer one (N+1) does.
func TestBootFromDiskThenKafkaReturns(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 4, true))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true))
	dir := t.TempDir()
	first := startRelay(t, testConfig(t, name, dir))
	first.waitVersion(t, "env1", 4)
	first.waitVersion(t, "env2", 1)
	first.stop()

	// Leftovers of a crash: a temporary file never renamed, a ruleset cut short (disk full).
	leftover := filepath.Join(dir, ".ruleset-123456")
	if err := os.WriteFile(leftover, []byte(`{"schema_version":1,`), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := relaytest.JSON(relaytest.Ruleset("env3", 1, true))
	if err := os.WriteFile(filepath.Join(dir, "env3.json"), truncated[:len(truncated)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// While the relay is down, a lagging publisher writes version 3 of env1.
	produceRuleset(t, prod, relaytest.Ruleset("env1", 3, false))

	// Kafka is "down": the relay's only broker address is a proxy that drops every connection.
	proxy := newKafkaProxy(t, testenv.KafkaBrokers()[0])
	proxy.Cut()
	cfg := testConfig(t, name, dir)
	cfg.KafkaBrokers = proxy.addr
	r := startRelay(t, cfg)

	server1, _ := relaytest.Keys("env1")
	server2, _ := relaytest.Keys("env2")
	server3, _ := relaytest.Keys("env3")
	for _, key := range []string{server1, server2} {
		resp, _ := get(t, "GET", r.base+"/sdk/v1/ruleset", key, "")
		if resp.StatusCode != 200 || resp.Header.Get("X-Switchyard-Stale") != "true" {
			t.Fatalf("booted from disk: %d, stale %q", resp.StatusCode, resp.Header.Get("X-Switchyard-Stale"))
		}
	}
	if resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", server3, ""); resp.StatusCode != 503 || strings.Contains(string(body), "env3") {
		t.Fatalf("the truncated file's environment: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("the temporary file a crash left behind is still there: %v", err)
	}
	_, staleStream := openStream(t, r.base, server2)
	if rs, _ := readPut(t, staleStream); rs.Version != 1 {
		t.Fatalf("stale stream: version %d", rs.Version)
	}

	// Kafka becomes reachable.
	proxy.Restore()
	r.waitCaughtUp(t)
	testenv.Eventually(t, 30*time.Second, "staleness to clear", func() bool { return !r.app.Store.Stale() })
	for _, key := range []string{server1, server2} {
		resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", key, "")
		if resp.StatusCode != 200 || resp.Header.Get("X-Switchyard-Stale") != "" {
			t.Fatalf("after catching up: %d, stale %q", resp.StatusCode, resp.Header.Get("X-Switchyard-Stale"))
		}
		var rs ruleset.Ruleset
		if key == server1 && (json.Unmarshal(body, &rs) != nil || rs.Version != 4) {
			t.Fatalf("env1 after the topic's older version 3: %s", body)
		}
	}
	if _, body := get(t, "GET", r.base+"/metrics", "", ""); !strings.Contains(string(body), "evalrelay_stale 0") {
		t.Fatal("stale metric not cleared")
	}
	readToEnd(t, staleStream, "the stream opened while stale")
	if rs, err := loadDisk(dir, "env1"); err != nil || rs.Version != 4 {
		t.Fatalf("env1 on disk: %v %v", rs.Version, err)
	}

	_, sse := openStream(t, r.base, server1)
	if rs, _ := readPut(t, sse); rs.Version != 4 {
		t.Fatalf("fresh stream: version %d", rs.Version)
	}
	produceRuleset(t, prod, relaytest.Ruleset("env1", 5, true))
	if rs, _ := readPut(t, sse); rs.Version != 5 {
		t.Fatalf("next put: version %d", rs.Version)
	}
}

func loadDisk(dir, env string) (ruleset.Ruleset, error) {
	var rs ruleset.Ruleset
	raw, err := os.ReadFile(filepath.Join(dir, env+".json"))
	if err == nil {
		err = json.Unmarshal(raw, &rs)
	}
	return rs, err
}

// TestKafkaOutageWhileRunning: a relay that is up and caught up loses Kafka. Its probe notices:
// every answer — the ruleset, OFREP, a new stream — says stale (header and metric) and serves
// what it had; a stream opened before the outage stays open. Changes published meanwhile are
// read once Kafka is back, and staleness clears only when they have been: the relay never
// says fresh while serving a ruleset the topic has replaced. To make that window observable
// whatever the timing, the proxy holds the relay's fetches when Kafka comes back, and its
// second probe (sent only after it has handled the first answer): at that point the relay has
// seen Kafka answer but cannot have read the changes, so it must still say stale.
func TestKafkaOutageWhileRunning(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, true))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true))
	proxy := newKafkaProxy(t, testenv.KafkaBrokers()[0])
	cfg := testConfig(t, name, t.TempDir())
	cfg.KafkaBrokers = proxy.addr
	r := startRelay(t, cfg)
	r.waitVersion(t, "env1", 1)
	r.waitVersion(t, "env2", 1)
	r.waitCaughtUp(t)
	if proxy.Rewritten() == 0 {
		t.Fatal("the relay's metadata did not come through the proxy")
	}
	server1, client1 := relaytest.Keys("env1")
	server2, _ := relaytest.Keys("env2")
	// served answers, whether stale, and the version of env1's ruleset and of its banner flag by OFREP
	type answers struct {
		rulesetStale, ofrepStale, bulkStale bool
		version                             int64
		banner                              map[string]any
	}
	serve := func() answers {
		var a answers
		resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", server1, "")
		var rs ruleset.Ruleset
		if resp.StatusCode != 200 || json.Unmarshal(body, &rs) != nil || resp.Header.Get("ETag") != fmt.Sprintf(`"env1-%d"`, rs.Version) {
			t.Fatalf("ruleset: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		a.rulesetStale, a.version = resp.Header.Get("X-Switchyard-Stale") == "true", rs.Version
		resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/banner", client1, `{"context":{"targetingKey":"u1","plan":"beta"}}`)
		if resp.StatusCode != 200 || json.Unmarshal(body, &a.banner) != nil {
			t.Fatalf("OFREP: %d %s", resp.StatusCode, body)
		}
		a.ofrepStale = resp.Header.Get("X-Switchyard-Stale") == "true"
		resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", client1, `{"context":{"targetingKey":"u1","plan":"beta"}}`)
		if resp.StatusCode != 200 {
			t.Fatalf("OFREP bulk: %d %s", resp.StatusCode, body)
		}
		a.bulkStale = resp.Header.Get("X-Switchyard-Stale") == "true"
		return a
	}
	metric := func() string {
		_, body := get(t, "GET", r.base+"/metrics", "", "")
		return grepLines(string(body), "evalrelay_stale ")
	}
	if a := serve(); a.rulesetStale || a.ofrepStale || a.bulkStale || a.version != 1 {
		t.Fatalf("before the outage: %+v", a)
	}
	_, before := openStream(t, r.base, server1)
	if rs, _ := readPut(t, before); rs.Version != 1 {
		t.Fatalf("stream opened before the outage: version %d", rs.Version)
	}

	// Kafka goes away.
	proxy.Cut()
	testenv.Eventually(t, 30*time.Second, "the relay to notice Kafka is unreachable", func() bool { return serve().rulesetStale })
	// Changes published while the relay is cut off (to the broker itself).
	produceRuleset(t, prod, relaytest.Ruleset("env1", 2, false))
	a := serve()
	if !a.ofrepStale || !a.bulkStale || a.version != 1 || a.banner["value"] != true || a.banner["reason"] != "TARGETING_MATCH" {
		t.Fatalf("while Kafka is unreachable, the relay serves what it had, marked stale: %+v", a)
	}
	if m := metric(); m != "evalrelay_stale 1" {
		t.Fatalf("metric while Kafka is unreachable: %q", m)
	}
	staleResp, during := openStream(t, r.base, server2)
	if rs, _ := readPut(t, during); rs.Version != 1 || staleResp.Header.Get("X-Switchyard-Stale") != "true" {
		t.Fatalf("stream opened during the outage: version %d, stale %q", rs.Version, staleResp.Header.Get("X-Switchyard-Stale"))
	}

	// Kafka comes back, with the relay's fetches held and its second probe too.
	hold := holdFetchesAndSecondProbe(t, proxy)
	proxy.Restore()
	select {
	case <-hold.second:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not probe Kafka twice after it came back")
	}
	if a := serve(); !a.rulesetStale || !a.ofrepStale || a.version != 1 {
		t.Fatalf("Kafka answered but the changes of the outage are not read yet (fetches held): %+v, want stale at version 1", a)
	}
	// The relay's fetches go through the proxy too (the consumer may retry later than the probe).
	testenv.Eventually(t, 30*time.Second, "a fetch of the relay to reach the proxy", func() bool { return hold.fetches() > 0 })
	proxy.SetGate(nil)
	hold.release()

	// The first fresh answer serves the outage's change.
	var first answers
	testenv.Eventually(t, 30*time.Second, "staleness to clear", func() bool {
		first = serve()
		return !first.rulesetStale
	})
	if first.version != 2 || first.ofrepStale || first.bulkStale || first.banner["value"] != false || first.banner["reason"] != "DISABLED" {
		t.Fatalf("first fresh answers after the outage: %+v, want version 2", first)
	}
	if resp, _ := get(t, "GET", r.base+"/sdk/v1/ruleset", server2, ""); resp.Header.Get("X-Switchyard-Stale") != "" {
		t.Fatal("an environment unchanged during the outage is still stale")
	}
	if m := metric(); m != "evalrelay_stale 0" {
		t.Fatalf("metric after the outage: %q", m)
	}
	readToEnd(t, during, "the stream opened during the outage")
	if rs, _ := readPut(t, before); rs.Version != 2 {
		t.Fatalf("stream opened before the outage: version %d after it, want 2", rs.Version)
	}
	produceRuleset(t, prod, relaytest.Ruleset("env1", 3, true))
	if rs, _ := readPut(t, before); rs.Version != 3 {
		t.Fatalf("stream opened before the outage: next version %d, want 3", rs.Version)
	}
}
