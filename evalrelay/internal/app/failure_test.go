package app

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

	// Kafka is "down": the relay's only broker address is a port nothing listens on yet.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := hold.Addr().String()
	hold.Close()
	cfg := testConfig(t, name, dir)
	cfg.KafkaBrokers = addr
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

	// Kafka becomes reachable: a proxy to the real broker starts on the relay's address.
	proxyKafka(t, addr, testenv.KafkaBrokers()[0])
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

// proxyKafka forwards connections on addr to the broker until the test ends. The client finds
// the broker through it, then connects to the broker's advertised address itself.
func proxyKafka(t testing.TB, addr, broker string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", broker)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}
