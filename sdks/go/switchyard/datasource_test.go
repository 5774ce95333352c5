package switchyard_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

var alice = switchyard.NewContext("alice")

func newClient(t *testing.T, cfg switchyard.Config) *switchyard.Client {
	t.Helper()
	if cfg.SDKKey == "" {
		cfg.SDKKey = sdkKey
	}
	cfg.Events.Disabled = cfg.Events.Disabled || cfg.EventsURL == ""
	cfg.Logger = quiet
	c, err := switchyard.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func fastStreaming() switchyard.Streaming {
	return switchyard.Streaming{ReadTimeout: time.Second, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func TestStreamingInitialRulesetAndUpdates(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	if !c.Bool(alice, "f", false) {
		t.Fatal("the initial ruleset was not served")
	}
	changes := make(chan switchyard.FlagChange, 10)
	remove := c.OnChange(alice, func(ch switchyard.FlagChange) { changes <- ch })
	defer remove()

	relay.publish(rulesetJSON(t, 2, boolFlag("f", false), boolFlag("g", true)))
	eventually(t, "the update to arrive", func() bool { return !c.Bool(alice, "f", true) })
	got := changesByKey(t, changes, 2)
	if ch := got["f"]; ch.OldValue != true || ch.NewValue != false || ch.OldVariation != "on" || ch.NewVariation != "off" {
		t.Errorf("change of f = %+v", ch)
	}
	if ch := got["g"]; ch.OldValue != nil || ch.NewValue != true || ch.OldVariation != "" {
		t.Errorf("change of the new flag g = %+v", ch)
	}
	if s := c.Status(); s.State != switchyard.StateValid || s.RulesetVersion != 2 {
		t.Errorf("status = %+v", s)
	}
	if relay.streamConnects.Load() != 1 {
		t.Errorf("%d stream connections, want 1", relay.streamConnects.Load())
	}
}

// changesByKey reads listener changes until n flags have changed (failing after 5 s without one).
func changesByKey(t *testing.T, changes <-chan switchyard.FlagChange, n int) map[string]switchyard.FlagChange {
	t.Helper()
	got := map[string]switchyard.FlagChange{}
	for len(got) < n {
		select {
		case ch := <-changes:
			got[ch.Key] = ch
		case <-time.After(5 * time.Second):
			t.Fatalf("listener got %v", got)
		}
	}
	return got
}

func TestStreamingReconnectsAfterDrop(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	for i := int64(2); i <= 4; i++ {
		connects := relay.streamConnects.Load()
		// The relay restarts, and while it is down the ruleset changes.
		relay.set(func(r *fakeRelay) { r.failStreams = 2 })
		relay.dropStreams()
		relay.setRuleset(rulesetJSON(t, i, boolFlag("f", i%2 == 1)))
		eventually(t, "a reconnection with the full ruleset", func() bool {
			return relay.streamConnects.Load() >= connects+3 && c.Status().RulesetVersion == i
		})
		if got := c.Bool(alice, "f", i%2 == 0); got != (i%2 == 1) {
			t.Fatalf("version %d: f = %v", i, got)
		}
	}
}

func TestStreamingReadTimeout(t *testing.T) {
	t.Run("silence reconnects", func(t *testing.T) {
		relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
		relay.set(func(r *fakeRelay) { r.silent = true })
		s := fastStreaming()
		s.ReadTimeout = 100 * time.Millisecond
		c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: s})
		eventually(t, "reconnections after silent periods", func() bool { return relay.streamConnects.Load() >= 3 })
		if !c.Bool(alice, "f", false) {
			t.Error("the last ruleset must keep being served while reconnecting")
		}
	})
	t.Run("heartbeats keep the connection", func(t *testing.T) {
		relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
		relay.set(func(r *fakeRelay) { r.heartbeat = 10 * time.Millisecond })
		s := fastStreaming()
		s.ReadTimeout = 300 * time.Millisecond // generous: a loaded CI machine must not trip it
		newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: s})
		// 80 heartbeats span 800 ms, more than two read timeouts: the connection must survive.
		eventually(t, "80 heartbeats", func() bool { return relay.pings.Load() >= 80 })
		if n := relay.streamConnects.Load(); n != 1 {
			t.Errorf("%d connections despite heartbeats, want 1", n)
		}
	})
}

func TestStreamingUnauthorized(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	start := time.Now()
	c, err := switchyard.New(switchyard.Config{Logger: quiet, SDKKey: "wrong", RelayURL: relay.server.URL, DataSource: fastStreaming(), Events: switchyard.EventsConfig{Disabled: true}})
	if !errors.Is(err, switchyard.ErrUnauthorized) || c == nil {
		t.Fatalf("New = %v, %v; want a client and ErrUnauthorized", c, err)
	}
	defer c.Close()
	if time.Since(start) > 2*time.Second {
		t.Error("a rejected key must not wait for the init timeout")
	}
	d := c.BoolDetail(alice, "f", true)
	if !d.Value || d.ErrorCode != evaluation.ErrorProviderNotReady {
		t.Errorf("detail = %+v", d)
	}
	if s := c.Status(); s.State != switchyard.StateOff {
		t.Errorf("state %v, want off", s.State)
	}
	if n := relay.streamConnects.Load(); n != 1 {
		t.Errorf("%d attempts with a rejected key, want 1", n)
	}
}

func TestBearerKeyAccepted(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{SDKKey: "Bearer " + sdkKey, RelayURL: relay.server.URL, DataSource: fastStreaming()})
	if !c.Bool(alice, "f", false) {
		t.Error("not initialized")
	}
}

func TestStreamingRetriesUntilAvailable(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	relay.set(func(r *fakeRelay) { r.failStreams = 4 })
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	if !c.Bool(alice, "f", false) || relay.streamConnects.Load() != 5 {
		t.Errorf("after 4 failures: initialized=%v, %d attempts", c.Initialized(), relay.streamConnects.Load())
	}
}

func TestStreamingFallsBackToPolling(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	relay.set(func(r *fakeRelay) { r.streamsDown = true })
	s := fastStreaming()
	s.FallbackToPollingAfter = 2
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: s})
	if !c.Bool(alice, "f", false) {
		t.Fatal("not initialized through the polling fallback")
	}
	relay.publish(rulesetJSON(t, 2, boolFlag("f", false)))
	eventually(t, "the update through polling", func() bool { return !c.Bool(alice, "f", true) })
	if relay.notModified.Load() == 0 {
		eventually(t, "a 304 from fallback polling", func() bool { return relay.notModified.Load() > 0 })
	}
}

func TestPollingWithETags(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: switchyard.Polling{Interval: 5 * time.Millisecond}})
	if !c.Bool(alice, "f", false) {
		t.Fatal("not initialized")
	}
	eventually(t, "unchanged polls answered 304", func() bool { return relay.notModified.Load() >= 3 })
	if relay.gzipped.Load() == 0 {
		t.Error("the ruleset was not fetched gzip-compressed")
	}
	relay.publish(rulesetJSON(t, 2, boolFlag("f", false)))
	eventually(t, "the update", func() bool { return !c.Bool(alice, "f", true) })
	if relay.streamConnects.Load() != 0 {
		t.Error("polling must not open streams")
	}
}

func TestPollingUnauthorized(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1))
	c, err := switchyard.New(switchyard.Config{Logger: quiet, SDKKey: "nope", RelayURL: relay.server.URL, DataSource: switchyard.Polling{Interval: time.Millisecond}, Events: switchyard.EventsConfig{Disabled: true}})
	if !errors.Is(err, switchyard.ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	c.Close()
	if n := relay.rulesetRequests.Load(); n != 1 {
		t.Errorf("%d requests with a rejected key, want 1", n)
	}
}

func TestStaleRelay(t *testing.T) {
	for name, ds := range map[string]switchyard.DataSource{"streaming": fastStreaming(), "polling": switchyard.Polling{Interval: 5 * time.Millisecond}} {
		t.Run(name, func(t *testing.T) {
			relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
			relay.set(func(r *fakeRelay) { r.stale = true })
			c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: ds})
			if !c.Status().Stale {
				t.Error("Status().Stale = false while the relay says it is stale")
			}
		})
	}
}

func TestInitTimeoutThenRecovery(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	relay.set(func(r *fakeRelay) { r.hang = true })
	c, err := switchyard.New(switchyard.Config{Logger: quiet, SDKKey: sdkKey, RelayURL: relay.server.URL, DataSource: fastStreaming(),
		InitTimeout: 50 * time.Millisecond, Events: switchyard.EventsConfig{Disabled: true}})
	if !errors.Is(err, switchyard.ErrInitTimeout) || c == nil {
		t.Fatalf("New = %v, %v", c, err)
	}
	defer c.Close()
	if d := c.BoolDetail(alice, "f", false); d.Value || d.ErrorCode != evaluation.ErrorProviderNotReady {
		t.Errorf("before init: %+v", d)
	}
	relay.set(func(r *fakeRelay) { r.hang = false })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitForInitialization(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Bool(alice, "f", false) {
		t.Error("not serving after recovery")
	}
}

func TestStartNonBlocking(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	relay.set(func(r *fakeRelay) { r.hang = true })
	c, err := switchyard.New(switchyard.Config{Logger: quiet, SDKKey: sdkKey, RelayURL: relay.server.URL, DataSource: fastStreaming(),
		StartNonBlocking: true, Events: switchyard.EventsConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Initialized() || c.Status().State != switchyard.StateInitializing {
		t.Error("initialized while the relay hangs")
	}
	relay.set(func(r *fakeRelay) { r.hang = false })
	eventually(t, "initialization", c.Initialized)
}

func TestOffline(t *testing.T) {
	data := rulesetJSON(t, 3, boolFlag("f", true))
	path := filepath.Join(t.TempDir(), "ruleset.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]switchyard.Offline{"file": {Path: path}, "bytes": {Data: data}} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, switchyard.Config{DataSource: src, SDKKey: "unused"})
			if !c.Bool(alice, "f", false) || c.Ruleset().Version() != 3 {
				t.Error("offline ruleset not served")
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		c, err := switchyard.New(switchyard.Config{Logger: quiet, DataSource: switchyard.Offline{Path: filepath.Join(t.TempDir(), "nope.json")}})
		if err == nil || c == nil {
			t.Fatalf("New = %v, %v", c, err)
		}
		defer c.Close()
		if c.Bool(alice, "f", false) {
			t.Error("served a value without a ruleset")
		}
	})
	t.Run("malformed file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(`{"schema_version":1,"flags":[`), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := switchyard.New(switchyard.Config{Logger: quiet, DataSource: switchyard.Offline{Path: bad}})
		if !errors.Is(err, evaluation.ErrMalformedRuleset) || !strings.Contains(err.Error(), bad) || c == nil {
			t.Fatalf("New = %v, %v; want a client and ErrMalformedRuleset naming the file", c, err)
		}
		c.Close()
	})
	t.Run("unsupported document", func(t *testing.T) {
		c, err := switchyard.New(switchyard.Config{Logger: quiet, DataSource: switchyard.Offline{Data: []byte(`{"schema_version":9,"flags":[],"segments":[]}`)}})
		if !errors.Is(err, evaluation.ErrUnsupportedSchema) {
			t.Fatalf("err = %v", err)
		}
		c.Close()
	})
}

func TestOlderRulesetIgnored(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 5, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	relay.publish(rulesetJSON(t, 4, boolFlag("f", false)))
	relay.publish(rulesetJSON(t, 6, boolFlag("f", true), boolFlag("marker", true)))
	eventually(t, "version 6", func() bool { return c.Status().RulesetVersion == 6 })
	if !c.Bool(alice, "f", false) {
		t.Error("an older ruleset replaced a newer one")
	}
}

func TestMalformedPutKeepsCurrentRuleset(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	relay.publish([]byte(`{"schema_version":1,"flags":`))
	relay.publish(rulesetJSON(t, 2, boolFlag("f", true), boolFlag("after", true)))
	eventually(t, "the next good ruleset", func() bool { return c.Bool(alice, "after", false) })
	if relay.streamConnects.Load() != 1 {
		t.Error("a malformed put should not cost the connection")
	}
}

func TestCloseStopsTheStream(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream to close", func() bool {
		relay.mu.Lock()
		defer relay.mu.Unlock()
		return len(relay.streams) == 0
	})
	if c.Status().State != switchyard.StateOff || !c.Bool(alice, "f", false) {
		t.Error("after Close the last ruleset is still served, state off")
	}
}

func TestConcurrentEvaluationDuringUpdates(t *testing.T) {
	td := switchyard.NewTestData()
	td.SetBool("f", true)
	c := newClient(t, switchyard.Config{DataSource: td})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = c.Bool(alice, "f", false)
				}
			}
		}()
	}
	for i := range 200 {
		td.SetBool("f", i%2 == 0)
	}
	close(stop)
	wg.Wait()
	if c.Bool(alice, "f", true) != false {
		t.Error("last update lost")
	}
}

// patchJSON is a stream patch event from version base to version with the given flags changed
// or added and the given keys deleted.
func patchJSON(t testing.TB, base, version int64, deleted []string, flags ...ruleset.Flag) []byte {
	t.Helper()
	if flags == nil {
		flags = []ruleset.Flag{}
	}
	if deleted == nil {
		deleted = []string{}
	}
	data, err := json.Marshal(map[string]any{
		"schema_version": 1, "version": version, "base_version": base,
		"environment": ruleset.Environment{ID: "env-1", Key: "test", ProjectID: "p-1", ProjectKey: "shop"},
		"flags":       flags, "deleted_flags": deleted, "segments": []any{}, "deleted_segments": []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStreamingAppliesPatches(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true), boolFlag("g", true), boolFlag("h", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	if relay.patchAsked.Load() != 1 {
		t.Fatal("the SDK did not ask the relay for patches")
	}
	changes := make(chan switchyard.FlagChange, 10)
	defer c.OnChange(alice, func(ch switchyard.FlagChange) { changes <- ch })()

	off := boolFlag("f", false)
	off.Version = 2
	relay.publishPatch(patchJSON(t, 1, 2, []string{"g"}, off, boolFlag("new", true)))
	eventually(t, "the patch to apply", func() bool { return c.Status().RulesetVersion == 2 })
	if c.Bool(alice, "f", true) || !c.Bool(alice, "h", false) || !c.Bool(alice, "new", false) {
		t.Error("the patched ruleset serves the wrong values")
	}
	if d := c.BoolDetail(alice, "g", false); d.ErrorCode != "FLAG_NOT_FOUND" {
		t.Errorf("deleted flag g: %+v", d)
	}
	got := changesByKey(t, changes, 3)
	if got["f"].NewValue != false || got["g"].NewVariation != "" || got["new"].NewValue != true {
		t.Errorf("changes = %+v", got)
	}
	if relay.streamConnects.Load() != 1 {
		t.Errorf("%d stream connections, want 1", relay.streamConnects.Load())
	}
}

func TestStreamingPatchOutOfStepReconnectsForAPut(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	// Backoffs longer than the test's deadline: the reconnection for the put must not wait one.
	streaming := fastStreaming()
	streaming.InitialBackoff, streaming.MaxBackoff = time.Hour, time.Hour
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: streaming})
	// A patch from a version the client never had: only a put can bring it back in step.
	relay.setRuleset(rulesetJSON(t, 4, boolFlag("f", false)))
	relay.publishPatch(patchJSON(t, 3, 4, nil, boolFlag("f", false)))
	eventually(t, "an immediate reconnection and the put of version 4", func() bool { return c.Status().RulesetVersion == 4 })
	if c.Bool(alice, "f", true) {
		t.Error("f should be off after the put")
	}
	if relay.streamConnects.Load() != 2 {
		t.Errorf("%d stream connections, want 2", relay.streamConnects.Load())
	}
	// A second unusable patch right away waits the backoff: no reconnection loop.
	relay.publishPatch(patchJSON(t, 7, 8, nil, boolFlag("f", true)))
	eventually(t, "the second unusable patch to interrupt the stream", func() bool { return c.Status().State == switchyard.StateInterrupted })
	if n := relay.streamConnects.Load(); n != 2 {
		t.Errorf("%d stream connections after a second unusable patch within MaxBackoff, want 2", n)
	}
}

func TestStreamingPatchOlderThanTheRulesetIsIgnored(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 5, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	// A lagging relay's patch (3 → 4) while the client serves version 5: ignored, connection kept.
	relay.publishPatch(patchJSON(t, 3, 4, nil, boolFlag("f", false)))
	relay.publishPatch(patchJSON(t, 5, 6, nil, boolFlag("f", true), boolFlag("marker", true)))
	eventually(t, "version 6", func() bool { return c.Status().RulesetVersion == 6 })
	if !c.Bool(alice, "f", false) || relay.streamConnects.Load() != 1 {
		t.Errorf("f = %v after %d connections; want true after 1", c.Bool(alice, "f", false), relay.streamConnects.Load())
	}
}

// TestCloseReleasesConnections: the HTTP client the SDK makes for itself keeps idle keep-alive
// connections (each holding two goroutines) after Close, until the transport's 90 s idle timeout,
// unless Close closes them; a program (or a test with a goroutine-leak check) that closes its
// client must get everything back.
func TestCloseReleasesConnections(t *testing.T) {
	data := rulesetJSON(t, 1, boolFlag("f", true))
	var open sync.Map // net.Conn -> struct{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, req.Body)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		_, _ = w.Write(data)
	}))
	srv.Config.ConnState = func(conn net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			open.Store(conn, struct{}{})
		case http.StateClosed, http.StateHijacked:
			open.Delete(conn)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := switchyard.New(switchyard.Config{SDKKey: sdkKey, RelayURL: srv.URL, EventsURL: srv.URL, Logger: quiet,
		DataSource: switchyard.Polling{Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	c.Track(alice, "e", 1)
	if err := c.FlushAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every connection of the closed client to be closed", func() bool {
		n := 0
		open.Range(func(any, any) bool { n++; return true })
		return n == 0
	})
}
