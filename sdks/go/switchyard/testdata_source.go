package switchyard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestData is a data source for application tests: set flag values in code, and every client
// using it sees them at once, with no relay. One TestData may feed several clients.
//
//	td := switchyard.NewTestData()
//	td.SetBool("new-checkout", true)
//	client, _ := switchyard.New(switchyard.Config{DataSource: td})
//	td.SetBool("new-checkout", false) // clients see it immediately
type TestData struct {
	mu       sync.Mutex
	version  int64
	flags    map[string]ruleset.Flag
	segments map[string]ruleset.Segment
	clients  map[*Client]struct{}
	current  *evaluation.Ruleset
}

// NewTestData returns an empty TestData: every flag is FLAG_NOT_FOUND until set.
func NewTestData() *TestData {
	td := &TestData{flags: map[string]ruleset.Flag{}, segments: map[string]ruleset.Segment{}, clients: map[*Client]struct{}{}}
	td.current = td.compileLocked()
	return td
}

// SetBool makes a boolean flag serve value to every context.
func (td *TestData) SetBool(key string, value bool) {
	serve := "false"
	if value {
		serve = "true"
	}
	td.SetFlag(ruleset.Flag{
		Key: key, Kind: ruleset.KindBoolean, On: true,
		Variations:  []ruleset.Variation{{Key: "true", Value: json.RawMessage("true")}, {Key: "false", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Variation: serve},
	})
}

// SetString makes a string flag serve value to every context.
func (td *TestData) SetString(key, value string) {
	raw, _ := json.Marshal(value) // strings always marshal
	td.setValue(key, ruleset.KindString, raw, json.RawMessage(`""`))
}

// SetNumber makes a number flag serve value to every context. NaN and infinities are not JSON
// numbers: the flag then evaluates to PARSE_ERROR.
func (td *TestData) SetNumber(key string, value float64) {
	raw, err := json.Marshal(value)
	if err != nil {
		raw = json.RawMessage("null")
	}
	td.setValue(key, ruleset.KindNumber, raw, json.RawMessage("0"))
}

// SetJSON makes a json flag serve value (anything encoding/json can marshal, except nil) to every
// context.
func (td *TestData) SetJSON(key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("switchyard: test data %q: %w", key, err)
	}
	if string(raw) == "null" {
		return fmt.Errorf("switchyard: test data %q: a json flag cannot serve null", key)
	}
	td.setValue(key, ruleset.KindJSON, raw, json.RawMessage("{}"))
	return nil
}

// setValue builds a flag serving raw; the schema requires two variations, so an unused second one
// holds the kind's zero value.
func (td *TestData) setValue(key string, kind ruleset.FlagKind, raw, unused json.RawMessage) {
	td.SetFlag(ruleset.Flag{
		Key: key, Kind: kind, On: true,
		Variations:  []ruleset.Variation{{Key: "value", Value: raw}, {Key: "unused", Value: unused}},
		Fallthrough: ruleset.Serve{Variation: "value"},
	})
}

// SetFlag installs a complete flag configuration (targets, rules, rollouts, prerequisites): tests
// of targeting logic use it. A flag that does not validate evaluates to PARSE_ERROR, as it would
// from a relay. A zero Version, or one not above the version of the flag it replaces, is replaced
// by a higher one, so every Set counts as a configuration change (OnUpdate, OpenFeature's
// configuration-changed event), as a flag edit does on the flag service.
func (td *TestData) SetFlag(f ruleset.Flag) {
	td.mu.Lock()
	if prev, ok := td.flags[f.Key]; f.Version == 0 || (ok && f.Version <= prev.Version) {
		f.Version = max(td.version, prev.Version) + 1
	}
	td.flags[f.Key] = f
	td.publishLocked()
}

// SetSegment installs a segment for segment_match clauses; its Version is replaced as SetFlag's.
func (td *TestData) SetSegment(s ruleset.Segment) {
	td.mu.Lock()
	if prev, ok := td.segments[s.Key]; s.Version == 0 || (ok && s.Version <= prev.Version) {
		s.Version = max(td.version, prev.Version) + 1
	}
	td.segments[s.Key] = s
	td.publishLocked()
}

// Delete removes a flag (it then evaluates to FLAG_NOT_FOUND, like an archived flag).
func (td *TestData) Delete(key string) {
	td.mu.Lock()
	delete(td.flags, key)
	td.publishLocked()
}

// Ruleset returns the ruleset the TestData currently serves, as a document.
func (td *TestData) Ruleset() *ruleset.Ruleset {
	td.mu.Lock()
	defer td.mu.Unlock()
	return td.documentLocked()
}

func (td *TestData) documentLocked() *ruleset.Ruleset {
	rs := &ruleset.Ruleset{
		SchemaVersion: ruleset.SchemaVersion,
		Environment:   ruleset.Environment{ID: "test-data", Key: "test", ProjectID: "test-data", ProjectKey: "test"},
		Version:       td.version,
		Flags:         []ruleset.Flag{},
		Segments:      []ruleset.Segment{},
	}
	for _, f := range td.flags {
		rs.Flags = append(rs.Flags, f)
	}
	for _, s := range td.segments {
		rs.Segments = append(rs.Segments, s)
	}
	slices.SortFunc(rs.Flags, func(a, b ruleset.Flag) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(rs.Segments, func(a, b ruleset.Segment) int { return strings.Compare(a.Key, b.Key) })
	return rs
}

func (td *TestData) compileLocked() *evaluation.Ruleset {
	rs, err := evaluation.Compile(td.documentLocked())
	if err != nil {
		panic("switchyard: test data ruleset does not compile: " + err.Error()) // schema version is ours: unreachable
	}
	return rs
}

// publishLocked compiles a new version and hands it to every client; it unlocks td.mu.
func (td *TestData) publishLocked() {
	td.version++
	td.current = td.compileLocked()
	rs := td.current
	clients := make([]*Client, 0, len(td.clients))
	for c := range td.clients {
		clients = append(clients, c)
	}
	td.mu.Unlock()
	for _, c := range clients {
		c.update(rs, false)
	}
}

func (td *TestData) run(ctx context.Context, env *sourceEnv) error {
	td.mu.Lock()
	td.clients[env.client] = struct{}{}
	rs := td.current
	td.mu.Unlock()
	env.client.update(rs, false)
	<-ctx.Done()
	td.mu.Lock()
	delete(td.clients, env.client)
	td.mu.Unlock()
	return nil
}
