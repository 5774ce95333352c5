package app

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func TestRulesetPollingETagGzipAndAuth(t *testing.T) {
	r, _ := relayServing(t, 3, true)
	server, client := relaytest.Keys("env1")

	resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", server, "")
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"env1-3"` || resp.Header.Get("X-Switchyard-Stale") != "" {
		t.Fatalf("ruleset: %d %v", resp.StatusCode, resp.Header)
	}
	var rs ruleset.Ruleset
	if err := json.Unmarshal(body, &rs); err != nil || rs.Version != 3 || rs.Flag("banner") == nil {
		t.Fatalf("body: %v", err)
	}
	resp, body = get(t, "GET", r.base+"/sdk/v1/ruleset", "Bearer "+server, "", "If-None-Match", `"env1-3"`)
	if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("If-None-Match: %d %v", resp.StatusCode, resp.Header)
	}
	// A cache in between may send a list and weak tags (RFC 9110): compared weakly.
	if resp, _ = get(t, "GET", r.base+"/sdk/v1/ruleset", server, "", "If-None-Match", `"env1-2", W/"env1-3"`); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match with a list of weak tags: %d", resp.StatusCode)
	}
	if resp, _ = get(t, "GET", r.base+"/sdk/v1/ruleset", server, "", "Accept-Encoding", "gzip;q=0, identity"); resp.Header.Get("Content-Encoding") != "" ||
		resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip refused with q=0: %v", resp.Header)
	}
	resp, body = get(t, "GET", r.base+"/sdk/v1/ruleset", server, "", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal("gzip not served")
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, r.app.Store.Get("env1").JSON) {
		t.Fatal("gzip body differs from the ruleset")
	}
	if resp, _ = get(t, "GET", r.base+"/sdk/v1/ruleset", client, ""); resp.StatusCode != 403 {
		t.Fatalf("client key on the server endpoint: %d", resp.StatusCode)
	}
	for _, k := range []string{"", "sdk-srv-nope", server + "x"} {
		resp, body = get(t, "GET", r.base+"/sdk/v1/ruleset", k, "")
		if resp.StatusCode != 401 || strings.Contains(string(body), "env1") {
			t.Fatalf("key %q: %d %s", k, resp.StatusCode, body)
		}
	}
}

// readEvent reads SSE lines until an event's data line, returning the event's name and data and
// how many pings came first.
func readEvent(t testing.TB, br *bufio.Reader) (event string, data []byte, pings int) {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == ": ping":
			pings++
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			return event, []byte(strings.TrimPrefix(line, "data: ")), pings
		}
	}
}

// readPut reads SSE lines until a put event, returning its ruleset and how many pings came first.
func readPut(t testing.TB, br *bufio.Reader) (ruleset.Ruleset, int) {
	t.Helper()
	pings := 0
	for {
		event, data, n := readEvent(t, br)
		pings += n
		if event != "put" {
			continue
		}
		var rs ruleset.Ruleset
		if err := json.Unmarshal(data, &rs); err != nil {
			t.Fatalf("put is not a ruleset: %v", err)
		}
		return rs, pings
	}
}

// readPatch reads the next event, which must be a patch, and returns its versions and the keys
// of the flags it carries.
func readPatch(t testing.TB, br *bufio.Reader) (base, version int64, flags []string) {
	t.Helper()
	event, data, _ := readEvent(t, br)
	var p struct {
		BaseVersion int64          `json:"base_version"`
		Version     int64          `json:"version"`
		Flags       []ruleset.Flag `json:"flags"`
	}
	if event != "patch" || json.Unmarshal(data, &p) != nil {
		t.Fatalf("want a patch, got %s: %s", event, data)
	}
	for _, f := range p.Flags {
		flags = append(flags, f.Key)
	}
	return p.BaseVersion, p.Version, flags
}

func openStream(t testing.TB, base, key string, query ...string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/sdk/v1/stream"+strings.Join(query, ""), nil)
	req.Header.Set("Authorization", key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	return resp, bufio.NewReaderSize(resp.Body, 1<<20)
}

// TestStreamAcrossTwoRelays: two relays on the same topic stream every change, in order,
// with heartbeats in between; a stream that asks for patches gets only what changed.
func TestStreamAcrossTwoRelays(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, false))
	a := startRelay(t, testConfig(t, name, t.TempDir()))
	b := startRelay(t, testConfig(t, name, t.TempDir()))
	a.waitVersion(t, "env1", 1)
	b.waitVersion(t, "env1", 1)
	server, _ := relaytest.Keys("env1")
	_, sa := openStream(t, a.base, server)
	_, sb := openStream(t, b.base, server)
	_, sp := openStream(t, b.base, server, "?patch=1")
	for _, s := range []*bufio.Reader{sa, sb, sp} {
		if rs, _ := readPut(t, s); rs.Version != 1 || rs.Flag("banner").On {
			t.Fatalf("first put: version %d", rs.Version)
		}
	}
	produceRuleset(t, prod, relaytest.Ruleset("env1", 2, true))
	for _, s := range []*bufio.Reader{sa, sb} {
		if rs, _ := readPut(t, s); rs.Version != 2 || !rs.Flag("banner").On {
			t.Fatalf("update: version %d", rs.Version)
		}
	}
	if base, v, flags := readPatch(t, sp); base != 1 || v != 2 || !slices.Equal(flags, []string{"banner"}) {
		t.Fatalf("patch %d→%d with %v; want 1→2 with banner only", base, v, flags)
	}
	// An older record (a lagging publisher) is never streamed.
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, false))
	produceRuleset(t, prod, relaytest.Ruleset("env1", 3, false))
	rs, _ := readPut(t, sa)
	if rs.Version != 3 {
		t.Fatalf("after an older record, want version 3, got %d", rs.Version)
	}
	if base, v, _ := readPatch(t, sp); base != 2 || v != 3 {
		t.Fatalf("patch %d→%d; want 2→3", base, v)
	}
	// Relay a timed its two updates to its one stream (versions 2 and 3; the first put is
	// the connection's, not an update).
	// (Observed just after the write, so poll.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, metrics := get(t, "GET", a.base+"/metrics", "", "")
		if strings.Contains(string(metrics), "evalrelay_stream_delivery_seconds_count 2\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want two stream deliveries timed on relay a:\n%s", grepLines(string(metrics), "evalrelay_stream_delivery"))
		}
	}
	// Heartbeats (1 s in tests) arrive while nothing changes.
	deadline := time.Now().Add(5 * time.Second)
	pings := 0
	for pings < 2 && time.Now().Before(deadline) {
		line, err := sb.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ": ping") {
			pings++
		}
	}
	if pings < 2 {
		t.Fatal("no heartbeats")
	}
	_, metrics := get(t, "GET", b.base+"/metrics", "", "")
	if !strings.Contains(string(metrics), `evalrelay_stream_events_total{event="patch"} 2`) {
		t.Errorf("want two patches counted on relay b:\n%s", grepLines(string(metrics), "evalrelay_stream_events"))
	}
	if n := a.app.Store.Subscribers(); n != 1 {
		t.Fatalf("open streams on relay a: %d", n)
	}
}

func TestRemoteEvaluationAndOFREP(t *testing.T) {
	r, prod := relayServing(t, 1, true)
	server, client := relaytest.Keys("env1")

	var out struct {
		Flags map[string]flagResultJSON `json:"flags"`
	}
	resp, body := get(t, "POST", r.base+"/sdk/v1/evaluate", client, `{"context":{"kind":"user","key":"u1","plan":"beta"}}`)
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("evaluate: %d %s", resp.StatusCode, body)
	}
	if len(out.Flags) != 1 || out.Flags["banner"].Reason != "TARGETING_MATCH" || string(out.Flags["banner"].Value) != "true" || out.Flags["banner"].RuleID != "beta" {
		t.Fatalf("client key must see only client-side flags, evaluated: %s", body)
	}
	out.Flags = nil
	resp, body = get(t, "POST", r.base+"/sdk/v1/evaluate", server, `{"context":{"key":"u1"},"flags":["limit","ghost"]}`)
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil ||
		out.Flags["limit"].Variation != "high" || out.Flags["limit"].Reason != "DEFAULT" || out.Flags["ghost"].ErrorCode != "FLAG_NOT_FOUND" {
		t.Fatalf("server key: %d %s", resp.StatusCode, body)
	}
	out.Flags = nil
	resp, body = get(t, "POST", r.base+"/sdk/v1/evaluate", client, `{"context":{"key":"u1"},"flags":["limit"]}`)
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || out.Flags["limit"].ErrorCode != "FLAG_NOT_FOUND" {
		t.Fatalf("a server-only flag leaked to a client key: %d %s", resp.StatusCode, body)
	}
	if resp, _ = get(t, "POST", r.base+"/sdk/v1/evaluate", client, `{"context":{"kind":"multi"}}`); resp.StatusCode != 422 {
		t.Fatalf("invalid context: %d", resp.StatusCode)
	}
	// A missing or null context is malformed, one that is no object invalid; both name the field.
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"flags":["limit"]}`, 400, "context"}, {`{"context":null}`, 400, "context"}, {`{"context":5,"flags":[]}`, 422, "context"},
		{`{"context":["u1"]}`, 422, "context"}, {`{"context":{"key":"u1"},"flags":"limit"}`, 400, "flags"},
		{`{"context":{"key":"u1"},"flags":[1]}`, 400, "flags"},
	} {
		resp, body := get(t, "POST", r.base+"/sdk/v1/evaluate", client, c.body)
		if resp.StatusCode != c.status || !strings.Contains(string(body), `"field":"`+c.field+`"`) {
			t.Fatalf("%s: %d %s, want %d naming %s", c.body, resp.StatusCode, body, c.status, c.field)
		}
	}

	// OFREP, single flag: success, not found, missing targeting key, X-API-Key auth.
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/limit", "Bearer "+server, `{"context":{"targetingKey":"u1"}}`)
	var one map[string]any
	json.Unmarshal(body, &one)
	if resp.StatusCode != 200 || one["key"] != "limit" || one["value"] != float64(100) || one["variant"] != "high" || one["reason"] != "DEFAULT" {
		t.Fatalf("OFREP single: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/ghost", "", `{"context":{"targetingKey":"u1"}}`, "X-API-Key", server)
	json.Unmarshal(body, &one)
	if resp.StatusCode != 404 || one["errorCode"] != "FLAG_NOT_FOUND" {
		t.Fatalf("OFREP not found: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/banner", server, `{"context":{"plan":"beta"}}`)
	json.Unmarshal(body, &one)
	if resp.StatusCode != 400 || one["errorCode"] != "TARGETING_KEY_MISSING" {
		t.Fatalf("OFREP no targeting key: %d %s", resp.StatusCode, body)
	}
	// A flag that does not exist is not found whatever the context (EVALUATION.md's precedence).
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/ghost", server, `{"context":{}}`)
	json.Unmarshal(body, &one)
	if resp.StatusCode != 404 || one["errorCode"] != "FLAG_NOT_FOUND" {
		t.Fatalf("OFREP unknown flag, empty context: %d %s", resp.StatusCode, body)
	}
	// A multi context as OpenFeature SDKs send it: the targeting key also at the top level, and
	// each kind's key as its targetingKey. The scheme "bearer" in any case.
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags/banner", "bearer "+server,
		`{"context":{"kind":"multi","targetingKey":"u1","user":{"targetingKey":"u1","plan":"beta"},"device":{"targetingKey":"d1"}}}`)
	json.Unmarshal(body, &one)
	if resp.StatusCode != 200 || one["reason"] != "TARGETING_MATCH" || one["value"] != true {
		t.Fatalf("OFREP multi context: %d %s", resp.StatusCode, body)
	}
	// OFREP bulk with ETag.
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", client, `{"context":{"targetingKey":"u2"}}`)
	var bulk struct {
		Flags []map[string]any `json:"flags"`
	}
	json.Unmarshal(body, &bulk)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || len(bulk.Flags) != 1 || bulk.Flags[0]["key"] != "banner" || bulk.Flags[0]["reason"] != "SPLIT" || etag == "" {
		t.Fatalf("OFREP bulk: %d %s", resp.StatusCode, body)
	}
	if resp, _ = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", client, `{"context":{"targetingKey":"u2"}}`, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Fatalf("OFREP bulk 304: %d", resp.StatusCode)
	}
	// A server key sees more flags for the same request: another ETag.
	if resp, _ = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", server, `{"context":{"targetingKey":"u2"}}`, "If-None-Match", etag); resp.StatusCode != 200 {
		t.Fatalf("OFREP bulk with a server key and the client key's ETag: %d", resp.StatusCode)
	}
	produceRuleset(t, prod, relaytest.Ruleset("env1", 2, false))
	r.waitVersion(t, "env1", 2)
	resp, body = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", client, `{"context":{"targetingKey":"u2"}}`, "If-None-Match", etag)
	json.Unmarshal(body, &bulk)
	if resp.StatusCode != 200 || bulk.Flags[0]["reason"] != "DISABLED" || bulk.Flags[0]["value"] != false {
		t.Fatalf("OFREP bulk after a change: %d %s", resp.StatusCode, body)
	}

	// CORS preflight for browsers.
	resp, _ = get(t, "OPTIONS", r.base+"/ofrep/v1/evaluate/flags", "", "", "Origin", "https://shop.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("CORS preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = get(t, "OPTIONS", r.base+"/ofrep/v1/configuration", "", "", "Origin", "https://shop.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "authorization")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("CORS preflight of the OFREP configuration: %d %v", resp.StatusCode, resp.Header)
	}
}

type flagResultJSON struct {
	Value     json.RawMessage `json:"value"`
	Variation string          `json:"variation"`
	Reason    string          `json:"reason"`
	ErrorCode string          `json:"error_code"`
	RuleID    string          `json:"rule_id"`
}

func TestPerKeyRateLimit(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, true))
	cfg := testConfig(t, name, t.TempDir())
	cfg.ClientRate = 5
	r := startRelay(t, cfg)
	r.waitVersion(t, "env1", 1)
	server, client := relaytest.Keys("env1")
	limited := 0
	for i := 0; i < 30; i++ {
		resp, _ := get(t, "POST", r.base+"/sdk/v1/evaluate", client, `{"context":{"key":"u"}}`)
		if resp.StatusCode == 429 {
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Fatal("client key never limited at 5 req/s")
	}
	if resp, _ := get(t, "GET", r.base+"/sdk/v1/ruleset", server, ""); resp.StatusCode != 200 {
		t.Fatalf("the server key has its own budget: %d", resp.StatusCode)
	}
}

func TestMalformedRulesetKeepsThePreviousOne(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, true))
	produce(t, prod, "env1", []byte(`{"schema_version":1,"environment":{"id":"env1"},"version":2,"flags":"oops"}`))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true)) // a marker after the bad record
	r := startRelay(t, testConfig(t, name, t.TempDir()))
	r.waitVersion(t, "env2", 1)
	if e := r.app.Store.Get("env1"); e == nil || e.Version != 1 {
		t.Fatalf("malformed record replaced the ruleset: %+v", e)
	}
	resp, body := get(t, "GET", r.base+"/metrics", "", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `evalrelay_ruleset_records_total{outcome="rejected"} 1`) {
		t.Fatalf("rejection not counted: %s", body)
	}
	if !strings.Contains(string(body), `evalrelay_ruleset_version{environment="env1"`) {
		t.Fatal("per-environment version metric missing")
	}
}

// TestBootsFromDiskWhenKafkaIsDown: a relay that read the topic once restarts with no
// reachable broker and serves what it had, marked stale.
func TestBootsFromDiskWhenKafkaIsDown(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 4, true))
	dir := t.TempDir()
	first := startRelay(t, testConfig(t, name, dir))
	first.waitVersion(t, "env1", 4)
	first.stop()

	cfg := testConfig(t, name, dir)
	cfg.KafkaBrokers = "127.0.0.1:1" // nothing listens there: Kafka is down for this relay
	second := startRelay(t, cfg)
	server, _ := relaytest.Keys("env1")
	resp, body := get(t, "GET", second.base+"/sdk/v1/ruleset", server, "")
	var rs ruleset.Ruleset
	if resp.StatusCode != 200 || json.Unmarshal(body, &rs) != nil || rs.Version != 4 {
		t.Fatalf("serving from disk: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Switchyard-Stale") != "true" {
		t.Fatal("stale header missing while Kafka is unreachable")
	}
	if resp, _ := get(t, "GET", second.base+"/readyz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("a relay serving from disk is ready: %d", resp.StatusCode)
	}
	if _, body = get(t, "GET", second.base+"/metrics", "", ""); !strings.Contains(string(body), "evalrelay_stale 1") {
		t.Fatal("stale metric not set")
	}
	_, sse := openStream(t, second.base, server)
	if got, _ := readPut(t, sse); got.Version != 4 {
		t.Fatal(fmt.Sprint("stream from disk: ", got.Version))
	}
	// A key the disk cache does not know may be of an environment created since: 503, retry.
	if resp, _ := get(t, "GET", second.base+"/sdk/v1/ruleset", "sdk-srv-test-env2", ""); resp.StatusCode != 503 {
		t.Fatalf("an unknown key while the topic cannot be read: %d", resp.StatusCode)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestForgetsEnvironmentsTheTopicNoLongerHas: an environment deleted while a relay was down,
// whose tombstone compaction has since removed, is dropped from the disk cache once the relay
// has read the topic; an empty topic (a new cluster) leaves the disk cache alone.
func TestForgetsEnvironmentsTheTopicNoLongerHas(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, true))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true))
	dir := t.TempDir()
	first := startRelay(t, testConfig(t, name, dir))
	first.waitVersion(t, "env1", 1)
	first.waitVersion(t, "env2", 1)
	first.stop()
	server1, _ := relaytest.Keys("env1")
	server2, _ := relaytest.Keys("env2")

	empty, _ := topic(t)
	second := startRelay(t, testConfig(t, empty, dir))
	second.waitCaughtUp(t)
	for _, key := range []string{server1, server2} {
		if resp, _ := get(t, "GET", second.base+"/sdk/v1/ruleset", key, ""); resp.StatusCode != 200 {
			t.Fatalf("an empty topic made the relay drop its disk cache: %d", resp.StatusCode)
		}
	}
	second.stop()

	// A topic that has env1 but nothing of env2 (deleted, its tombstone compacted away).
	compacted, prod2 := topic(t)
	produceRuleset(t, prod2, relaytest.Ruleset("env1", 2, true))
	third := startRelay(t, testConfig(t, compacted, dir))
	third.waitCaughtUp(t)
	third.waitVersion(t, "env1", 2)
	if third.app.Store.Get("env2") != nil {
		t.Fatal("env2 is still served after the relay read a topic without it")
	}
	if resp, body := get(t, "GET", third.base+"/sdk/v1/ruleset", server2, ""); resp.StatusCode != 401 {
		t.Fatalf("the deleted environment's key: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "env2.json")); !os.IsNotExist(err) {
		t.Fatalf("env2's disk copy is still there: %v", err)
	}
	if resp, _ := get(t, "GET", third.base+"/sdk/v1/ruleset", server1, ""); resp.StatusCode != 200 {
		t.Fatalf("env1: %d", resp.StatusCode)
	}
}

// TestStreamFramingAndItsEnd: the stream is written on the connection itself, as HTTP/1.1
// chunks that end cleanly when the environment is deleted, and without chunks to an HTTP/1.0
// client (a proxy's default upstream protocol), which reads until the connection closes.
func TestStreamFramingAndItsEnd(t *testing.T) {
	r, prod := relayServing(t, 1, false)
	server, _ := relaytest.Keys("env1")

	resp, chunked := openStream(t, r.base, server)
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("HTTP/1.1 stream: transfer encoding %v, headers %v", resp.TransferEncoding, resp.Header)
	}
	if rs, _ := readPut(t, chunked); rs.Version != 1 {
		t.Fatalf("first put: version %d", rs.Version)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /sdk/v1/stream HTTP/1.0\r\nAuthorization: %s\r\n\r\n", server)
	raw := bufio.NewReader(conn)
	old, err := http.ReadResponse(raw, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if old.StatusCode != 200 || len(old.TransferEncoding) != 0 || old.Header.Get("Content-Type") != "text/event-stream" ||
		!old.Close {
		t.Fatalf("HTTP/1.0 stream: %d, transfer encoding %v, headers %v", old.StatusCode, old.TransferEncoding, old.Header)
	}
	body := bufio.NewReader(old.Body)
	if rs, _ := readPut(t, body); rs.Version != 1 {
		t.Fatalf("HTTP/1.0 first put: version %d", rs.Version)
	}

	// Deleting the environment ends its streams: the last chunk, then the connection closes.
	produce(t, prod, "env1", nil)
	if _, err := io.Copy(io.Discard, chunked); err != nil {
		t.Fatalf("the chunked stream did not end cleanly: %v", err)
	}
	// The relay closes the connection itself (a connection it forgot would still be closed, by
	// the collector's finalizer, minutes later).
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Fatalf("the HTTP/1.0 stream did not end cleanly: %v", err)
	}
}

// TestRevokedKeyEndsItsStreams: a key removed by a new ruleset (revoked, rotated out) stops
// receiving rulesets on the streams it opened before — the stream ends before the ruleset that
// revokes it is sent — and a key that expires ends its streams at the next heartbeat.
func TestRevokedKeyEndsItsStreams(t *testing.T) {
	r, prod := relayServing(t, 1, true)
	server, client := relaytest.Keys("env1")
	_, kept := openStream(t, r.base, server)
	if rs, _ := readPut(t, kept); rs.Version != 1 {
		t.Fatalf("first put: version %d", rs.Version)
	}

	// Version 2 keeps the client key and rotates the server key out for a new one.
	rotated := relaytest.Ruleset("env1", 2, false)
	rotated.SDKKeys = []ruleset.SDKKey{{Hash: relaytest.Hash("sdk-srv-rotated"), Kind: ruleset.KeyServer}, {Hash: relaytest.Hash(client), Kind: ruleset.KeyClient}}
	produceRuleset(t, prod, rotated)
	r.waitVersion(t, "env1", 2)
	rest := readToEnd(t, kept, "the revoked key's stream")
	if bytes.Contains(rest, []byte(`"version":2`)) {
		t.Fatal("the revoked key's stream was sent the ruleset that revoked it")
	}
	if resp, _ := get(t, "GET", r.base+"/sdk/v1/ruleset", server, ""); resp.StatusCode != 401 {
		t.Fatalf("the revoked key: %d", resp.StatusCode)
	}

	// The new key expires two seconds from now; its stream ends at a heartbeat after that.
	expires := time.Now().Add(2 * time.Second)
	expiring := relaytest.Ruleset("env1", 3, true)
	expiring.SDKKeys = []ruleset.SDKKey{{Hash: relaytest.Hash("sdk-srv-rotated"), Kind: ruleset.KeyServer, ExpiresAt: &expires}}
	produceRuleset(t, prod, expiring)
	r.waitVersion(t, "env1", 3)
	_, sse := openStream(t, r.base, "sdk-srv-rotated")
	if rs, _ := readPut(t, sse); rs.Version != 3 {
		t.Fatalf("the new key's first put: version %d", rs.Version)
	}
	readToEnd(t, sse, "the expired key's stream")
	if !time.Now().After(expires) {
		t.Fatal("the stream ended before its key expired")
	}
}

// readToEnd reads a stream until it ends cleanly, failing if it is still open after 20 s.
func readToEnd(t testing.TB, r io.Reader, what string) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("%s did not end cleanly: %v", what, res.err)
		}
		return res.b
	case <-time.After(20 * time.Second):
		t.Fatalf("%s is still open after 20 s", what)
		return nil
	}
}

// TestUnknownKeysWaitForTheTopic: until a relay has read the ruleset topic to its end, a key
// it does not know may be of an environment it has not read yet, so it answers 503 with
// Retry-After (SDKs retry) rather than 401 (SDKs give up); and it is not ready without a disk
// cache.
func TestUnknownKeysWaitForTheTopic(t *testing.T) {
	name, _ := topic(t)
	cfg := testConfig(t, name, t.TempDir())
	cfg.KafkaBrokers = "127.0.0.1:1" // nothing listens there: the topic cannot be read
	r := startRelay(t, cfg)
	server, client := relaytest.Keys("env1")
	for _, k := range []string{server, client} {
		resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", k, "")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(body), "env1") {
			t.Fatalf("key %q before the topic is read: %d %v %s", k, resp.StatusCode, resp.Header, body)
		}
	}
	if resp, _ := get(t, "GET", r.base+"/readyz", "", ""); resp.StatusCode != 503 {
		t.Fatalf("a relay with no rulesets and no disk cache is ready: %d", resp.StatusCode)
	}
}
