package api_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestFlagsAuditKillAfterPrerequisiteArchived: a flag whose prerequisite was archived while
// it was archived itself is unarchived; SDKs treat the prerequisite as not met, and the flag
// can still be killed, toggled and edited (before, every change was refused naming the
// prerequisite — the kill switch included). A new prerequisite on an archived flag is still
// refused.
func TestFlagsAuditKillAfterPrerequisiteArchived(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	s.boolFlag(p, "c")
	requiresA := map[string]any{"on": true, "prerequisites": []any{map[string]any{"flag": "a", "variation": "on"}},
		"fallthrough": map[string]any{"variation": "on"}}
	s.must(200, "PUT", configPath(p, "b", "development"), requiresA, nil)
	flag := "/api/v1/projects/" + p + "/flags/"
	s.must(200, "PATCH", flag+"b", map[string]any{"lifecycle": "archived"}, nil)
	s.must(200, "PATCH", flag+"a", map[string]any{"lifecycle": "archived"}, nil)
	s.must(200, "PATCH", flag+"b", map[string]any{"lifecycle": "active"}, nil)
	s.must(200, "POST", configPath(p, "b", "development")+"/kill", map[string]any{"reason": "incident"}, nil)
	s.must(200, "POST", configPath(p, "b", "development")+"/toggle", map[string]any{"on": true}, nil)
	s.must(200, "PATCH", configPath(p, "b", "development"), map[string]any{"fallthrough": map[string]any{"variation": "off"}}, nil)
	s.refused(422, "prerequisites[0].flag", "PUT", configPath(p, "c", "development"), requiresA)
}

// TestFlagsAuditNULIsRefusedNamingTheField: Postgres stores no NUL character in text or jsonb;
// input with one was a 500 after the change was half-way through, now a 422 naming the field.
func TestFlagsAuditNULIsRefusedNamingTheField(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	cfg := configPath(p, "a", "development")
	s.must(200, "POST", cfg+"/toggle", map[string]any{"on": true}, nil) // so that a kill changes something
	flags := "/api/v1/projects/" + p + "/flags"
	bools := []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}
	tests := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"target key", "PUT", cfg, map[string]any{"targets": []any{map[string]any{"variation": "on", "values": []string{"x\u0000y"}}},
			"fallthrough": map[string]any{"variation": "on"}}, "targets[0].values[0]"},
		{"clause value", "PUT", cfg, map[string]any{"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "x", "op": "in",
			"values": []any{"ok", "a\u0000"}}}, "serve": map[string]any{"variation": "on"}}}, "fallthrough": map[string]any{"variation": "on"}},
			"rules[0].clauses[0].values[1]"},
		{"comment", "PUT", cfg, map[string]any{"fallthrough": map[string]any{"variation": "off"}, "comment": "why\u0000"}, "comment"},
		{"kill reason", "POST", cfg + "/kill", map[string]any{"reason": "fire\u0000"}, "reason"},
		{"flag name", "POST", flags, map[string]any{"key": "c", "name": "x\u0000", "kind": "boolean", "variations": bools}, "name"},
		{"json variation", "POST", flags, map[string]any{"key": "d", "kind": "json", "variations": []any{
			map[string]any{"key": "x", "value": map[string]any{"k": "v\u0000"}}, map[string]any{"key": "y", "value": 1}}}, "variations[0].value.k"},
		{"flag description", "PATCH", flags + "/a", map[string]any{"description": "\u0000"}, "description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectRefused(t, s, 422, tc.field, tc.method, tc.path, tc.body) })
	}
}

// expectRefused is stack.refused reporting on t (a subtest, or a check that lets the test go on).
func expectRefused(t *testing.T, s *stack, status int, field, method, path string, body any) {
	t.Helper()
	r := s.req(method, path, s.owner, body)
	if r.Status != status {
		t.Errorf("%s %s: status %d, want %d naming %q: %s", method, path, r.Status, status, field, r.Body)
		return
	}
	if e := r.errorBody(t); e.Field != field || e.Message == "" {
		t.Errorf("%s %s: field %q, want %q: %s", method, path, e.Field, field, e.Message)
	}
}

// holdAuditInserts blocks every insert into the audit log (the last write of each change)
// until release is called: changes started meanwhile read what they check, then wait. It
// returns once want requests are waiting on a lock.
func holdAuditInserts(t *testing.T, s *stack) (waitFor func(want int), release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.app.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE audit_log IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(release)
	waitFor = func(want int) {
		testenv.Eventually(t, 30*time.Second, "requests waiting on locks", func() bool {
			var n int
			err := s.app.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			return err == nil && n >= want
		})
	}
	return waitFor, release
}

// concurrently sends the requests at once (as the owner) and returns their statuses.
func concurrently(s *stack, method string, paths []string, bodies []any) []int {
	statuses := make([]int, len(paths))
	var wg sync.WaitGroup
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.req(method, paths[i], s.owner, bodies[i]).Status
		}()
	}
	wg.Wait()
	return statuses
}

// TestFlagsAuditConcurrentPrerequisitesFormNoCycle: a requires b and b requires a, sent at
// the same time, each checked before the other committed — both used to be accepted,
// leaving a prerequisite cycle that SDKs refuse to evaluate.
func TestFlagsAuditConcurrentPrerequisitesFormNoCycle(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	waitFor, release := holdAuditInserts(t, s)
	done := make(chan []int)
	go func() {
		done <- concurrently(s, "PUT", []string{configPath(p, "a", "development"), configPath(p, "b", "development")},
			[]any{requires("b"), requires("a")})
	}()
	waitFor(2)
	release()
	statuses := <-done
	if !(statuses[0] == 200 && statuses[1] == 422 || statuses[0] == 422 && statuses[1] == 200) {
		t.Fatalf("statuses %v, want one 200 and one 422 (a cycle)", statuses)
	}
}

// TestFlagsAuditBulkArchiveFlagsRequiringEachOther: archiving (or deleting) a flag together
// with the flags that require it succeeds whatever the order of the keys; it used to be
// refused when the required flag came first (and accepted in the other order).
func TestFlagsAuditBulkArchiveFlagsRequiringEachOther(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		s.boolFlag(p, k)
	}
	s.must(200, "PUT", configPath(p, "b", "production"), requires("a"), nil)
	s.must(200, "PUT", configPath(p, "d", "staging"), requires("c"), nil)
	s.must(200, "PUT", configPath(p, "e", "staging"), requires("c"), nil)
	bulk := "/api/v1/projects/" + p + "/flags/bulk"
	s.must(200, "POST", bulk, map[string]any{"action": "archive", "keys": []string{"a", "b"}}, nil)
	// A flag still required by one not in the call is refused, and nothing is changed.
	s.refused(409, "keys[0]", "POST", bulk, map[string]any{"action": "delete", "keys": []string{"c", "d"}})
	s.must(200, "POST", bulk, map[string]any{"action": "delete", "keys": []string{"c", "d", "e"}}, nil)
	var page struct {
		Items []struct {
			Key       string `json:"key"`
			Lifecycle string `json:"lifecycle"`
		} `json:"items"`
	}
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags?lifecycle=all", nil, &page)
	got := map[string]string{}
	for _, f := range page.Items {
		got[f.Key] = f.Lifecycle
	}
	if len(got) != 2 || got["a"] != "archived" || got["b"] != "archived" {
		t.Fatalf("flags after the bulk calls: %v, want a and b archived, c, d and e deleted", got)
	}
}
