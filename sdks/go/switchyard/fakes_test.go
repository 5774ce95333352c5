package switchyard_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

const sdkKey = "sdk-test-key"

// quiet discards the SDK's logs in tests (expected errors would drown the output).
var quiet = slog.New(slog.DiscardHandler)

// eventually polls cond until it holds or a 5 s deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func boolFlag(key string, value bool) ruleset.Flag {
	serve := "off"
	if value {
		serve = "on"
	}
	return ruleset.Flag{
		Key: key, Kind: ruleset.KindBoolean, Version: 1, On: true,
		Variations:  []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Variation: serve},
	}
}

func rulesetJSON(t testing.TB, version int64, flags ...ruleset.Flag) []byte {
	t.Helper()
	rs := ruleset.Ruleset{
		SchemaVersion: 1, Version: version, Flags: flags, Segments: []ruleset.Segment{},
		Environment: ruleset.Environment{ID: "env-1", Key: "test", ProjectID: "p-1", ProjectKey: "shop"},
	}
	if rs.Flags == nil {
		rs.Flags = []ruleset.Flag{}
	}
	data, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fakeRelay emulates evalrelay's SDK endpoints (sdks/spec/PROTOCOL.md).
type fakeRelay struct {
	t      testing.TB
	server *httptest.Server

	mu          sync.Mutex
	ruleset     []byte
	etag        string
	streams     map[chan sseEvent]struct{}
	patchAsked  atomic.Int32 // stream requests that asked for patches
	failStreams int          // fail this many upcoming stream requests with 503
	streamsDown bool         // fail every stream request with 503
	silent      bool         // after the first put, send nothing at all (no heartbeats)
	hang        bool         // accept requests but never answer
	stale       bool
	heartbeat   time.Duration

	streamConnects  atomic.Int32
	rulesetRequests atomic.Int32
	notModified     atomic.Int32
	gzipped         atomic.Int32
	pings           atomic.Int32
}

func newFakeRelay(t testing.TB, initial []byte) *fakeRelay {
	r := &fakeRelay{t: t, streams: map[chan sseEvent]struct{}{}, heartbeat: 20 * time.Millisecond}
	r.setRuleset(initial)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sdk/v1/ruleset", r.handleRuleset)
	mux.HandleFunc("GET /sdk/v1/stream", r.handleStream)
	r.server = httptest.NewServer(mux)
	t.Cleanup(func() {
		r.mu.Lock()
		r.hang = false
		r.mu.Unlock()
		r.dropStreams()
		r.server.CloseClientConnections()
		r.server.Close()
	})
	return r
}

func (r *fakeRelay) setRuleset(data []byte) {
	var v struct {
		Version int64 `json:"version"`
	}
	_ = json.Unmarshal(data, &v)
	r.mu.Lock()
	r.ruleset = data
	r.etag = fmt.Sprintf(`"env-1-%d"`, v.Version)
	r.mu.Unlock()
}

// publish installs a new ruleset and pushes it to every open stream.
func (r *fakeRelay) publish(data []byte) {
	r.setRuleset(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.streams {
		ch <- sseEvent{"put", data}
	}
}

// sseEvent is one event a fake stream sends.
type sseEvent struct {
	name string
	data []byte
}

// publishPatch pushes a patch event to every open stream; the ruleset served to new connections
// is left to setRuleset.
func (r *fakeRelay) publishPatch(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.streams {
		ch <- sseEvent{"patch", data}
	}
}

// dropStreams closes every open stream (a relay restart).
func (r *fakeRelay) dropStreams() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.streams {
		close(ch)
		delete(r.streams, ch)
	}
}

func (r *fakeRelay) set(fn func(r *fakeRelay)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

func authorized(req *http.Request) bool {
	a := req.Header.Get("Authorization")
	return a == sdkKey || a == "Bearer "+sdkKey
}

func (r *fakeRelay) waitIfHanging(req *http.Request) bool {
	for {
		r.mu.Lock()
		hang := r.hang
		r.mu.Unlock()
		if !hang {
			return true
		}
		select {
		case <-req.Context().Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (r *fakeRelay) handleRuleset(w http.ResponseWriter, req *http.Request) {
	r.rulesetRequests.Add(1)
	if !r.waitIfHanging(req) {
		return
	}
	if !authorized(req) {
		http.Error(w, "unknown SDK key", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	data, etag, stale := r.ruleset, r.etag, r.stale
	r.mu.Unlock()
	w.Header().Set("ETag", etag)
	if stale {
		w.Header().Set("X-Switchyard-Stale", "true")
	}
	if req.Header.Get("If-None-Match") == etag {
		r.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(req.Header.Get("Accept-Encoding"), "gzip") {
		r.gzipped.Add(1)
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(data)
		_ = zw.Close()
		return
	}
	_, _ = w.Write(data)
}

func (r *fakeRelay) handleStream(w http.ResponseWriter, req *http.Request) {
	r.streamConnects.Add(1)
	if !r.waitIfHanging(req) {
		return
	}
	if !authorized(req) {
		http.Error(w, "unknown SDK key", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	if r.streamsDown || r.failStreams > 0 {
		if r.failStreams > 0 {
			r.failStreams--
		}
		r.mu.Unlock()
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if req.URL.Query().Get("patch") == "1" {
		r.patchAsked.Add(1)
	}
	ch := make(chan sseEvent, 16)
	r.streams[ch] = struct{}{}
	data, silent, stale, heartbeat := r.ruleset, r.silent, r.stale, r.heartbeat
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.streams, ch)
		r.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	if stale {
		w.Header().Set("X-Switchyard-Stale", "true")
	}
	flusher := w.(http.Flusher)
	send := func(e sseEvent) {
		_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
		flusher.Flush()
	}
	send(sseEvent{"put", data})
	ticker := time.NewTicker(heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-req.Context().Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			send(e)
		case <-ticker.C:
			if !silent {
				_, _ = io.WriteString(w, ": ping\n\n")
				flusher.Flush()
				r.pings.Add(1)
			}
		}
	}
}

// fakeCollector emulates the ingest collector's POST /v1/events.
type fakeCollector struct {
	t      testing.TB
	server *httptest.Server

	mu       sync.Mutex
	events   []map[string]any
	attempts []time.Time
	bodies   [][]byte // raw (decompressed) bodies, one per attempt
	sentAt   []string // X-Switchyard-Sent-At, one per attempt
	// respond decides the answer to attempt n (1-based); nil means 202.
	respond  func(n int, w http.ResponseWriter) bool
	gzipped  atomic.Int32
	tooLarge atomic.Int32 // requests refused with 413
	authOK   atomic.Bool
}

// collectorMaxBody is the collector's default limit on a request body as sent (ingest's
// -max-body-bytes); a larger request is refused whole with 413.
const collectorMaxBody = 4 << 20

func newFakeCollector(t testing.TB) *fakeCollector {
	c := &fakeCollector{t: t}
	c.authOK.Store(true)
	c.server = httptest.NewServer(http.HandlerFunc(c.handle))
	t.Cleanup(c.server.Close)
	return c
}

func (c *fakeCollector) handle(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/events" {
		http.NotFound(w, req)
		return
	}
	if req.Header.Get("Authorization") != sdkKey {
		c.authOK.Store(false)
	}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(raw) > collectorMaxBody {
		c.tooLarge.Add(1)
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var body io.Reader = bytes.NewReader(raw)
	if req.Header.Get("Content-Encoding") == "gzip" {
		c.gzipped.Add(1)
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.attempts = append(c.attempts, time.Now())
	c.bodies = append(c.bodies, data)
	c.sentAt = append(c.sentAt, req.Header.Get("X-Switchyard-Sent-At"))
	n := len(c.attempts)
	respond := c.respond
	c.mu.Unlock()
	if respond != nil && respond(n, w) {
		return
	}
	var events []map[string]any
	if err := json.Unmarshal(data, &events); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.events = append(c.events, events...)
	c.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"accepted":%d,"rejected":{}}`, len(events))
}

func (c *fakeCollector) received(typ string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, e := range c.events {
		if typ == "" || e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

func (c *fakeCollector) requestBodies() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.bodies...)
}

func (c *fakeCollector) sentAtHeaders() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sentAt...)
}

func (c *fakeCollector) attemptTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.attempts...)
}
