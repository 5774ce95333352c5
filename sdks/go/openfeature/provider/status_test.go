package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-io/switchyard/sdks/go/openfeature/provider"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// streamRelay is a relay's stream endpoint that the test can make drop its streams, refuse new
// ones (503) or reject the key (401).
type streamRelay struct {
	server *httptest.Server
	mu     sync.Mutex
	status int           // answer to new streams: 200, 503 or 401
	drop   chan struct{} // closed to end every open stream
	data   []byte
}

func newStreamRelay(t *testing.T, flags ...ruleset.Flag) *streamRelay {
	if flags == nil {
		flags = []ruleset.Flag{}
	}
	data, _ := json.Marshal(ruleset.Ruleset{SchemaVersion: 1, Environment: ruleset.Environment{ID: "env1"}, Version: 1,
		Flags: flags, Segments: []ruleset.Segment{}})
	r := &streamRelay{status: http.StatusOK, drop: make(chan struct{}), data: data}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		status, drop := r.status, r.drop
		r.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "no", status)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: put\ndata: %s\n\n", r.data)
		w.(http.Flusher).Flush()
		select {
		case <-drop:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(func() {
		r.set(http.StatusServiceUnavailable)
		r.server.CloseClientConnections()
		r.server.Close()
	})
	return r
}

// set answers new streams with status and ends the open ones.
func (r *streamRelay) set(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
	close(r.drop)
	r.drop = make(chan struct{})
}

func waitForState(t *testing.T, of *openfeature.Client, want openfeature.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for of.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("provider state %v, want %v", of.State(), want)
		}
		time.Sleep(2 * time.Millisecond) // polling the provider's state, not waiting for time
	}
}

// TestProviderStateFollowsTheConnection: READY → STALE when the relay connection is lost (the last
// ruleset is still served) → READY when it is back → FATAL when the relay rejects the key.
func TestProviderStateFollowsTheConnection(t *testing.T) {
	relay := newStreamRelay(t, ruleset.Flag{Key: "checkout", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"), Fallthrough: ruleset.Serve{Variation: "v0"}})
	client, err := switchyard.New(switchyard.Config{SDKKey: "k", RelayURL: relay.server.URL, Logger: quiet,
		DataSource: switchyard.Streaming{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond},
		Events:     switchyard.EventsConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := openfeature.SetProviderAndWait(provider.New(client)); err != nil {
		t.Fatal(err)
	}
	defer openfeature.Shutdown()
	of := openfeature.NewDefaultClient()
	waitForState(t, of, openfeature.ReadyState)

	relay.set(http.StatusServiceUnavailable)
	waitForState(t, of, openfeature.StaleState)
	if v, err := of.BooleanValue(context.Background(), "checkout", false, openfeature.NewEvaluationContext("bob", nil)); !v || err != nil {
		t.Errorf("while stale: %v, %v; want the last ruleset's value", v, err)
	}
	relay.set(http.StatusOK)
	waitForState(t, of, openfeature.ReadyState)

	relay.set(http.StatusUnauthorized)
	waitForState(t, of, openfeature.FatalState)
}

// TestProviderTurnsReadyWithAnEmptyFirstRuleset: a slow start whose first ruleset has no flags
// (a new environment) still makes the provider READY.
func TestProviderTurnsReadyWithAnEmptyFirstRuleset(t *testing.T) {
	relay := newStreamRelay(t)
	relay.set(http.StatusServiceUnavailable)
	client, err := switchyard.New(switchyard.Config{SDKKey: "k", RelayURL: relay.server.URL, StartNonBlocking: true, Logger: quiet,
		DataSource: switchyard.Streaming{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond},
		Events:     switchyard.EventsConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := openfeature.SetProviderAndWait(provider.New(client, provider.WithInitTimeout(20*time.Millisecond))); err == nil {
		t.Fatal("SetProviderAndWait succeeded before any ruleset")
	}
	defer openfeature.Shutdown()
	of := openfeature.NewDefaultClient()
	relay.set(http.StatusOK)
	waitForState(t, of, openfeature.ReadyState)
}
