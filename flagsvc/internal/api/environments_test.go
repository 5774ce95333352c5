package api_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/environments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/segments"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func TestProjectsEnvironmentsCloneAndLock(t *testing.T) {
	s := newStack(t)
	var proj environments.ProjectDetail
	s.must(201, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop"}, &proj)
	if len(proj.Environments) != 3 || proj.Environments[0].Key != "development" || !proj.Environments[2].Critical {
		t.Fatalf("default environments: %+v", proj.Environments)
	}
	s.boolFlag("shop", "checkout")
	// A rule naming a segment that does not exist yet is refused.
	s.must(422, "PUT", configPath("shop", "checkout", "staging"), map[string]any{"on": true, "fallthrough": rollout(30000, 70000),
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"op": "segment_match", "values": []string{"vip"}}}, "serve": map[string]any{"variation": "on"}}}}, nil)
	s.must(400, "POST", "/api/v1/projects/shop/environments/staging/segments", `{"key": "vip", "included": [{"values": ["a"]}], }`, nil)
	var cur domain.FlagEnvironment
	s.must(200, "GET", configPath("shop", "checkout", "staging"), nil, &cur)
	if cur.Version != 1 {
		t.Fatalf("a rule naming a missing segment was accepted: version %d", cur.Version)
	}
	s.must(201, "POST", "/api/v1/projects/shop/environments/staging/segments", map[string]any{"key": "vip",
		"included": []any{map[string]any{"values": []string{"alice", "bob"}}}}, nil)
	s.must(200, "PUT", configPath("shop", "checkout", "staging"), map[string]any{"on": true, "fallthrough": rollout(30000, 70000),
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"op": "segment_match", "values": []string{"vip"}}}, "serve": map[string]any{"variation": "on"}}}}, nil)

	var clone domain.Environment
	s.must(201, "POST", "/api/v1/projects/shop/environments/staging/clone", map[string]any{"key": "qa", "name": "QA"}, &clone)
	var cloned domain.FlagEnvironment
	s.must(200, "GET", configPath("shop", "checkout", "qa"), nil, &cloned)
	if !cloned.On || cloned.Fallthrough.Rollout == nil || cloned.Fallthrough.Rollout.Variations[0].Weight != 30000 || len(cloned.Rules) != 1 {
		t.Fatalf("clone did not copy the configuration: %+v", cloned)
	}
	var seg domain.Segment
	s.must(200, "GET", "/api/v1/projects/shop/environments/qa/segments/vip", nil, &seg)
	if seg.IncludedCount != 2 || len(seg.Included) != 1 || len(seg.Included[0].Values) != 2 {
		t.Fatalf("clone did not copy the segment members: %+v", seg)
	}
	// A flag created later gets a default configuration in the clone too.
	s.boolFlag("shop", "later")
	var later domain.FlagEnvironment
	s.must(200, "GET", configPath("shop", "later", "qa"), nil, &later)
	if later.On || later.Version != 1 || later.OffVariation != "off" || later.Fallthrough.Variation != "on" {
		t.Fatalf("default configuration in the clone: %+v", later)
	}

	// Lock: configuration changes are refused until unlocked.
	s.must(200, "PUT", "/api/v1/projects/shop/environments/qa/lock", map[string]any{"locked": true, "reason": "release freeze"}, nil)
	r := s.req("POST", configPath("shop", "checkout", "qa")+"/toggle", s.owner, map[string]any{"on": false})
	if r.Status != 412 || r.errorBody(t).Field != "environment" || !strings.Contains(r.errorBody(t).Message, "release freeze") {
		t.Fatalf("toggle in a locked environment: %d %s", r.Status, r.Body)
	}
	if r := s.req("POST", "/api/v1/projects/shop/environments/qa/segments", s.owner, map[string]any{"key": "x"}); r.Status != 412 {
		t.Fatalf("segment in a locked environment: %d", r.Status)
	}
	s.must(200, "PUT", "/api/v1/projects/shop/environments/qa/lock", map[string]any{"locked": false}, nil)
	s.must(200, "POST", configPath("shop", "checkout", "qa")+"/toggle", map[string]any{"on": false}, nil)

	// Edit, mark critical, delete.
	var edited domain.Environment
	s.must(200, "PATCH", "/api/v1/projects/shop/environments/qa", map[string]any{"name": "Quality", "color": "#00ff00", "critical": true}, &edited)
	if edited.Name != "Quality" || !edited.Critical {
		t.Fatalf("edit: %+v", edited)
	}
	if r := s.req("PATCH", "/api/v1/projects/shop/environments/qa", s.owner, map[string]any{"color": "green"}); r.Status != 422 || r.errorBody(t).Field != "color" {
		t.Fatalf("bad color: %d %s", r.Status, r.Body)
	}
	s.must(204, "DELETE", "/api/v1/projects/shop/environments/qa", nil, nil)
	s.must(404, "GET", configPath("shop", "checkout", "qa"), nil, nil)
	s.must(409, "POST", "/api/v1/projects/shop/environments", map[string]any{"key": "staging", "name": "Again"}, nil)
}

func TestSegmentsImportAndNesting(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	base := "/api/v1/projects/shop/environments/production/segments"
	s.must(201, "POST", base, map[string]any{"key": "beta", "rules": []any{map[string]any{"clauses": []any{
		map[string]any{"attribute": "email", "op": "ends_with", "values": []string{"@acme.test"}}}}}}, nil)
	s.must(201, "POST", base, map[string]any{"key": "beta-or-staff", "rules": []any{map[string]any{"clauses": []any{
		map[string]any{"op": "segment_match", "values": []string{"beta"}}}}}}, nil)

	// Stream 200,000 keys through a pipe, so the body is never one buffer in the test either.
	const n = 200000
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		fmt.Fprintln(w, "context_kind,key")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "user,u%07d\n", i)
		}
		fmt.Fprintln(w, "device,d1")
		w.Flush()
		pw.Close()
	}()
	r := s.req("POST", base+"/beta/import?list=included&mode=replace", s.owner, pr, "Content-Type", "text/csv")
	if r.Status != 200 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var res segments.ImportResult
	r.decode(t, &res)
	if res.Imported != n+1 || res.Segment.IncludedCount != n+1 {
		t.Fatalf("imported %d, included %d", res.Imported, res.Segment.IncludedCount)
	}
	// Add a few, excluding one; importing the same keys again adds nothing.
	s.must(200, "POST", base+"/beta/import?list=excluded", "u0000001\n", nil)
	r = s.req("POST", base+"/beta/import", s.owner, "u0000002\nu0000003\n", "Content-Type", "text/csv")
	r.decode(t, &res)
	if res.Segment.IncludedCount != n+1 || res.Segment.ExcludedCount != 1 {
		t.Fatalf("counts after re-import: %+v", res.Segment)
	}
	// A bad line rejects the whole file.
	r = s.req("POST", base+"/beta/import?mode=replace", s.owner, "ok1\nbad,kind,extra\n", "Content-Type", "text/csv")
	if r.Status != 422 || !strings.Contains(r.errorBody(t).Message, "line 2") {
		t.Fatalf("bad CSV: %d %s", r.Status, r.Body)
	}
	var seg domain.Segment
	s.must(200, "GET", base+"/beta", nil, &seg)
	if seg.IncludedCount != n+1 || seg.Included != nil {
		t.Fatalf("failed replace changed the segment (or huge lists were inlined): %d", seg.IncludedCount)
	}
	// Deleting a segment another one nests is refused.
	if r := s.req("DELETE", base+"/beta", s.owner, nil); r.Status != 409 || !strings.Contains(r.errorBody(t).Message, "beta-or-staff") {
		t.Fatalf("delete nested segment: %d %s", r.Status, r.Body)
	}
	// The compiled ruleset carries the members and the nesting, each segment its own members.
	s.must(201, "POST", base, map[string]any{"key": "staff", "included": []any{map[string]any{"values": []string{"carol"}},
		map[string]any{"context_kind": "device", "values": []string{"d9"}}}, "excluded": []any{map[string]any{"values": []string{"dave"}}}}, nil)
	var rs ruleset.Ruleset
	s.must(200, "GET", "/api/v1/projects/shop/environments/production/ruleset", nil, &rs)
	if staff := rs.Segment("staff"); staff == nil || fmt.Sprint(staff.Included) != "[{device [d9]} {user [carol]}]" ||
		fmt.Sprint(staff.Excluded) != "[{user [dave]}]" {
		t.Fatalf("ruleset segment staff: %+v", staff)
	}
	if nested := rs.Segment("beta-or-staff"); nested == nil || nested.Included != nil || nested.Excluded != nil {
		t.Fatalf("a segment without members got some: %+v", nested)
	}
	beta := rs.Segment("beta")
	if beta == nil || len(beta.Excluded) != 1 || beta.Excluded[0].Values[0] != "u0000001" {
		t.Fatalf("ruleset segment: %+v", beta)
	}
	total := 0
	for _, tg := range beta.Included {
		total += len(tg.Values)
	}
	if total != n+1 {
		t.Fatalf("ruleset carries %d included keys", total)
	}
	if errs := rs.Validate(); len(errs) > 0 {
		t.Fatalf("compiled ruleset fails the SDK's validation: %v", errs)
	}
}

func TestSDKKeysRotateAndRevoke(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	base := "/api/v1/projects/shop/environments/production/sdk-keys"
	var server, client domain.SDKKey
	s.must(201, "POST", base, map[string]any{"kind": "server", "name": "backend"}, &server)
	s.must(201, "POST", base, map[string]any{"kind": "client", "name": "web"}, &client)
	hashes := func() map[string]ruleset.SDKKey {
		rs, found, err := compile(s, "shop", "production")
		if err != nil || !found {
			t.Fatal(err)
		}
		out := map[string]ruleset.SDKKey{}
		for _, k := range rs.SDKKeys {
			out[k.Hash] = k
		}
		return out
	}
	h := hashes()
	if _, ok := h[sha(server.Key)]; !ok || len(h) != 2 || h[sha(client.Key)].Kind != ruleset.KeyClient {
		t.Fatalf("ruleset keys: %+v", h)
	}
	var rotated domain.SDKKey
	s.must(201, "POST", base+"/"+server.ID+"/rotate", map[string]any{"grace": "1h"}, &rotated)
	h = hashes()
	old, ok := h[sha(server.Key)]
	if !ok || old.ExpiresAt == nil || len(h) != 3 || rotated.RotatedFrom != server.ID {
		t.Fatalf("after rotation the old key must remain with an expiry: %+v", h)
	}
	s.must(204, "DELETE", base+"/"+client.ID, nil, nil)
	if _, ok := hashes()[sha(client.Key)]; ok {
		t.Fatal("revoked key still in the ruleset")
	}
	var listed struct {
		Items []domain.SDKKey `json:"items"`
	}
	s.must(200, "GET", base, nil, &listed)
	if len(listed.Items) != 2 {
		t.Fatalf("active keys: %+v", listed.Items)
	}
	if r := s.req("POST", base, s.owner, map[string]any{"kind": "mobile"}); r.Status != 422 || r.errorBody(t).Field != "kind" {
		t.Fatalf("bad kind: %d", r.Status)
	}
}

func TestAuditFiltersAndExport(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	s.boolFlag("shop", "a")
	s.boolFlag("shop", "b")
	dev := s.serviceToken(domain.RoleDeveloper, "", "")
	if r := s.req("POST", configPath("shop", "a", "development")+"/toggle", dev, map[string]any{"on": true, "comment": "try it"}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	type page struct {
		Items        []domain.AuditEntry `json:"items"`
		NextBeforeID int64               `json:"next_before_id"`
	}
	var all page
	s.must(200, "GET", "/api/v1/audit?limit=1000", nil, &all)
	var toggles page
	s.must(200, "GET", "/api/v1/audit?action=flag_config.", nil, &toggles)
	if len(toggles.Items) != 1 || toggles.Items[0].Actor.Type != "token" || toggles.Items[0].Comment != "try it" {
		t.Fatalf("flag_config. prefix filter: %+v", toggles.Items)
	}
	var byResource page
	s.must(200, "GET", "/api/v1/audit?resource=b", nil, &byResource)
	if len(byResource.Items) != 1 || byResource.Items[0].Action != "flag.create" {
		t.Fatalf("resource filter: %+v", byResource.Items)
	}
	var byActor page
	s.must(200, "GET", "/api/v1/audit?actor="+toggles.Items[0].Actor.ID, nil, &byActor)
	if len(byActor.Items) != 1 {
		t.Fatalf("actor filter: %d", len(byActor.Items))
	}
	var future page
	s.must(200, "GET", "/api/v1/audit?from=2099-01-01T00:00:00Z", nil, &future)
	if len(future.Items) != 0 {
		t.Fatal("time filter")
	}
	var first page
	s.must(200, "GET", "/api/v1/audit?limit=2", nil, &first)
	var second page
	s.must(200, "GET", fmt.Sprintf("/api/v1/audit?limit=2&before_id=%d", first.NextBeforeID), nil, &second)
	if len(second.Items) == 0 || second.Items[0].ID >= first.Items[1].ID {
		t.Fatal("paging")
	}
	r := s.must(200, "GET", "/api/v1/audit/export?format=csv", nil, nil)
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(rows) != len(all.Items)+1 || rows[0][0] != "id" {
		t.Fatalf("CSV export: %d rows (want %d), %v", len(rows), len(all.Items)+1, err)
	}
	r = s.must(200, "GET", "/api/v1/audit/export?format=json&action=flag.create", nil, nil)
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSON lines export: %d lines", len(lines))
	}
	var e domain.AuditEntry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || e.Action != "flag.create" {
		t.Fatalf("JSON line: %s", lines[0])
	}
	if r := s.req("GET", "/api/v1/audit", dev, nil); r.Status != 403 {
		t.Fatalf("developers read the organization-wide audit: %d", r.Status)
	}
	if r := s.req("GET", "/api/v1/audit?project=shop", dev, nil); r.Status != 200 {
		t.Fatalf("developers read their project's audit: %d", r.Status)
	}
	if _, err := s.app.Store.Pool.Exec(t.Context(), `DELETE FROM audit_log`); err == nil {
		t.Fatal("the audit log accepted a DELETE")
	}
}

// TestProjectPatchKeepsWhatItLeavesOut: PATCH of a project changes only the fields it sends (it
// replaced the whole project: a rename wiped the description, and a description alone was 422).
func TestProjectPatchKeepsWhatItLeavesOut(t *testing.T) {
	s := newStack(t)
	s.must(201, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop", "description": "the web shop"}, nil)
	var p environments.ProjectDetail
	s.must(200, "PATCH", "/api/v1/projects/shop", map[string]any{"name": "Shop EU"}, &p)
	if p.Name != "Shop EU" || p.Description != "the web shop" {
		t.Fatalf("renamed: name %q, description %q; want the description kept", p.Name, p.Description)
	}
	s.must(200, "PATCH", "/api/v1/projects/shop", map[string]any{"description": "EU web shop"}, &p)
	if p.Name != "Shop EU" || p.Description != "EU web shop" {
		t.Fatalf("described: name %q, description %q; want the name kept", p.Name, p.Description)
	}
	s.must(200, "GET", "/api/v1/projects/shop", nil, &p)
	if p.Name != "Shop EU" || p.Description != "EU web shop" {
		t.Fatalf("stored: name %q, description %q", p.Name, p.Description)
	}
	if r := s.req("PATCH", "/api/v1/projects/shop", s.owner, map[string]any{"name": " "}); r.Status != 422 || r.errorBody(t).Field != "name" {
		t.Fatalf("a blank name: %d, want 422 naming name", r.Status)
	}
	if r := s.req("PATCH", "/api/v1/projects/shop", s.owner, map[string]any{"key": "other"}); r.Status != 422 || r.errorBody(t).Field != "key" {
		t.Fatalf("a new key: %d, want 422 naming key", r.Status)
	}
}
