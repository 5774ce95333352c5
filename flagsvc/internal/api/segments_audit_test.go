package api_test

import (
	"fmt"
	"testing"
)

func segmentsPath(project, env string) string {
	return "/api/v1/projects/" + project + "/environments/" + env + "/segments"
}

// TestSegmentsAuditBadMembersNameTheField: too many inline excluded keys name "excluded" (not
// "included"); NUL characters in keys, names or rules and keys that are not UTF-8 in an import
// are refused with 422 (they were 500s from Postgres).
func TestSegmentsAuditBadMembersNameTheField(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	segs := segmentsPath(p, "development")
	s.must(201, "POST", segs, map[string]any{"key": "s1"}, nil)
	many := make([]string, 10001)
	for i := range many {
		many[i] = fmt.Sprint("k", i)
	}
	expectRefused(t, s, 422, "excluded", "POST", segs, map[string]any{"key": "big", "excluded": []any{map[string]any{"context_kind": "user", "values": many}}})
	expectRefused(t, s, 422, "included[0].values[1]", "POST", segs, map[string]any{"key": "s2",
		"included": []any{map[string]any{"context_kind": "user", "values": []string{"ok", "a\u0000"}}}})
	expectRefused(t, s, 422, "rules[0].clauses[0].values[0]", "PUT", segs+"/s1", map[string]any{"rules": []any{map[string]any{
		"clauses": []any{map[string]any{"attribute": "email", "op": "ends_with", "values": []string{"\u0000"}}}}}})
	expectRefused(t, s, 422, "description", "PUT", segs+"/s1", map[string]any{"description": "\u0000"})
	expectRefused(t, s, 422, "body", "POST", segs+"/s1/import", "alice\nb\xffob\n")
	expectRefused(t, s, 422, "body", "POST", segs+"/s1/import", "alice\nb\x00ob\n")
	var got struct {
		IncludedCount int64 `json:"included_count"`
	}
	s.must(200, "GET", segs+"/s1", nil, &got)
	if got.IncludedCount != 0 {
		t.Fatalf("a refused import wrote %d keys", got.IncludedCount)
	}
}

// TestSegmentsAuditConcurrentNestingFormsNoCycle: s1 nesting s2 and s2 nesting s1, sent at the
// same time, each checked before the other committed — both used to be accepted, leaving a
// cycle of segments that SDKs refuse.
func TestSegmentsAuditConcurrentNestingFormsNoCycle(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	segs := segmentsPath(p, "development")
	s.must(201, "POST", segs, map[string]any{"key": "s1"}, nil)
	s.must(201, "POST", segs, map[string]any{"key": "s2"}, nil)
	nests := func(key string) map[string]any {
		return map[string]any{"rules": []any{map[string]any{"clauses": []any{map[string]any{"op": "segment_match", "values": []string{key}}}}}}
	}
	waitFor, release := holdAuditInserts(t, s)
	done := make(chan []int)
	go func() {
		done <- concurrently(s, "PUT", []string{segs + "/s1", segs + "/s2"}, []any{nests("s2"), nests("s1")})
	}()
	waitFor(2)
	release()
	statuses := <-done
	if !(statuses[0] == 200 && statuses[1] == 422 || statuses[0] == 422 && statuses[1] == 200) {
		t.Fatalf("statuses %v, want one 200 and one 422 (a cycle)", statuses)
	}
}

// TestSegmentsAuditDeleteRacesNewReference: a flag rule starting to use a segment while the
// segment is deleted — both used to succeed, leaving a flag SDKs refuse (unknown segment).
func TestSegmentsAuditDeleteRacesNewReference(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	segs := segmentsPath(p, "development")
	s.must(201, "POST", segs, map[string]any{"key": "s1"}, nil)
	waitFor, release := holdAuditInserts(t, s)
	done := make(chan [2]int)
	go func() {
		var out [2]int
		ch := make(chan int)
		go func() { ch <- s.req("DELETE", segs+"/s1", s.owner, nil).Status }()
		out[1] = s.req("PUT", configPath(p, "a", "development"), s.owner, map[string]any{"rules": []any{map[string]any{
			"clauses": []any{map[string]any{"op": "segment_match", "values": []string{"s1"}}}, "serve": map[string]any{"variation": "on"}}},
			"fallthrough": map[string]any{"variation": "off"}}).Status
		out[0] = <-ch
		done <- out
	}()
	waitFor(2)
	release()
	got := <-done
	if got != [2]int{204, 422} && got != [2]int{409, 200} {
		t.Fatalf("statuses (delete, put) %v, want the delete refused (409) or the rule refused (422)", got)
	}
}
