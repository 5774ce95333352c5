package provider_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-io/switchyard/sdks/go/openfeature/provider"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

var quiet = slog.New(slog.DiscardHandler)

func variations(values ...string) []ruleset.Variation {
	out := make([]ruleset.Variation, len(values))
	for i, v := range values {
		out[i] = ruleset.Variation{Key: "v" + string(rune('0'+i)), Value: json.RawMessage(v)}
	}
	return out
}

// setup serves a TestData-backed Switchyard client through the global OpenFeature API, as an
// application would.
func setup(t *testing.T, opts ...provider.Option) (*openfeature.Client, *switchyard.TestData, *switchyard.Client) {
	t.Helper()
	td := switchyard.NewTestData()
	td.SetFlag(ruleset.Flag{
		Key: "checkout", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"),
		Targets: []ruleset.Target{{ContextKind: "user", Variation: "v0", Values: []string{"alice"}}},
		Rules: []ruleset.Rule{{ID: "us", Clauses: []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{"US"}}},
			Serve: ruleset.Serve{Variation: "v0"}}},
		Fallthrough: ruleset.Serve{Variation: "v1"},
	})
	td.SetFlag(ruleset.Flag{Key: "theme", Kind: ruleset.KindString, On: true, Variations: variations(`"dark"`, `"light"`),
		Rules: []ruleset.Rule{{Clauses: []ruleset.Clause{{ContextKind: "device", Attribute: "os", Op: ruleset.OpIn, Values: []any{"ios"}}},
			Serve: ruleset.Serve{Variation: "v0"}}},
		Fallthrough: ruleset.Serve{Variation: "v1"}})
	td.SetFlag(ruleset.Flag{Key: "limit", Kind: ruleset.KindNumber, On: true, Variations: variations("25", "2.5", "9223372036854775808", "-9223372036854775808"), Fallthrough: ruleset.Serve{Variation: "v0"},
		Rules: []ruleset.Rule{{Clauses: []ruleset.Clause{{Attribute: "fractional", Op: ruleset.OpIn, Values: []any{true}}}, Serve: ruleset.Serve{Variation: "v1"}},
			{Clauses: []ruleset.Clause{{Attribute: "huge", Op: ruleset.OpIn, Values: []any{true}}}, Serve: ruleset.Serve{Variation: "v2"}},
			{Clauses: []ruleset.Clause{{Attribute: "lowest", Op: ruleset.OpIn, Values: []any{true}}}, Serve: ruleset.Serve{Variation: "v3"}}}})
	td.SetFlag(ruleset.Flag{Key: "config", Kind: ruleset.KindJSON, On: true, Variations: variations(`{"retries":3}`, `[1]`), Fallthrough: ruleset.Serve{Variation: "v0"}})
	td.SetFlag(ruleset.Flag{Key: "launch", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"),
		Rules: []ruleset.Rule{{Clauses: []ruleset.Clause{{Attribute: "signup", Op: ruleset.OpAfter, Values: []any{"2024-01-01T00:00:00Z"}}},
			Serve: ruleset.Serve{Variation: "v0"}}},
		Fallthrough: ruleset.Serve{Variation: "v1"}})
	td.SetFlag(ruleset.Flag{Key: "gated", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"),
		Prerequisites: []ruleset.Prerequisite{{Flag: "checkout", Variation: "v0"}}, OffVariation: "v1", Fallthrough: ruleset.Serve{Variation: "v0"}})
	client, err := switchyard.New(switchyard.Config{DataSource: td, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := openfeature.SetProviderAndWait(provider.New(client, append(opts, provider.WithCloseOnShutdown())...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(openfeature.Shutdown)
	return openfeature.NewDefaultClient(), td, client
}

func TestEvaluationThroughOpenFeature(t *testing.T) {
	of, _, _ := setup(t)
	ctx := context.Background()
	us := openfeature.NewEvaluationContext("bob", map[string]any{"country": "US"})

	d, err := of.BooleanValueDetails(ctx, "checkout", false, us)
	if err != nil || !d.Value || d.Variant != "v0" || d.Reason != openfeature.TargetingMatchReason {
		t.Errorf("rule match: %+v, %v", d, err)
	}
	if idx, _ := d.FlagMetadata.GetInt("ruleIndex"); idx != 0 {
		t.Errorf("ruleIndex metadata = %v", d.FlagMetadata)
	}
	if id, _ := d.FlagMetadata.GetString("ruleId"); id != "us" {
		t.Errorf("ruleId metadata = %v", d.FlagMetadata)
	}
	if v, _ := of.BooleanValue(ctx, "checkout", true, openfeature.NewEvaluationContext("carol", nil)); v {
		t.Error("fallthrough should serve false")
	}
	if d, _ := of.BooleanValueDetails(ctx, "checkout", false, openfeature.NewEvaluationContext("alice", nil)); !d.Value || d.Reason != openfeature.TargetingMatchReason {
		t.Errorf("individual target: %+v", d)
	}
	if d, _ := of.BooleanValueDetails(ctx, "gated", true, openfeature.NewEvaluationContext("carol", nil)); d.Value || d.Reason != provider.ReasonPrerequisiteFailed {
		t.Errorf("prerequisite: %+v", d)
	}

	multi := openfeature.NewEvaluationContext("", map[string]any{
		"kind":   "multi",
		"user":   map[string]any{"targetingKey": "bob"},
		"device": map[string]any{"key": "d1", "os": "ios"},
	})
	if v, err := of.StringValue(ctx, "theme", "none", multi); v != "dark" || err != nil {
		t.Errorf("multi-kind context: %q, %v", v, err)
	}
	device := openfeature.NewEvaluationContext("d2", map[string]any{"kind": "device", "os": "ios"})
	if v, _ := of.StringValue(ctx, "theme", "none", device); v != "dark" {
		t.Errorf("single device context: %q", v)
	}
	if v, _ := of.FloatValue(ctx, "limit", 0, us); v != 25 {
		t.Errorf("float: %v", v)
	}
	if v, err := of.IntValue(ctx, "limit", 0, us); v != 25 || err != nil {
		t.Errorf("int: %v, %v", v, err)
	}
	fractional := openfeature.NewEvaluationContext("bob", map[string]any{"fractional": true})
	if v, err := of.IntValue(ctx, "limit", 7, fractional); v != 7 || err == nil {
		t.Errorf("fractional value as int: %v, %v; want the default and an error", v, err)
	}
	// 2^63 does not fit an int64 (converting it would wrap); -2^63 does.
	huge := openfeature.NewEvaluationContext("bob", map[string]any{"huge": true})
	if v, err := of.IntValue(ctx, "limit", 7, huge); v != 7 || err == nil {
		t.Errorf("2^63 as int: %v, %v; want the default and an error", v, err)
	}
	lowest := openfeature.NewEvaluationContext("bob", map[string]any{"lowest": true})
	if v, err := of.IntValue(ctx, "limit", 7, lowest); v != math.MinInt64 || err != nil {
		t.Errorf("-2^63 as int: %v, %v", v, err)
	}
	obj, err := of.ObjectValue(ctx, "config", nil, us)
	if m, ok := obj.(map[string]any); !ok || m["retries"] != 3.0 || err != nil {
		t.Errorf("object: %#v, %v", obj, err)
	}
	signup := openfeature.NewEvaluationContext("bob", map[string]any{"signup": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)})
	if v, _ := of.BooleanValue(ctx, "launch", false, signup); !v {
		t.Error("time.Time attributes must compare as dates")
	}
}

func TestErrorsThroughOpenFeature(t *testing.T) {
	of, _, _ := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		eval func() (openfeature.InterfaceEvaluationDetails, error)
		code openfeature.ErrorCode
	}{
		{"flag not found", func() (openfeature.InterfaceEvaluationDetails, error) {
			d, err := of.BooleanValueDetails(ctx, "nope", true, openfeature.NewEvaluationContext("bob", nil))
			return openfeature.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, openfeature.FlagNotFoundCode},
		{"type mismatch", func() (openfeature.InterfaceEvaluationDetails, error) {
			d, err := of.StringValueDetails(ctx, "checkout", "x", openfeature.NewEvaluationContext("bob", nil))
			return openfeature.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, openfeature.TypeMismatchCode},
		{"targeting key missing", func() (openfeature.InterfaceEvaluationDetails, error) {
			d, err := of.BooleanValueDetails(ctx, "checkout", true, openfeature.NewTargetlessEvaluationContext(map[string]any{"country": "US"}))
			return openfeature.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, openfeature.TargetingKeyMissingCode},
		{"invalid context", func() (openfeature.InterfaceEvaluationDetails, error) {
			d, err := of.BooleanValueDetails(ctx, "checkout", true, openfeature.NewEvaluationContext("bob", map[string]any{"kind": "not valid"}))
			return openfeature.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, openfeature.InvalidContextCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.eval()
			if err == nil || d.ErrorCode != tc.code || d.Reason != openfeature.ErrorReason {
				t.Errorf("details = %+v, err = %v; want %s", d, err, tc.code)
			}
		})
	}
}

func TestConfigurationChangeEvents(t *testing.T) {
	of, td, _ := setup(t)
	changed := make(chan openfeature.EventDetails, 10)
	handler := func(d openfeature.EventDetails) { changed <- d }
	of.AddHandler(openfeature.ProviderConfigChange, &handler)
	td.SetString("theme", "solarized")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case d := <-changed:
			for _, k := range d.FlagChanges {
				if k == "theme" {
					if v, _ := of.StringValue(context.Background(), "theme", "", openfeature.NewEvaluationContext("bob", nil)); v != "solarized" {
						t.Errorf("after the change event: %q", v)
					}
					return
				}
			}
		case <-deadline:
			t.Fatal("no PROVIDER_CONFIGURATION_CHANGED event for theme")
		}
	}
}

func TestInitWaitsForTheFirstRuleset(t *testing.T) {
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) }))
	defer relay.Close()
	client, err := switchyard.New(switchyard.Config{SDKKey: "bad", RelayURL: relay.URL, StartNonBlocking: true, Logger: quiet,
		Events: switchyard.EventsConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	err = openfeature.SetProviderAndWait(provider.New(client, provider.WithInitTimeout(2*time.Second)))
	defer openfeature.Shutdown()
	var initErr *openfeature.ProviderInitError
	if !errors.As(err, &initErr) || initErr.ErrorCode != openfeature.ProviderFatalCode || !strings.Contains(initErr.Message, "SDK key rejected") {
		t.Errorf("SetProviderAndWait = %#v, want a fatal initialization error for the rejected key", err)
	}
}

// TestProviderTurnsReadyAfterASlowStart: when the first ruleset takes longer than the init
// timeout, the provider starts in ERROR and turns READY when the ruleset arrives.
func TestProviderTurnsReadyAfterASlowStart(t *testing.T) {
	release := make(chan struct{})
	rs, _ := json.Marshal(ruleset.Ruleset{SchemaVersion: 1, Environment: ruleset.Environment{ID: "env1"}, Version: 1,
		Flags: []ruleset.Flag{{Key: "checkout", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"), Fallthrough: ruleset.Serve{Variation: "v0"}}}, Segments: []ruleset.Segment{}})
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			w.Header().Set("ETag", `"env1-1"`)
			w.Write(rs)
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer relay.Close()
	client, err := switchyard.New(switchyard.Config{SDKKey: "k", RelayURL: relay.URL, StartNonBlocking: true, Logger: quiet,
		DataSource: switchyard.Polling{Interval: 20 * time.Millisecond}, Events: switchyard.EventsConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := openfeature.SetProviderAndWait(provider.New(client, provider.WithInitTimeout(50*time.Millisecond))); err == nil {
		t.Fatal("SetProviderAndWait succeeded before any ruleset")
	}
	defer openfeature.Shutdown()
	of := openfeature.NewDefaultClient()
	if of.State() != openfeature.ErrorState {
		t.Fatalf("state before the ruleset: %v", of.State())
	}
	close(release)
	waitForState(t, of, openfeature.ReadyState)
	if v, err := of.BooleanValue(context.Background(), "checkout", false, openfeature.NewEvaluationContext("bob", nil)); !v || err != nil {
		t.Errorf("after turning ready: %v, %v", v, err)
	}
}

func TestTrackThroughOpenFeature(t *testing.T) {
	var mu sync.Mutex
	var events []map[string]any
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		var batch []map[string]any
		if err := json.NewDecoder(body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, batch...)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer collector.Close()
	td := switchyard.NewTestData()
	client, err := switchyard.New(switchyard.Config{SDKKey: "k", DataSource: td, EventsURL: collector.URL, Logger: quiet,
		Events: switchyard.EventsConfig{DisableSummaries: true, FlushInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := openfeature.SetProviderAndWait(provider.New(client, provider.WithCloseOnShutdown())); err != nil {
		t.Fatal(err)
	}
	of := openfeature.NewDefaultClient()
	of.Track(context.Background(), "purchase", openfeature.NewEvaluationContext("bob", nil),
		openfeature.NewTrackingEventDetails(19.99).Add("currency", "EUR"))
	openfeature.Shutdown() // closes the client, which flushes
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0]["event_key"] != "purchase" || events[0]["value"] != 19.99 || events[0]["context_key"] != "bob" {
		t.Fatalf("events = %v", events)
	}
	if props, _ := events[0]["properties"].(map[string]any); props["currency"] != "EUR" {
		t.Errorf("properties = %v", events[0]["properties"])
	}
}

// TestConfigurationChangeNamesDependentFlags: "gated" has "checkout" as its prerequisite, so a
// change of "checkout" can change its value: the event must name it too.
func TestConfigurationChangeNamesDependentFlags(t *testing.T) {
	of, td, _ := setup(t)
	changed := make(chan openfeature.EventDetails, 10)
	handler := func(d openfeature.EventDetails) { changed <- d }
	of.AddHandler(openfeature.ProviderConfigChange, &handler)
	td.SetFlag(ruleset.Flag{Key: "checkout", Kind: ruleset.KindBoolean, On: true, Variations: variations("true", "false"), Fallthrough: ruleset.Serve{Variation: "v0"}})
	deadline := time.After(5 * time.Second)
	for {
		select {
		case d := <-changed:
			if slices.Contains(d.FlagChanges, "checkout") {
				if !slices.Contains(d.FlagChanges, "gated") {
					t.Errorf("flag changes %v do not name gated, whose prerequisite changed", d.FlagChanges)
				}
				return
			}
		case <-deadline:
			t.Fatal("no PROVIDER_CONFIGURATION_CHANGED event for checkout")
		}
	}
}
