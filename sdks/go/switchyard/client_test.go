package switchyard_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

func TestTypedEvaluation(t *testing.T) {
	td := switchyard.NewTestData()
	td.SetBool("bool", true)
	td.SetString("string", "blue")
	td.SetNumber("number", 2.5)
	if err := td.SetJSON("json", map[string]any{"limit": 3, "tags": []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, switchyard.Config{DataSource: td})

	if !c.Bool(alice, "bool", false) || c.String(alice, "string", "x") != "blue" || c.Number(alice, "number", 0) != 2.5 {
		t.Error("typed values")
	}
	v, ok := c.JSON(alice, "json", nil).(map[string]any)
	if !ok || v["limit"] != 3.0 {
		t.Errorf("JSON = %#v", c.JSON(alice, "json", nil))
	}
	v["limit"] = 99 // callers get a fresh copy every time
	if again := c.JSON(alice, "json", nil).(map[string]any); again["limit"] != 3.0 {
		t.Error("JSON values are shared between calls")
	}
	var cfg struct {
		Limit int      `json:"limit"`
		Tags  []string `json:"tags"`
	}
	if d := c.JSONInto(alice, "json", &cfg); d.Reason != evaluation.ReasonDefault || cfg.Limit != 3 || len(cfg.Tags) != 1 {
		t.Errorf("JSONInto = %+v, %+v", d, cfg)
	}
	var wrongShape []int
	if d := c.JSONInto(alice, "json", &wrongShape); d.ErrorCode != evaluation.ErrorTypeMismatch || wrongShape != nil {
		t.Errorf("JSONInto a wrong type = %+v", d)
	}

	for _, tc := range []struct {
		name string
		got  switchyard.Detail[any]
		want evaluation.ErrorCode
	}{
		{"bool asked as string", asAny(c.StringDetail(alice, "bool", "fallback")), evaluation.ErrorTypeMismatch},
		{"string asked as number", asAny(c.NumberDetail(alice, "string", 7)), evaluation.ErrorTypeMismatch},
		{"number asked as bool", asAny(c.BoolDetail(alice, "number", true)), evaluation.ErrorTypeMismatch},
		{"bool asked as json", c.JSONDetail(alice, "bool", "fallback"), evaluation.ErrorTypeMismatch},
		{"unknown flag", asAny(c.BoolDetail(alice, "nope", true)), evaluation.ErrorFlagNotFound},
		{"context without key", asAny(c.BoolDetail(switchyard.NewContext(""), "bool", false)), evaluation.ErrorTargetingKeyMissing},
		{"invalid context", asAny(c.BoolDetail(switchyard.NewKindContext("multi", "x"), "bool", false)), evaluation.ErrorInvalidContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.Reason != evaluation.ReasonError || tc.got.ErrorCode != tc.want || tc.got.Variation != "" || tc.got.VariationIndex != -1 {
				t.Errorf("detail = %+v, want ERROR %s", tc.got, tc.want)
			}
		})
	}
	if got := c.String(alice, "bool", "fallback"); got != "fallback" {
		t.Errorf("type mismatch served %q, want the fallback", got)
	}
	d := c.BoolDetail(alice, "bool", false)
	if d.Variation != "true" || d.VariationIndex != 0 || d.Reason != evaluation.ReasonDefault || d.RuleIndex != -1 || d.FlagVersion != 1 {
		t.Errorf("BoolDetail = %+v", d)
	}
	all := c.AllFlags(alice, false)
	if len(all) != 4 || all["string"].Value != "blue" {
		t.Errorf("AllFlags = %+v", all)
	}
}

func asAny[T any](d switchyard.Detail[T]) switchyard.Detail[any] {
	return switchyard.Detail[any]{Value: d.Value, Variation: d.Variation, VariationIndex: d.VariationIndex, Reason: d.Reason,
		ErrorCode: d.ErrorCode, RuleIndex: d.RuleIndex, RuleID: d.RuleID, FlagVersion: d.FlagVersion}
}

func TestTestDataTargetingAndListeners(t *testing.T) {
	td := switchyard.NewTestData()
	td.SetSegment(ruleset.Segment{Key: "beta", Included: []ruleset.SegmentTarget{{ContextKind: "user", Values: []string{"bob"}}}})
	td.SetFlag(ruleset.Flag{
		Key: "banner", Kind: ruleset.KindString, On: true,
		Variations: []ruleset.Variation{{Key: "a", Value: json.RawMessage(`"A"`)}, {Key: "b", Value: json.RawMessage(`"B"`)}},
		Targets:    []ruleset.Target{{ContextKind: "user", Variation: "b", Values: []string{"alice"}}},
		Rules: []ruleset.Rule{{ID: "beta", Clauses: []ruleset.Clause{{Op: ruleset.OpSegmentMatch, Values: []any{"beta"}}},
			Serve: ruleset.Serve{Variation: "b"}}},
		Fallthrough: ruleset.Serve{Variation: "a"},
	})
	// Two clients share one TestData.
	c1 := newClient(t, switchyard.Config{DataSource: td})
	c2 := newClient(t, switchyard.Config{DataSource: td})
	bob := switchyard.NewContext("bob")
	if c1.String(alice, "banner", "") != "B" || c1.String(bob, "banner", "") != "B" || c2.String(switchyard.NewContext("carl"), "banner", "") != "A" {
		t.Error("targeting through TestData")
	}
	if d := c1.StringDetail(bob, "banner", ""); d.RuleID != "beta" || d.RuleIndex != 0 || d.Reason != evaluation.ReasonTargetingMatch {
		t.Errorf("detail = %+v", d)
	}

	changes := make(chan switchyard.FlagChange, 10)
	remove := c2.OnChange(bob, func(ch switchyard.FlagChange) { changes <- ch })
	td.SetSegment(ruleset.Segment{Key: "beta"}) // bob leaves the segment: his banner changes
	select {
	case ch := <-changes:
		if ch.Key != "banner" || ch.OldValue != "B" || ch.NewValue != "A" {
			t.Errorf("change = %+v", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification for a segment change")
	}
	td.SetString("unrelated", "x") // a new flag: bob sees it appear
	select {
	case ch := <-changes:
		if ch.Key != "unrelated" || ch.OldVariation != "" || ch.NewValue != "x" {
			t.Errorf("change = %+v", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification for a new flag")
	}
	remove()
	td.Delete("unrelated")
	eventually(t, "the deletion", func() bool {
		return c2.StringDetail(bob, "unrelated", "gone").ErrorCode == evaluation.ErrorFlagNotFound
	})
	select {
	case ch := <-changes:
		t.Errorf("a removed listener was called: %+v", ch)
	default:
	}

	td.SetFlag(ruleset.Flag{Key: "broken", Kind: ruleset.KindBoolean}) // no variations: malformed
	eventually(t, "the malformed flag", func() bool {
		return c1.BoolDetail(alice, "broken", true).ErrorCode == evaluation.ErrorParse
	})
	if err := td.SetJSON("null", nil); err == nil {
		t.Error("SetJSON(nil) must fail: json flags cannot serve null")
	}
	if err := td.SetJSON("chan", make(chan int)); err == nil {
		t.Error("SetJSON of an unmarshalable value must fail")
	}
}

func TestListenerPanicsAreContained(t *testing.T) {
	td := switchyard.NewTestData()
	c := newClient(t, switchyard.Config{DataSource: td})
	got := make(chan string, 10)
	c.OnChange(alice, func(ch switchyard.FlagChange) { panic("listener bug") })
	c.OnChange(alice, func(ch switchyard.FlagChange) { got <- ch.Key })
	td.SetBool("a", true)
	select {
	case k := <-got:
		if k != "a" {
			t.Errorf("got %q", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a panicking listener stopped the others")
	}
	if !c.Bool(alice, "a", false) {
		t.Error("evaluation after a listener panic")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  switchyard.Config
	}{
		{"missing SDK key", switchyard.Config{}},
		{"relay URL without scheme", switchyard.Config{SDKKey: "k", RelayURL: "localhost:8081"}},
		{"events URL with another scheme", switchyard.Config{SDKKey: "k", EventsURL: "ftp://x"}},
		{"negative init timeout", switchyard.Config{SDKKey: "k", InitTimeout: -1}},
		{"HTTP client with a timeout", switchyard.Config{SDKKey: "k", HTTPClient: &http.Client{Timeout: time.Second}}},
		{"negative capacity", switchyard.Config{SDKKey: "k", Events: switchyard.EventsConfig{Capacity: -1}}},
		{"max backoff below initial", switchyard.Config{SDKKey: "k", Events: switchyard.EventsConfig{InitialBackoff: time.Second, MaxBackoff: time.Millisecond}}},
		{"streaming read timeout", switchyard.Config{SDKKey: "k", DataSource: switchyard.Streaming{ReadTimeout: -1}}},
		{"streaming backoff", switchyard.Config{SDKKey: "k", DataSource: switchyard.Streaming{InitialBackoff: time.Second, MaxBackoff: time.Millisecond}}},
		{"polling interval", switchyard.Config{SDKKey: "k", DataSource: switchyard.Polling{Interval: -time.Second}}},
		{"test data sending events without a key", switchyard.Config{DataSource: switchyard.NewTestData(), EventsURL: "http://localhost:1"}},
		{"offline without Path or Data", switchyard.Config{DataSource: switchyard.Offline{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			c, err := switchyard.New(tc.cfg)
			if !errors.Is(err, switchyard.ErrInvalidConfig) || c != nil {
				t.Errorf("New = %v, %v; want nil and ErrInvalidConfig", c, err)
			}
		})
	}
}

func TestOnUpdate(t *testing.T) {
	td := switchyard.NewTestData()
	td.SetBool("a", true)
	c := newClient(t, switchyard.Config{DataSource: td})
	updates := make(chan switchyard.Update, 10)
	remove := c.OnUpdate(func(u switchyard.Update) { updates <- u })
	defer remove()
	td.SetString("b", "x")
	td.SetBool("a", false)
	select {
	case u := <-updates:
		// The two updates may be coalesced into one.
		if len(u.ChangedFlags) == 1 && u.ChangedFlags[0] == "b" {
			select {
			case u = <-updates:
				if len(u.ChangedFlags) != 1 || u.ChangedFlags[0] != "a" {
					t.Errorf("second update = %+v", u)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no second update")
			}
		} else if len(u.ChangedFlags) != 2 {
			t.Errorf("update = %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(switchyard.EnvSDKKey, "sdk-from-env")
	t.Setenv(switchyard.EnvRelayURL, "http://relay.internal:8081")
	t.Setenv(switchyard.EnvEventsURL, "")
	cfg := switchyard.ConfigFromEnv()
	if cfg.SDKKey != "sdk-from-env" || cfg.RelayURL != "http://relay.internal:8081" || cfg.EventsURL != "" {
		t.Errorf("ConfigFromEnv() = %+v", cfg)
	}
}

// TestCloseDoesNotWaitForABlockedListener: a change listener that never returns (it sends on a
// channel nobody reads once the application shuts down) must not make Close hang: Close waits
// for listeners no longer than CloseTimeout.
func TestCloseDoesNotWaitForABlockedListener(t *testing.T) {
	td := switchyard.NewTestData()
	c, err := switchyard.New(switchyard.Config{DataSource: td, Logger: quiet, CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	c.OnChange(alice, func(switchyard.FlagChange) {
		close(entered)
		<-release
	})
	td.SetBool("a", true)
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close is stuck behind a listener that does not return")
	}
}
