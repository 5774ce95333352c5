package api_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// activeGuardrailIDs is what the jobs monitor sweeps: GET /guardrails?status=active.
func (s *stack) activeGuardrailIDs() []string {
	s.t.Helper()
	var page struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &page)
	ids := []string{}
	for _, g := range page.Items {
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestArchiveEndsPlainGuardrails: archiving a flag (PATCH) disables its active plain guardrails
// in every environment in the same call — each with a guardrail.disable entry by the archive's
// caller naming the archive, the flag version it made and the environment — and leaves other
// flags' guardrails and ones already disabled alone; unarchiving does not bring them back, a
// guardrail cannot be declared on an archived flag, and a bulk archive does the same.
func TestArchiveEndsPlainGuardrails(t *testing.T) {
	s, p := guardrailSetup(t)
	for _, env := range []string{"production", "staging", "development"} {
		s.rollout(p, "checkout", env)
	}
	s.rollout(p, "banner", "production")
	prod := s.plainGuardrail(p, "production", "checkout")
	staging := s.plainGuardrail(p, "staging", "checkout")
	dev := s.plainGuardrail(p, "development", "checkout")
	banner := s.plainGuardrail(p, "production", "banner")
	s.must(204, "DELETE", "/api/v1/projects/"+p+"/environments/development/guardrails/"+dev.ID, nil, nil)
	if got, want := s.activeGuardrailIDs(), sortedIDs(prod.ID, staging.ID, banner.ID); !slices.Equal(got, want) {
		t.Fatalf("active guardrails before the archive: %v, want %v", got, want)
	}

	var archived domain.Flag
	s.must(200, "PATCH", "/api/v1/projects/"+p+"/flags/checkout", map[string]any{"lifecycle": "archived", "comment": "cleanup"}, &archived)
	if archived.Lifecycle != domain.LifecycleArchived {
		t.Fatalf("PATCH answered %+v", archived)
	}
	if got, want := s.activeGuardrailIDs(), []string{banner.ID}; !slices.Equal(got, want) {
		t.Fatalf("the monitor still sweeps %v after checkout was archived, want only banner's %v", got, want)
	}
	for env, id := range map[string]string{"production": prod.ID, "staging": staging.ID} {
		if st := s.guardrailStatus(p, env, id); st != "disabled" {
			t.Fatalf("checkout's guardrail in %s is %s after the archive, want disabled", env, st)
		}
		entries := s.disableEntries(id)
		if len(entries) != 1 {
			t.Fatalf("guardrail.disable entries of checkout's guardrail in %s: %+v", env, entries)
		}
		e := entries[0]
		for _, want := range []string{"flag.archive", "version " + strconv.FormatInt(archived.Version, 10) + " ", `"checkout"`, env} {
			if !strings.Contains(e.Comment, want) {
				t.Fatalf("audit comment %q lacks %q", e.Comment, want)
			}
		}
		if e.Actor.Name != "owner@acme.test" || !strings.Contains(string(e.Before), `"active"`) || !strings.Contains(string(e.After), `"disabled"`) {
			t.Fatalf("audit entry: actor %+v before %s after %s", e.Actor, e.Before, e.After)
		}
	}
	// The one disabled before keeps its single entry (the DELETE's).
	if entries := s.disableEntries(dev.ID); len(entries) != 1 || strings.Contains(entries[0].Comment, "archive") {
		t.Fatalf("guardrail.disable entries of the guardrail disabled before the archive: %+v", entries)
	}
	if st := s.guardrailStatus(p, "production", banner.ID); st != "active" {
		t.Fatalf("another flag's guardrail is %s after checkout was archived, want active", st)
	}
	// No new guardrail on the archived flag (its configuration still has the rollout).
	s.refused(422, "flag", "POST", "/api/v1/projects/"+p+"/environments/production/guardrails", map[string]any{"flag": "checkout",
		"metric": "errors", "tolerance": 0.02, "control": "off", "treatments": []string{"on"}})

	// Unarchiving does not re-enable them; declaring one again does.
	s.must(200, "PATCH", "/api/v1/projects/"+p+"/flags/checkout", map[string]any{"lifecycle": "active"}, nil)
	if st := s.guardrailStatus(p, "production", prod.ID); st != "disabled" {
		t.Fatalf("after the unarchive the guardrail is %s, want disabled", st)
	}
	again := s.plainGuardrail(p, "production", "checkout")

	// A bulk archive, of both flags.
	var res struct {
		Updated []string `json:"updated"`
	}
	s.must(200, "POST", "/api/v1/projects/"+p+"/flags/bulk", map[string]any{"action": "archive", "keys": []string{"banner", "checkout"}}, &res)
	if len(res.Updated) != 2 {
		t.Fatalf("bulk archive: %+v", res)
	}
	if got := s.activeGuardrailIDs(); len(got) != 0 {
		t.Fatalf("the monitor still sweeps %v after a bulk archive", got)
	}
	var flag domain.Flag
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags/banner", nil, &flag)
	for id, want := range map[string]string{banner.ID: `"banner"`, again.ID: `"checkout"`} {
		entries := s.disableEntries(id)
		if len(entries) != 1 || !strings.Contains(entries[0].Comment, "flag.bulk_archive") || !strings.Contains(entries[0].Comment, want) {
			t.Fatalf("guardrail.disable entries after the bulk archive: %+v", entries)
		}
	}
	if e := s.disableEntries(banner.ID)[0]; !strings.Contains(e.Comment, "version "+strconv.FormatInt(flag.Version, 10)+" ") {
		t.Fatalf("audit comment %q does not name banner's version %d", e.Comment, flag.Version)
	}
	if entries := s.disableEntries(prod.ID); len(entries) != 1 {
		t.Fatalf("the guardrail disabled by the first archive got %d entries", len(entries))
	}
}

// TestDeleteFlagDropsItsGuardrails: deleting a flag (alone or in bulk) with active plain
// guardrails leaves none pointing at it: they go with the flag.
func TestDeleteFlagDropsItsGuardrails(t *testing.T) {
	s, p := guardrailSetup(t)
	s.rollout(p, "checkout", "production")
	s.rollout(p, "checkout", "staging")
	s.rollout(p, "banner", "production")
	s.plainGuardrail(p, "production", "checkout")
	s.plainGuardrail(p, "staging", "checkout")
	banner := s.plainGuardrail(p, "production", "banner")
	s.must(204, "DELETE", "/api/v1/projects/"+p+"/flags/checkout", nil, nil)
	if got, want := s.activeGuardrailIDs(), []string{banner.ID}; !slices.Equal(got, want) {
		t.Fatalf("active guardrails after checkout was deleted: %v, want only banner's %v", got, want)
	}
	for _, env := range []string{"production", "staging"} {
		var gs struct {
			Items []domain.Guardrail `json:"items"`
		}
		s.must(200, "GET", "/api/v1/projects/"+p+"/environments/"+env+"/guardrails", nil, &gs)
		for _, g := range gs.Items {
			if g.Flag == "checkout" {
				t.Fatalf("a guardrail of the deleted flag is still listed in %s: %+v", env, g)
			}
		}
	}
	s.must(200, "POST", "/api/v1/projects/"+p+"/flags/bulk", map[string]any{"action": "delete", "keys": []string{"banner"}}, nil)
	if got := s.activeGuardrailIDs(); len(got) != 0 {
		t.Fatalf("active guardrails after a bulk delete: %v", got)
	}
}
