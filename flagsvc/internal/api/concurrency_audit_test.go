package api_test

import (
	"context"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/segments"
)

// TestConcurrencyAuditDeleteFlagHonoursIfMatch: DELETE of a flag with a stale If-Match is
// refused like a stale PATCH (409 naming version) and deletes nothing; it used to delete the
// flag whatever the version. A current If-Match, or none, deletes.
func TestConcurrencyAuditDeleteFlagHonoursIfMatch(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	flag := "/api/v1/projects/" + p + "/flags/"
	s.must(200, "PATCH", flag+"a", map[string]any{"description": "now at version 2"}, nil)
	s.refused(409, "version", "DELETE", flag+"a", nil, "If-Match", `"1"`)
	s.refused(400, "If-Match", "DELETE", flag+"a", nil, "If-Match", "latest")
	if etag := s.must(200, "GET", flag+"a", nil, nil).Header.Get("ETag"); etag != `"2"` {
		t.Fatalf("after refused deletes: ETag %q, want \"2\"", etag)
	}
	s.must(204, "DELETE", flag+"a", nil, nil, "If-Match", `W/"2"`)
	s.must(404, "GET", flag+"a", nil, nil)
	s.must(204, "DELETE", flag+"b", nil, nil) // without If-Match, as before
}

// TestConcurrencyAuditDeleteSegmentHonoursIfMatch: the same for DELETE of a segment.
func TestConcurrencyAuditDeleteSegmentHonoursIfMatch(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	segs := "/api/v1/projects/" + p + "/environments/development/segments"
	s.must(201, "POST", segs, map[string]any{"key": "s1"}, nil)
	s.must(201, "POST", segs, map[string]any{"key": "s2"}, nil)
	s.must(200, "PUT", segs+"/s1", map[string]any{"name": "now at version 2"}, nil)
	s.refused(409, "version", "DELETE", segs+"/s1", nil, "If-Match", `"1"`)
	if etag := s.must(200, "GET", segs+"/s1", nil, nil).Header.Get("ETag"); etag != `"2"` {
		t.Fatalf("after a refused delete: ETag %q, want \"2\"", etag)
	}
	s.must(204, "DELETE", segs+"/s1", nil, nil, "If-Match", `"2"`)
	s.must(404, "GET", segs+"/s1", nil, nil)
	s.must(204, "DELETE", segs+"/s2", nil, nil)
}

// TestConcurrencyAuditImportHonoursIfMatch: a segment import based on a stale version (If-Match;
// the CSV body has no version field) is refused with 409 naming version and writes nothing; it
// used to be applied on top of whatever changed meanwhile. The import answers with the new ETag.
func TestConcurrencyAuditImportHonoursIfMatch(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	segs := "/api/v1/projects/" + p + "/environments/development/segments"
	s.must(201, "POST", segs, map[string]any{"key": "s1"}, nil)
	r := s.must(200, "POST", segs+"/s1/import", "alice\nbob\n", nil, "If-Match", `"1"`)
	if etag := r.Header.Get("ETag"); etag != `"2"` {
		t.Fatalf("import: ETag %q, want \"2\"", etag)
	}
	s.refused(409, "version", "POST", segs+"/s1/import?mode=replace", "carol\n", "If-Match", `"1"`)
	var got domain.Segment
	s.must(200, "GET", segs+"/s1", nil, &got)
	if got.Version != 2 || got.IncludedCount != 2 {
		t.Fatalf("after a refused import: version %d with %d keys, want version 2 with 2", got.Version, got.IncludedCount)
	}
	s.must(200, "POST", segs+"/s1/import", "carol\n", nil) // without If-Match, as before
}

// TestConcurrencyAuditArchiveRacesNewPrerequisite: archiving b while a change makes a require
// b, each checking before the other committed (forced: both wait on the audit log, the last
// write of each). Both used to succeed, leaving a requiring an archived flag; now the change
// that comes second sees the first: the archive wins and the prerequisite is refused.
func TestConcurrencyAuditArchiveRacesNewPrerequisite(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	waitFor, release := holdAuditInserts(t, s)
	archived := make(chan int)
	go func() {
		archived <- s.req("PATCH", "/api/v1/projects/"+p+"/flags/b", s.owner, map[string]any{"lifecycle": "archived"}).Status
	}()
	waitFor(1)
	required := make(chan response)
	go func() {
		required <- s.req("PUT", configPath(p, "a", "development"), s.owner, requires("b"))
	}()
	waitFor(2)
	release()
	if st := <-archived; st != 200 {
		t.Fatalf("archive: status %d, want 200", st)
	}
	r := <-required
	if r.Status != 422 || r.errorBody(t).Field != "prerequisites[0].flag" {
		t.Fatalf("new prerequisite on a flag archived meanwhile: status %d, want 422 naming prerequisites[0].flag: %s", r.Status, r.Body)
	}
}

// TestConcurrencyAuditDeleteRacesNewPrerequisite: the other order, with a delete: a comes to
// require b first (and waits on the audit log), then b is deleted. Both used to succeed,
// leaving a requiring a flag that no longer exists; now the delete waits for the change and
// is refused because a requires b.
func TestConcurrencyAuditDeleteRacesNewPrerequisite(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "a")
	s.boolFlag(p, "b")
	waitFor, release := holdAuditInserts(t, s)
	required := make(chan int)
	go func() {
		required <- s.req("PUT", configPath(p, "a", "development"), s.owner, requires("b")).Status
	}()
	waitFor(1)
	deleted := make(chan response)
	go func() { deleted <- s.req("DELETE", "/api/v1/projects/"+p+"/flags/b", s.owner, nil) }()
	waitFor(2)
	release()
	if st := <-required; st != 200 {
		t.Fatalf("new prerequisite: status %d, want 200", st)
	}
	r := <-deleted
	if r.Status != 409 || r.errorBody(t).Field != "lifecycle" {
		t.Fatalf("delete of a flag required meanwhile: status %d, want 409 naming lifecycle: %s", r.Status, r.Body)
	}
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags/b", nil, nil)
}

// TestConcurrencyAuditSegmentTotalSize: a segment holds at most segments.MaxSegmentKeys keys
// however they arrive; mode=add imports (each within the per-import limit) and inline lists
// used to grow it without bound. Keys already present do not count again.
func TestConcurrencyAuditSegmentTotalSize(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	segs := "/api/v1/projects/" + p + "/environments/development/segments"
	s.must(201, "POST", segs, map[string]any{"key": "big"}, nil)
	// Fill it to the limit in the database: a million keys through the API take longer than the
	// test client waits on this shared machine, and the import path is what is tested below.
	_, err := s.app.Store.Pool.Exec(context.Background(), `INSERT INTO segment_members (segment_id, list, context_kind, context_key)
		SELECT s.id, 'included', 'user', 'k' || lpad(g::text, 7, '0') FROM segments s, generate_series(1, $1::int) g
		WHERE s.key = 'big'`, segments.MaxSegmentKeys)
	if err != nil {
		t.Fatal(err)
	}
	s.refused(422, "body", "POST", segs+"/big/import?list=excluded&mode=add", "one-more\n")
	s.must(200, "POST", segs+"/big/import?mode=add", "k0000001\n", nil) // already there: still at the limit
	s.refused(422, "excluded", "PUT", segs+"/big", map[string]any{"excluded": []any{map[string]any{"values": []string{"x"}}}})
	var got domain.Segment
	s.must(200, "GET", segs+"/big", nil, &got)
	if n := got.IncludedCount + got.ExcludedCount; n != segments.MaxSegmentKeys {
		t.Fatalf("segment holds %d keys, want %d", n, segments.MaxSegmentKeys)
	}
}
