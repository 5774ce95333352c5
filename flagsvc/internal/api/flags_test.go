package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
)

func rollout(weights ...int) map[string]any {
	vs := []any{}
	keys := []string{"on", "off"}
	for i, w := range weights {
		vs = append(vs, map[string]any{"variation": keys[i%2], "weight": w})
	}
	return map[string]any{"rollout": map[string]any{"variations": vs}}
}

// TestValidationNamesTheFieldAndWritesNothing sends every kind of bad input and checks the
// status, the error code, the field, and that nothing was written.
func TestValidationNamesTheFieldAndWritesNothing(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	s.must(200, "PUT", configPath(p, "b", "development"), map[string]any{"prerequisites": []any{map[string]any{"flag": "a", "variation": "on"}},
		"fallthrough": map[string]any{"variation": "on"}}, nil)
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/development/segments", map[string]any{"key": "s1"}, nil)
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/development/segments", map[string]any{"key": "s2",
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"op": "segment_match", "values": []string{"s1"}}}}}}, nil)
	flagsPath := "/api/v1/projects/" + p + "/flags"
	cfg := configPath(p, "checkout", "development")
	clause := func(op string, values ...any) map[string]any {
		return map[string]any{"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "x", "op": op, "values": values}},
			"serve": map[string]any{"variation": "on"}}}, "fallthrough": map[string]any{"variation": "off"}}
	}
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"invalid JSON", "PUT", cfg, `{"on": tru`, 400, "invalid_argument", ""},
		{"unknown field", "PUT", cfg, map[string]any{"on": true, "colour": "red", "fallthrough": map[string]any{"variation": "on"}}, 400, "invalid_argument", "colour"},
		{"wrong value type", "PUT", cfg, map[string]any{"on": "yes"}, 400, "invalid_argument", "on"},
		{"weights not summing to 100000", "PUT", cfg, map[string]any{"fallthrough": rollout(50000, 40000)}, 422, "validation_failed", "fallthrough.rollout.variations"},
		{"negative weight", "PUT", cfg, map[string]any{"fallthrough": rollout(110000, -10000)}, 422, "validation_failed", "fallthrough.rollout.variations[0].weight"},
		{"bad regex", "PUT", cfg, clause("matches", "(unclosed"), 422, "validation_failed", "rules[0].clauses[0].values[0]"},
		{"unknown operator", "PUT", cfg, clause("near", "x"), 422, "validation_failed", "rules[0].clauses[0].op"},
		{"number operator with a string", "PUT", cfg, clause("gt", "ten"), 422, "validation_failed", "rules[0].clauses[0].values[0]"},
		{"bad semver", "PUT", cfg, clause("semver_gt", "1.x"), 422, "validation_failed", "rules[0].clauses[0].values[0]"},
		{"bad date", "PUT", cfg, clause("before", "yesterday"), 422, "validation_failed", "rules[0].clauses[0].values[0]"},
		{"empty clause values", "PUT", cfg, clause("in"), 422, "validation_failed", "rules[0].clauses[0].values"},
		{"unknown variation", "PUT", cfg, map[string]any{"fallthrough": map[string]any{"variation": "maybe"}}, 422, "validation_failed", "fallthrough.variation"},
		{"unknown off variation", "PUT", cfg, map[string]any{"off_variation": "nope", "fallthrough": map[string]any{"variation": "on"}}, 422, "validation_failed", "off_variation"},
		{"serve both", "PUT", cfg, map[string]any{"fallthrough": map[string]any{"variation": "on", "rollout": rollout(100000)["rollout"]}}, 422, "validation_failed", "fallthrough"},
		{"unknown segment", "PUT", cfg, clause("segment_match", "ghosts"), 422, "validation_failed", "rules[0].clauses[0].values[0]"},
		{"unknown prerequisite", "PUT", cfg, map[string]any{"prerequisites": []any{map[string]any{"flag": "nope", "variation": "on"}}, "fallthrough": map[string]any{"variation": "on"}}, 422, "validation_failed", "prerequisites[0].flag"},
		{"prerequisite variation", "PUT", cfg, map[string]any{"prerequisites": []any{map[string]any{"flag": "a", "variation": "maybe"}}, "fallthrough": map[string]any{"variation": "on"}}, 422, "validation_failed", "prerequisites[0].variation"},
		{"cyclic prerequisites", "PUT", configPath(p, "a", "development"), map[string]any{"prerequisites": []any{map[string]any{"flag": "b", "variation": "on"}}, "fallthrough": map[string]any{"variation": "on"}}, 422, "validation_failed", "prerequisites"},
		{"self prerequisite", "PUT", cfg, map[string]any{"prerequisites": []any{map[string]any{"flag": "checkout", "variation": "on"}}, "fallthrough": map[string]any{"variation": "on"}}, 422, "validation_failed", "prerequisites[0].flag"},
		{"cyclic segments", "PUT", "/api/v1/projects/" + p + "/environments/development/segments/s1", map[string]any{
			"rules": []any{map[string]any{"clauses": []any{map[string]any{"op": "segment_match", "values": []string{"s2"}}}}}}, 422, "validation_failed", "rules"},
		{"duplicate flag key", "POST", flagsPath, map[string]any{"key": "checkout", "kind": "boolean", "variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, 409, "conflict", "key"},
		{"one variation", "POST", flagsPath, map[string]any{"key": "x1", "kind": "boolean", "variations": []any{map[string]any{"key": "on", "value": true}}}, 422, "validation_failed", "variations"},
		{"value not of the kind", "POST", flagsPath, map[string]any{"key": "x2", "kind": "number", "variations": []any{map[string]any{"key": "a", "value": 1}, map[string]any{"key": "b", "value": "two"}}}, 422, "validation_failed", "variations[1].value"},
		{"bad flag key", "POST", flagsPath, map[string]any{"key": "has space", "kind": "boolean", "variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, 422, "validation_failed", "key"},
		{"duplicate variation keys", "POST", flagsPath, map[string]any{"key": "x3", "kind": "string", "variations": []any{map[string]any{"key": "a", "value": "1"}, map[string]any{"key": "a", "value": "2"}}}, 422, "validation_failed", "variations[1].key"},
		{"unknown kind", "POST", flagsPath, map[string]any{"key": "x4", "kind": "float", "variations": []any{map[string]any{"key": "a", "value": 1}, map[string]any{"key": "b", "value": 2}}}, 422, "validation_failed", "kind"},
		{"duplicate project", "POST", "/api/v1/projects", map[string]any{"key": p, "name": "again"}, 409, "conflict", "key"},
		{"bad If-Match", "PUT", cfg, map[string]any{"fallthrough": map[string]any{"variation": "on"}}, 400, "invalid_argument", "If-Match"},
	}
	countVersions := func() int {
		var n int
		if err := s.app.Store.Pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM flag_config_versions) + (SELECT count(*) FROM flags)
			+ (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM segments)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countVersions()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.name == "bad If-Match" {
				headers = []string{"If-Match", "latest"}
			}
			r := s.req(tc.method, tc.path, s.owner, tc.body, headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			e := r.errorBody(t)
			if e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("error %+v, want code %q field %q", e, tc.code, tc.field)
			}
		})
	}
	if after := countVersions(); after != before {
		t.Fatalf("failed requests wrote rows: %d before, %d after", before, after)
	}
}

// TestConcurrentConflictingWritesExactlyOneWins sends the same versioned toggle from many
// goroutines at once.
func TestConcurrentConflictingWritesExactlyOneWins(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	const writers = 16
	var wg sync.WaitGroup
	statuses := make([]int, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.req("POST", configPath(p, "checkout", "development")+"/toggle", s.owner,
				map[string]any{"on": i%2 == 0, "comment": fmt.Sprint("writer ", i)}, "If-Match", `"1"`)
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, st := range statuses {
		switch st {
		case 200:
			ok++
		case 409:
			conflicts++
		default:
			t.Fatalf("unexpected status %d", st)
		}
	}
	// A writer asking for "off" when the flag is already off at version 1 is a no-op, which
	// also succeeds; so count winners by versions actually written.
	var fe domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "development"), nil, &fe)
	var hist flags.HistoryPage
	s.must(200, "GET", configPath(p, "checkout", "development")+"/history", nil, &hist)
	if fe.Version != 2 || len(hist.Items) != 2 {
		t.Fatalf("want exactly one new version (2), got version %d with %d history entries (ok=%d, conflicts=%d)", fe.Version, len(hist.Items), ok, conflicts)
	}
	if conflicts < writers/2-1 {
		t.Fatalf("expected the other 'on' writers to conflict, got %d conflicts", conflicts)
	}
}

func TestHistoryDiffAndRollback(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	path := configPath(p, "checkout", "staging")
	var v2, v3 domain.FlagEnvironment
	r := s.must(200, "PUT", path, map[string]any{"on": true, "fallthrough": rollout(20000, 80000), "comment": "ramp to 20%"}, &v2)
	if r.Header.Get("ETag") != `"2"` || v2.Version != 2 {
		t.Fatalf("etag %q version %d", r.Header.Get("ETag"), v2.Version)
	}
	s.must(200, "PATCH", path, map[string]any{"version": 2, "comment": "add beta rule", "rules": []any{map[string]any{
		"clauses": []any{map[string]any{"attribute": "plan", "op": "in", "values": []string{"beta"}}}, "serve": map[string]any{"variation": "on"}}}}, &v3)
	if v3.Version != 3 || len(v3.Rules) != 1 || v3.Rules[0].ID == "" || v3.Fallthrough.Rollout == nil || !v3.On {
		t.Fatalf("merge patch result: %+v", v3)
	}
	var hist flags.HistoryPage
	s.must(200, "GET", path+"/history?limit=2", nil, &hist)
	if len(hist.Items) != 2 || hist.Items[0].Version != 3 || hist.Items[0].Comment != "add beta rule" || hist.NextBefore != 2 {
		t.Fatalf("history page: %+v", hist)
	}
	var ops []map[string]any
	if err := json.Unmarshal(hist.Items[0].Diff, &ops); err != nil || len(ops) == 0 || !strings.HasPrefix(ops[0]["path"].(string), "/rules") {
		t.Fatalf("diff of version 3 should touch /rules: %s", hist.Items[0].Diff)
	}
	if hist.Items[0].Actor.Type != "user" || hist.Items[0].Actor.Name != "owner@acme.test" {
		t.Fatalf("actor: %+v", hist.Items[0].Actor)
	}
	var back domain.FlagEnvironment
	s.must(200, "POST", path+"/rollback", map[string]any{"to_version": 1, "comment": "too risky"}, &back)
	if back.Version != 4 || back.On || len(back.Rules) != 0 || back.Fallthrough.Variation != "on" {
		t.Fatalf("rollback to version 1 should restore the default config as version 4: %+v", back)
	}
	s.must(200, "GET", path+"/history?before=4&limit=1", nil, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Version != 3 {
		t.Fatalf("paging back: %+v", hist)
	}
	r = s.req("POST", path+"/rollback", s.owner, map[string]any{"to_version": 99})
	if r.Status != 422 || r.errorBody(t).Field != "to_version" {
		t.Fatalf("rollback to a missing version: %d %s", r.Status, r.Body)
	}
}

func TestKillSwitchIsAudited(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	path := configPath(p, "checkout", "production")
	s.must(200, "POST", path+"/toggle", map[string]any{"on": true}, nil)
	r := s.req("POST", path+"/kill", s.owner, map[string]any{})
	if r.Status != 422 || r.errorBody(t).Field != "reason" {
		t.Fatalf("kill without a reason: %d %s", r.Status, r.Body)
	}
	var fe domain.FlagEnvironment
	s.must(200, "POST", path+"/kill", map[string]any{"reason": "checkout errors spiking"}, &fe)
	if fe.On {
		t.Fatal("killed flag still on")
	}
	var page struct {
		Items []domain.AuditEntry `json:"items"`
	}
	s.must(200, "GET", "/api/v1/audit?action=flag_config.kill", nil, &page)
	if len(page.Items) != 1 {
		t.Fatalf("want one kill entry, got %d", len(page.Items))
	}
	e := page.Items[0]
	if e.ResourceKey != "checkout" || e.Comment != "checkout errors spiking" || e.Actor.Name != "owner@acme.test" || e.IP == "" || e.UserAgent == "" {
		t.Fatalf("kill entry: %+v", e)
	}
	var before, after domain.FlagConfig
	if json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil || !before.On || after.On {
		t.Fatalf("before/after: %s / %s", e.Before, e.After)
	}
}

func TestListSearchFilterSortPaginate(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	for i := 0; i < 25; i++ {
		tags := []string{"team-a"}
		if i%5 == 0 {
			tags = []string{"team-b", "checkout"}
		}
		s.must(201, "POST", "/api/v1/projects/"+p+"/flags", map[string]any{
			"key": fmt.Sprintf("flag-%02d", i), "name": fmt.Sprintf("Flag %02d", i), "tags": tags, "kind": "string",
			"description": map[bool]string{true: "Controls the payment provider", false: "Something else"}[i == 7],
			"variations":  []any{map[string]any{"key": "a", "value": "A"}, map[string]any{"key": "b", "value": "B"}},
		}, nil)
	}
	s.must(200, "POST", configPath(p, "flag-03", "production")+"/toggle", map[string]any{"on": true}, nil)
	list := func(q string) store.FlagPage {
		var page store.FlagPage
		s.must(200, "GET", "/api/v1/projects/"+p+"/flags?"+q, nil, &page)
		return page
	}
	var keys []string
	cursor := ""
	for {
		page := list("limit=10&sort=-key&cursor=" + cursor)
		if page.Total != 25 {
			t.Fatalf("total %d", page.Total)
		}
		for _, f := range page.Items {
			keys = append(keys, f.Key)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(keys) != 25 || keys[0] != "flag-24" || keys[24] != "flag-00" {
		t.Fatalf("paging by -key: %v", keys)
	}
	if pg := list("tag=team-b"); pg.Total != 5 {
		t.Fatalf("tag filter: %d", pg.Total)
	}
	if pg := list("q=payment"); pg.Total != 1 || pg.Items[0].Key != "flag-07" {
		t.Fatalf("search by description: %+v", pg.Items)
	}
	if pg := list("q=flag-1"); pg.Total != 10 {
		t.Fatalf("prefix search on keys: %d", pg.Total)
	}
	if pg := list("environment=production&on=true"); pg.Total != 1 || pg.Items[0].Key != "flag-03" || !pg.Items[0].Environments["production"].On {
		t.Fatalf("on filter: %+v", pg)
	}
	s.must(200, "POST", "/api/v1/projects/"+p+"/flags/bulk", map[string]any{"action": "archive", "keys": []string{"flag-00", "flag-01"}}, nil)
	if pg := list(""); pg.Total != 23 {
		t.Fatalf("archived flags are hidden by default: %d", pg.Total)
	}
	if pg := list("lifecycle=archived"); pg.Total != 2 {
		t.Fatalf("lifecycle filter: %d", pg.Total)
	}
	r := s.req("GET", "/api/v1/projects/"+p+"/flags?sort=popularity", s.owner, nil)
	if r.Status != 422 || r.errorBody(t).Field != "sort" {
		t.Fatalf("bad sort: %d %s", r.Status, r.Body)
	}
	r = s.req("GET", "/api/v1/projects/"+p+"/flags?cursor=garbage", s.owner, nil)
	if r.Status != 422 || r.errorBody(t).Field != "cursor" {
		t.Fatalf("bad cursor: %d %s", r.Status, r.Body)
	}
}

func TestBulkIsAllOrNothing(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	for _, k := range []string{"a", "b", "c"} {
		s.boolFlag(p, k)
	}
	s.must(200, "PUT", configPath(p, "c", "development"), map[string]any{"prerequisites": []any{map[string]any{"flag": "b", "variation": "on"}},
		"fallthrough": map[string]any{"variation": "on"}}, nil)
	// Archiving b fails (c requires it), so a must not be archived either.
	r := s.req("POST", "/api/v1/projects/"+p+"/flags/bulk", s.owner, map[string]any{"action": "archive", "keys": []string{"a", "b"}})
	if r.Status != 409 || r.errorBody(t).Field != "keys[1]" {
		t.Fatalf("want 409 on keys[1]: %d %s", r.Status, r.Body)
	}
	var f flags.Detail
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags/a", nil, &f)
	if f.Lifecycle != domain.LifecycleActive {
		t.Fatal("flag a was archived by a failed bulk call")
	}
	var res flags.BulkResult
	s.must(200, "POST", "/api/v1/projects/"+p+"/flags/bulk", map[string]any{"action": "tag", "keys": []string{"a", "b"}, "tags": []string{"q4"}}, &res)
	if len(res.Updated) != 2 {
		t.Fatalf("tag: %+v", res)
	}
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags/b", nil, &f)
	if len(f.Tags) != 1 || f.Tags[0] != "q4" {
		t.Fatalf("tags: %v", f.Tags)
	}
	s.must(200, "POST", "/api/v1/projects/"+p+"/flags/bulk", map[string]any{"action": "delete", "keys": []string{"a"}}, nil)
	s.must(404, "GET", "/api/v1/projects/"+p+"/flags/a", nil, nil)
}

func TestFlagUpdateProtectsDependents(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.must(201, "POST", "/api/v1/projects/"+p+"/flags", map[string]any{"key": "color", "kind": "string",
		"variations": []any{map[string]any{"key": "red", "value": "r"}, map[string]any{"key": "blue", "value": "b"}, map[string]any{"key": "green", "value": "g"}}}, nil)
	s.must(200, "PUT", configPath(p, "color", "production"), map[string]any{"fallthrough": map[string]any{"variation": "green"}, "off_variation": "red"}, nil)
	r := s.req("PATCH", "/api/v1/projects/"+p+"/flags/color", s.owner, map[string]any{"variations": []any{
		map[string]any{"key": "red", "value": "r"}, map[string]any{"key": "blue", "value": "b"}}})
	// green is served by production's fallthrough (and is every environment's default off variation).
	if r.Status != 422 || r.errorBody(t).Field != "variations" || !strings.Contains(r.errorBody(t).Message, "green") {
		t.Fatalf("removing a served variation: %d %s", r.Status, r.Body)
	}
	// blue is used nowhere, so it may go.
	s.must(200, "PATCH", "/api/v1/projects/"+p+"/flags/color", map[string]any{"variations": []any{
		map[string]any{"key": "red", "value": "r"}, map[string]any{"key": "green", "value": "g"}}}, nil)
	var d flags.Detail
	s.must(200, "PATCH", "/api/v1/projects/"+p+"/flags/color", map[string]any{"name": "Color", "tags": []string{"ui"}, "version": 2}, &d)
	if d.Version != 3 || d.Name != "Color" {
		t.Fatalf("update: %+v", d.Flag)
	}
	r = s.req("PATCH", "/api/v1/projects/"+p+"/flags/color", s.owner, map[string]any{"name": "Stale", "version": 1})
	if r.Status != 409 || r.errorBody(t).Field != "version" {
		t.Fatalf("stale flag update: %d %s", r.Status, r.Body)
	}
}

// TestScheduledChangesAreMarked: a service (the jobs service) may mark a change as scheduled;
// a person's token cannot.
func TestScheduledChangesAreMarked(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	jobs := s.serviceToken(domain.RoleAdmin, "", "")
	path := configPath(p, "checkout", "staging")
	if r := s.req("POST", path+"/toggle", jobs, map[string]any{"on": true, "comment": "ramp step 1"}, "X-Switchyard-Origin", "scheduled"); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if r := s.req("POST", path+"/toggle", s.owner, map[string]any{"on": false}, "X-Switchyard-Origin", "scheduled"); r.Status != 200 {
		t.Fatal(r.Status)
	}
	var hist flags.HistoryPage
	s.must(200, "GET", path+"/history", nil, &hist)
	if hist.Items[1].Change != "scheduled" || hist.Items[0].Change != "toggle" {
		t.Fatalf("changes: %q, %q", hist.Items[1].Change, hist.Items[0].Change)
	}
	var page struct {
		Items []domain.AuditEntry `json:"items"`
	}
	s.must(200, "GET", "/api/v1/audit?action=flag_config.scheduled", nil, &page)
	if len(page.Items) != 1 || page.Items[0].Comment != "ramp step 1" {
		t.Fatalf("audit: %+v", page.Items)
	}
}

// TestConfigChangeOnMissingThings checks that a change whose project, flag or environment does
// not exist names what is missing, and that a caller who may not read the project learns
// nothing about what is in it (the same answer for an existing and a missing flag).
func TestConfigChangeOnMissingThings(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.project("other")
	s.boolFlag(p, "checkout")
	for _, tc := range []struct{ project, flag, env, mention string }{
		{"nope", "checkout", "development", `project "nope"`},
		{p, "nope", "development", `flag "nope"`},
		{p, "checkout", "nope", `environment "nope"`},
	} {
		r := s.req("POST", configPath(tc.project, tc.flag, tc.env)+"/toggle", s.owner, map[string]any{"on": true})
		if r.Status != 404 || !strings.Contains(r.errorBody(t).Message, tc.mention) {
			t.Fatalf("toggle %s/%s/%s: %d %s, want 404 mentioning %s", tc.project, tc.flag, tc.env, r.Status, r.Body, tc.mention)
		}
	}
	outsider := s.serviceToken(domain.RoleDeveloper, "other", "")
	existing := s.req("POST", configPath(p, "checkout", "development")+"/toggle", outsider, map[string]any{"on": true})
	missing := s.req("POST", configPath(p, "nope", "development")+"/toggle", outsider, map[string]any{"on": true})
	if existing.Status < 400 || existing.Status != missing.Status || existing.errorBody(t).Code != missing.errorBody(t).Code {
		t.Fatalf("a caller outside the project: existing flag %d %s, missing flag %d %s", existing.Status, existing.Body, missing.Status, missing.Body)
	}
	var fe domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "development"), nil, &fe)
	if fe.On || fe.Version != 1 {
		t.Fatalf("refused changes wrote: %+v", fe)
	}
}
