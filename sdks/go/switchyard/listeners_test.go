package switchyard_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// dependencyRuleset: "child" needs "parent" on; "beta-only" serves true to the segment "beta".
func dependencyRuleset(t *testing.T, version int64, parent bool, beta ruleset.Segment) []byte {
	t.Helper()
	child := boolFlag("child", true)
	child.Prerequisites, child.OffVariation = []ruleset.Prerequisite{{Flag: "parent", Variation: "on"}}, "off"
	betaOnly := boolFlag("beta-only", false)
	betaOnly.Rules = []ruleset.Rule{{Clauses: []ruleset.Clause{{Op: ruleset.OpSegmentMatch, Values: []any{"beta"}}}, Serve: ruleset.Serve{Variation: "on"}}}
	p := boolFlag("parent", parent)
	p.Version = version
	data, err := json.Marshal(ruleset.Ruleset{SchemaVersion: 1, Version: version,
		Environment: ruleset.Environment{ID: "env-1", Key: "test", ProjectID: "p-1", ProjectKey: "shop"},
		Flags:       []ruleset.Flag{betaOnly, child, p}, Segments: []ruleset.Segment{beta}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func rawPatch(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	doc := map[string]any{"schema_version": 1,
		"environment": ruleset.Environment{ID: "env-1", Key: "test", ProjectID: "p-1", ProjectKey: "shop"},
		"flags":       []any{}, "deleted_flags": []string{}, "segments": []any{}, "deleted_segments": []string{}}
	for k, v := range fields {
		doc[k] = v
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestListenersSeeDependentFlags: a flag's value changes when a prerequisite or a segment it uses
// changes, by a put or a patch; OnChange and OnUpdate (OpenFeature's configuration-changed event)
// must name it, as well as a deleted flag.
func TestListenersSeeDependentFlags(t *testing.T) {
	withAlice := ruleset.Segment{Key: "beta", Version: 1, Included: []ruleset.SegmentTarget{{ContextKind: "user", Values: []string{"alice"}}}}
	relay := newFakeRelay(t, dependencyRuleset(t, 1, true, withAlice))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	changes := make(chan switchyard.FlagChange, 10)
	defer c.OnChange(alice, func(ch switchyard.FlagChange) { changes <- ch })()
	updates := make(chan switchyard.Update, 10)
	defer c.OnUpdate(func(u switchyard.Update) { updates <- u })()
	nextUpdate := func(what string) []string {
		t.Helper()
		select {
		case u := <-updates:
			return u.ChangedFlags
		case <-time.After(5 * time.Second):
			t.Fatalf("no update for %s", what)
			return nil
		}
	}

	// A put turning the prerequisite off.
	relay.publish(dependencyRuleset(t, 2, false, withAlice))
	got := changesByKey(t, changes, 2)
	if got["parent"].NewValue != false || got["child"].NewValue != false {
		t.Errorf("put, prerequisite off: changes %+v", got)
	}
	if keys := nextUpdate("the put"); !slices.Equal(keys, []string{"child", "parent"}) {
		t.Errorf("put, prerequisite off: ChangedFlags = %v, want [child parent]", keys)
	}

	// A patch turning it on again.
	p := boolFlag("parent", true)
	p.Version = 3
	relay.publishPatch(rawPatch(t, map[string]any{"base_version": 2, "version": 3, "flags": []ruleset.Flag{p}}))
	got = changesByKey(t, changes, 2)
	if got["parent"].NewValue != true || got["child"].NewValue != true {
		t.Errorf("patch, prerequisite on: changes %+v", got)
	}
	if keys := nextUpdate("the prerequisite patch"); !slices.Equal(keys, []string{"child", "parent"}) {
		t.Errorf("patch, prerequisite on: ChangedFlags = %v, want [child parent]", keys)
	}

	// A patch taking alice out of the segment.
	relay.publishPatch(rawPatch(t, map[string]any{"base_version": 3, "version": 4,
		"segments": []ruleset.Segment{{Key: "beta", Version: 2}}}))
	got = changesByKey(t, changes, 1)
	if ch := got["beta-only"]; ch.OldValue != true || ch.NewValue != false {
		t.Errorf("patch, segment: changes %+v", got)
	}
	if keys := nextUpdate("the segment patch"); !slices.Equal(keys, []string{"beta-only"}) {
		t.Errorf("patch, segment: ChangedFlags = %v, want [beta-only]", keys)
	}

	// A patch deleting (archiving) a flag.
	relay.publishPatch(rawPatch(t, map[string]any{"base_version": 4, "version": 5, "deleted_flags": []string{"beta-only"}}))
	got = changesByKey(t, changes, 1)
	if ch := got["beta-only"]; ch.OldValue != false || ch.NewValue != nil || ch.NewVariation != "" {
		t.Errorf("patch, deleted flag: changes %+v", got)
	}
	if keys := nextUpdate("the deletion"); !slices.Equal(keys, []string{"beta-only"}) {
		t.Errorf("patch, deleted flag: ChangedFlags = %v, want [beta-only]", keys)
	}
}

// TestOnStatusChange: status listeners hear of a lost connection, its recovery, and the relay
// starting to serve stale data, in order.
func TestOnStatusChange(t *testing.T) {
	relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
	c := newClient(t, switchyard.Config{RelayURL: relay.server.URL, DataSource: fastStreaming()})
	statuses := make(chan switchyard.Status, 100)
	defer c.OnStatusChange(func(s switchyard.Status) { statuses <- s })()
	next := func(want switchyard.State, stale bool) {
		t.Helper()
		for {
			select {
			case s := <-statuses:
				if s.State == want && s.Stale == stale {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no status %v (stale %v)", want, stale)
			}
		}
	}
	relay.set(func(r *fakeRelay) { r.streamsDown = true })
	relay.dropStreams()
	next(switchyard.StateInterrupted, false)
	relay.set(func(r *fakeRelay) { r.streamsDown, r.stale = false, true })
	next(switchyard.StateValid, true)
	relay.set(func(r *fakeRelay) { r.stale = false })
	relay.dropStreams()
	next(switchyard.StateValid, false)
}

// TestTestDataSetAgainIsAnUpdate: setting a flag or segment again with the same explicit version
// (a test helper's constant) still counts as a configuration change for OnUpdate.
func TestTestDataSetAgainIsAnUpdate(t *testing.T) {
	td := switchyard.NewTestData()
	td.SetFlag(boolFlag("f", true)) // Version 1
	inBeta := boolFlag("in-beta", false)
	inBeta.Rules = []ruleset.Rule{{Clauses: []ruleset.Clause{{Op: ruleset.OpSegmentMatch, Values: []any{"beta"}}}, Serve: ruleset.Serve{Variation: "on"}}}
	td.SetFlag(inBeta)
	td.SetSegment(ruleset.Segment{Key: "beta", Version: 1})
	c := newClient(t, switchyard.Config{DataSource: td})
	updates := make(chan switchyard.Update, 10)
	defer c.OnUpdate(func(u switchyard.Update) { updates <- u })()
	for _, step := range []struct {
		name string
		set  func()
		want []string
	}{
		{"flag", func() { td.SetFlag(boolFlag("f", false)) }, []string{"f"}},
		{"segment", func() {
			td.SetSegment(ruleset.Segment{Key: "beta", Version: 1, Included: []ruleset.SegmentTarget{{ContextKind: "user", Values: []string{"alice"}}}})
		}, []string{"in-beta"}},
	} {
		step.set()
		select {
		case u := <-updates:
			if !slices.Equal(u.ChangedFlags, step.want) {
				t.Errorf("%s set again: ChangedFlags = %v, want %v", step.name, u.ChangedFlags, step.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s set again with the same version: no update", step.name)
		}
	}
	if !c.Bool(alice, "in-beta", false) || c.Bool(alice, "f", true) {
		t.Error("the values set again are not served")
	}
}
